//! Graceful stop: resign, then wait (bounded) for the new master.
//!
//! RFC 9568 §6.4.3: on Shutdown a MASTER sends an advert with priority 0
//! and removes its VIPs; the Backups take over after Skew_Time.
//!
//! Decided here: the shell detaches XDP only once another router advertises
//! (priority > 0, received after we resigned) for every VRID we were MASTER
//! of, as `LAST_SEEN` shows — the data plane may suppress the new master's
//! repeated adverts, so events are not enough — plus [`TAKEOVER_GRACE`] for
//! it to add and announce the VIPs. Detaching XDP takes the kernel's global
//! rtnl lock for tens of milliseconds (veth: ~20 ms), which would stall the
//! new master's netlink calls if it shares our kernel (containers, network
//! namespaces). The wait is bounded by the longest Master_Down_Interval of
//! the resigned instances (a backup that has not taken over by then is not
//! coming) and by [`HANDOVER_WAIT_MAX`].

use std::time::Duration;

use super::{Agent, LastSeen};
use crate::proto::{Family, Instant, State};

/// Longest a graceful stop waits for a backup to take over.
pub const HANDOVER_WAIT_MAX: Duration = Duration::from_secs(2);
/// Time left to the new master to add and announce its VIPs.
pub const TAKEOVER_GRACE: Duration = Duration::from_millis(20);
/// How often `LAST_SEEN` is read while waiting.
pub const HANDOVER_POLL: Duration = Duration::from_millis(1);

/// The VRIDs still waiting for a new master after a graceful stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handover {
    pending: Vec<(u32, u8, Family)>,
    /// Some instance was MASTER and resigned.
    resigned: bool,
    resigned_at: Instant,
    deadline: Instant,
}

/// What the shell does next while handing over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandoverStep {
    /// Wait until this time (or an advert event), then poll again.
    Wait(Instant),
    /// Every VRID has a new master (or none was MASTER): wait this grace,
    /// then detach.
    Done(Duration),
    /// Nobody took over in time: detach now.
    GiveUp,
}

impl Agent {
    /// The Shutdown event for every instance: MASTERs resign (their
    /// commands are queued). Returns the handover to wait for.
    pub fn handle_stop(&mut self, now: Instant) -> Handover {
        let mut pending = Vec::new();
        let mut wait = Duration::ZERO;
        for i in 0..self.instances.len() {
            let inst = &mut self.instances[i];
            if inst.router.state() == State::Master {
                pending.push((inst.ifindex, inst.cfg.vrid, inst.cfg.family));
                wait = wait.max(inst.router.master_down_interval());
            }
            inst.router.handle_shutdown(now);
            self.drain(i, now);
        }
        Handover {
            resigned: !pending.is_empty(),
            pending,
            resigned_at: now,
            deadline: now + wait.min(HANDOVER_WAIT_MAX),
        }
    }
}

impl Handover {
    /// The VRIDs (interface, VRID, family) still without a new master.
    pub fn pending(&self) -> &[(u32, u8, Family)] {
        &self.pending
    }

    /// Drops the VRIDs whose new master `LAST_SEEN` shows, and says what
    /// to do next.
    #[must_use]
    pub fn poll(&mut self, now: Instant, seen: &impl LastSeen) -> HandoverStep {
        let since = self.resigned_at;
        self.pending.retain(|&(ifindex, vrid, family)| {
            !seen
                .last_seen(ifindex, vrid, family)
                .is_some_and(|s| s.ts > since && s.advert.priority > 0)
        });
        if self.pending.is_empty() {
            // Nothing was MASTER: nobody to wait for, and no grace needed.
            let grace = if self.resigned {
                TAKEOVER_GRACE
            } else {
                Duration::ZERO
            };
            return HandoverStep::Done(grace);
        }
        if now >= self.deadline {
            return HandoverStep::GiveUp;
        }
        HandoverStep::Wait((now + HANDOVER_POLL).min(self.deadline))
    }
}
