//! The record of the newest advert handed to one instance's core, and the
//! replay of an advert the data plane suppressed.
//!
//! The XDP program suppresses adverts identical (source, priority,
//! interval) to their predecessor and keeps only the newest in `LAST_SEEN`.
//! When a run A1..An of identical adverts ends with a different advert B,
//! B's event overwrites An in `LAST_SEEN`, so the event carries An's receive
//! time (`prev_ts`). If the core has not seen that time, An is handed to it
//! before B, with the content of the last advert delivered (A1's, identical
//! by construction): otherwise a preempting Backup that discards B (lower
//! priority, RFC 9568 §6.4.2) would keep Master_Down_Timer running from A1
//! and take over up to a Master_Down_Interval too early.

use crate::proto::{Instant, RxAdvert, VirtualRouter};

/// The newest advert handed to the core of one instance.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Delivered {
    /// Receive time of the newest advert handed to the core.
    pub(crate) ts: Instant,
    /// Its content; `None` before the first.
    pub(crate) advert: Option<RxAdvert>,
}

impl Delivered {
    /// Hands one advert to the core and remembers it.
    pub(crate) fn deliver(&mut self, router: &mut VirtualRouter, ts: Instant, adv: RxAdvert) {
        if ts >= self.ts {
            self.ts = ts;
            self.advert = Some(adv);
        }
        router.handle_advert(ts, &adv);
    }

    /// Hands an advert event to the core: first the suppressed advert it
    /// replaced (received at `prev_ts`), if the core never saw it, then the
    /// event itself. Returns the advert re-delivered for the suppressed one.
    pub(crate) fn deliver_event(
        &mut self,
        router: &mut VirtualRouter,
        ts: Instant,
        prev_ts: Option<Instant>,
        adv: RxAdvert,
    ) -> Option<(Instant, RxAdvert)> {
        let missed = match (prev_ts, self.advert) {
            (Some(prev), Some(last)) if prev > self.ts && prev <= ts => {
                self.deliver(router, prev, last);
                Some((prev, last))
            }
            _ => None,
        };
        self.deliver(router, ts, adv);
        missed
    }
}

#[cfg(test)]
mod tests {
    use std::{net::IpAddr, time::Duration};

    use super::*;
    use crate::proto::{Family, RouterConfig, State, Version};

    const MASTER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn backup(start: Instant) -> VirtualRouter {
        let mut r = VirtualRouter::new(RouterConfig {
            vrid: 51,
            version: Version::V3,
            family: Family::V4,
            priority: 100,
            advert_interval: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept_mode: false,
            primary_addr: IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)),
        });
        r.handle_startup(start);
        while r.poll_action().is_some() {}
        assert_eq!(r.state(), State::Backup);
        r
    }

    fn advert(priority: u8) -> RxAdvert {
        RxAdvert {
            src: MASTER,
            priority,
            interval: Duration::from_secs(1),
            version: Version::V3,
        }
    }

    /// A1 (priority 150) is delivered, A2..An are suppressed by the kernel,
    /// then B (priority 50) arrives: a preempting Backup of priority 100
    /// discards B, and its Master_Down_Timer must run from An, not A1.
    #[test]
    fn suppressed_run_then_change_bases_master_down_on_the_last_of_the_run() {
        let t0 = Instant::from_nanos(1_000_000_000);
        let mut router = backup(t0);
        let mut d = Delivered::default();
        let a1 = t0 + Duration::from_millis(10);
        assert_eq!(d.deliver_event(&mut router, a1, None, advert(150)), None);
        let mdi = router.master_down_interval();
        assert_eq!(router.poll_timeout(), Some(a1 + mdi));

        // A2, A3 suppressed; An = A3 at a1 + 2 s; B at a1 + 2.5 s.
        let an = a1 + Duration::from_secs(2);
        let b = an + Duration::from_millis(500);
        let missed = d.deliver_event(&mut router, b, Some(an), advert(50));
        assert_eq!(missed, Some((an, advert(150))));
        assert_eq!(router.state(), State::Backup);
        assert_eq!(router.poll_timeout(), Some(an + mdi));
        assert_eq!(d.ts, b);
        assert_eq!(d.advert, Some(advert(50)));
    }

    #[test]
    fn predecessor_already_seen_is_not_delivered_again() {
        let t0 = Instant::from_nanos(1_000_000_000);
        let mut router = backup(t0);
        let mut d = Delivered::default();
        let a1 = t0 + Duration::from_millis(10);
        d.deliver_event(&mut router, a1, None, advert(150));
        // The previous LAST_SEEN entry is A1 itself (nothing suppressed).
        let b = a1 + Duration::from_secs(1);
        assert_eq!(d.deliver_event(&mut router, b, Some(a1), advert(120)), None);
        // A catch-up from LAST_SEEN already delivered the newest one.
        let a2 = b + Duration::from_secs(1);
        d.deliver(&mut router, a2, advert(120));
        let c = a2 + Duration::from_secs(1);
        assert_eq!(d.deliver_event(&mut router, c, Some(a2), advert(130)), None);
        // Socket path: no predecessor information.
        let e = c + Duration::from_secs(1);
        assert_eq!(d.deliver_event(&mut router, e, None, advert(130)), None);
        assert_eq!(
            router.poll_timeout(),
            Some(e + router.master_down_interval())
        );
    }
}
