//! The election state machine, one test per rule of RFC 3768 §6 and RFC 9568
//! §6 (plus the keepalived extensions we implement). Each test fails if its
//! rule is removed. Time is virtual: `Instant`s in nanoseconds.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use proptest::prelude::*;
use vrrp_agent::proto::{
    Action, Family, Instant, RouterConfig, RxAdvert, State, Version, VirtualRouter,
};

const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100));
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 50));
const SEC: Duration = Duration::from_secs(1);

fn t(ms: u64) -> Instant {
    Instant::from_nanos(ms * 1_000_000)
}

fn cfg(version: Version, priority: u8) -> RouterConfig {
    RouterConfig {
        vrid: 51,
        version,
        family: Family::V4,
        priority,
        advert_interval: SEC,
        preempt: true,
        preempt_delay: Duration::ZERO,
        accept_mode: false,
        primary_addr: ME,
    }
}

fn drain(r: &mut VirtualRouter) -> Vec<Action> {
    std::iter::from_fn(|| r.poll_action()).collect()
}

fn adv(src: IpAddr, priority: u8, interval: Duration, version: Version) -> RxAdvert {
    RxAdvert {
        src,
        priority,
        interval,
        version,
    }
}

/// A started router (actions drained).
fn started(c: RouterConfig, at: Instant) -> VirtualRouter {
    let mut r = VirtualRouter::new(c);
    r.handle_startup(at);
    drain(&mut r);
    r
}

/// A router that became Master through Master_Down expiry at
/// `t(0) + Master_Down_Interval` (actions drained); returns that time.
fn master(c: RouterConfig) -> (VirtualRouter, Instant) {
    let mut r = started(c, t(0));
    let at = r.poll_timeout().unwrap();
    r.handle_timeout(at);
    drain(&mut r);
    assert_eq!(r.state(), State::Master);
    (r, at)
}

fn become_master_actions(priority: u8, from: State) -> Vec<Action> {
    // Wire order: the advert first, then the VIPs, announced once they exist.
    vec![
        Action::SendAdvert { priority },
        Action::StateChange {
            from,
            to: State::Master,
        },
        Action::AddVips,
        Action::Announce,
    ]
}

// ---- startup (RFC 9568 §6.4.1, RFC 3768 §6.4.1) --------------------------------

/// RFC 9568 §6.4.1: the address owner (priority 255) sends an advert,
/// announces the VIPs and becomes Master at once; Adver_Timer =
/// Advertisement_Interval.
#[test]
fn owner_becomes_master_at_startup() {
    let mut r = VirtualRouter::new(cfg(Version::V3, 255));
    assert_eq!(r.state(), State::Init);
    assert_eq!(r.poll_timeout(), None);
    r.handle_startup(t(5));
    assert_eq!(drain(&mut r), become_master_actions(255, State::Init));
    assert_eq!(r.state(), State::Master);
    assert_eq!(r.current_master(), Some(ME));
    assert_eq!(r.poll_timeout(), Some(t(1005)));
}

/// RFC 9568 §6.4.1: a non-owner becomes Backup with Master_Down_Timer =
/// Master_Down_Interval and sends nothing.
#[test]
fn non_owner_starts_as_backup_with_master_down_timer() {
    let mut r = VirtualRouter::new(cfg(Version::V3, 100));
    r.handle_startup(t(0));
    assert_eq!(
        drain(&mut r),
        vec![Action::StateChange {
            from: State::Init,
            to: State::Backup
        }]
    );
    assert_eq!(r.poll_timeout(), Some(t(0) + r.master_down_interval()));
    assert_eq!(r.current_master(), None);
}

// ---- timers (RFC 9568 §6.1, RFC 3768 §6.1) -------------------------------------

/// RFC 9568 §6.1: Skew_Time = ((256 - Priority) * Master_Adver_Interval) /
/// 256, in ns without truncation: priority 254 at 10 ms gives 78.125 us.
#[test]
fn v3_skew_time_is_exact_below_a_millisecond() {
    let mut c = cfg(Version::V3, 254);
    c.advert_interval = Duration::from_millis(10);
    let r = started(c, t(0));
    assert_eq!(r.skew_time(), Duration::from_nanos(78_125));
    assert_eq!(r.master_down_interval(), Duration::from_nanos(30_078_125));
    assert_eq!(r.poll_timeout(), Some(Instant::from_nanos(30_078_125)));
}

/// RFC 3768 §6.1: v2 Skew_Time = (256 - Priority) / 256 seconds, whatever the
/// interval; Master_Down_Interval = 3 * Advertisement_Interval + Skew_Time.
#[test]
fn v2_skew_time_is_in_seconds() {
    let mut c = cfg(Version::V2, 100);
    c.advert_interval = Duration::from_secs(2);
    let r = started(c, t(0));
    assert_eq!(r.skew_time(), Duration::from_nanos(609_375_000));
    assert_eq!(
        r.master_down_interval(),
        Duration::from_nanos(6_609_375_000)
    );
}

/// RFC 9568 §6.4.2: when Master_Down_Timer fires, send an advert, announce,
/// become Master; not a nanosecond earlier.
#[test]
fn master_down_timer_expiry_makes_backup_master() {
    let mut r = started(cfg(Version::V3, 100), t(0));
    let deadline = r.poll_timeout().unwrap();
    r.handle_timeout(Instant::from_nanos(deadline.as_nanos() - 1));
    assert_eq!(r.state(), State::Backup);
    assert!(drain(&mut r).is_empty());
    r.handle_timeout(deadline);
    assert_eq!(drain(&mut r), become_master_actions(100, State::Backup));
    assert_eq!(r.poll_timeout(), Some(deadline + SEC));
}

/// RFC 9568 §6.4.3: Adver_Timer expiry sends an advert and restarts the
/// timer with Advertisement_Interval.
#[test]
fn master_sends_advert_when_adver_timer_fires() {
    let (mut r, at) = master(cfg(Version::V3, 100));
    r.handle_timeout(at + SEC / 2);
    assert!(drain(&mut r).is_empty());
    r.handle_timeout(at + SEC);
    assert_eq!(drain(&mut r), vec![Action::SendAdvert { priority: 100 }]);
    assert_eq!(r.poll_timeout(), Some(at + SEC * 2));
}

// ---- Backup receives (RFC 9568 §6.4.2) ----------------------------------------

/// RFC 9568 §6.4.2: a v3 Backup takes Master_Adver_Interval from the
/// advert and recomputes Skew_Time and Master_Down_Interval before
/// restarting Master_Down_Timer.
#[test]
fn v3_backup_learns_master_adver_interval() {
    let mut r = started(cfg(Version::V3, 100), t(0));
    r.handle_advert(
        t(100),
        &adv(PEER, 200, Duration::from_millis(50), Version::V3),
    );
    assert_eq!(r.master_adver_interval(), Duration::from_millis(50));
    // skew = 156 * 50 ms / 256 = 30.46875 ms
    assert_eq!(r.skew_time(), Duration::from_nanos(30_468_750));
    assert_eq!(
        r.poll_timeout(),
        Some(t(100) + Duration::from_nanos(180_468_750))
    );
    assert_eq!(r.current_master(), Some(PEER));
}

/// RFC 3768 §7.1: a v2 advert whose Adver Int differs from ours is
/// discarded (no timer restart, no learning).
#[test]
fn v2_interval_mismatch_is_discarded() {
    let mut r = started(cfg(Version::V2, 100), t(0));
    let deadline = r.poll_timeout();
    r.handle_advert(t(500), &adv(PEER, 200, Duration::from_secs(2), Version::V2));
    assert_eq!(r.poll_timeout(), deadline);
    assert_eq!(r.master_adver_interval(), SEC);
    r.handle_advert(t(500), &adv(PEER, 200, SEC, Version::V2));
    assert_eq!(r.poll_timeout(), Some(t(500) + r.master_down_interval()));
}

/// RFC 9568 §6.4.2: priority 0 sets Master_Down_Timer to Skew_Time.
#[test]
fn backup_priority_zero_sets_master_down_to_skew_time() {
    let mut r = started(cfg(Version::V3, 100), t(0));
    r.handle_advert(t(1000), &adv(PEER, 200, SEC, Version::V3));
    r.handle_advert(t(2000), &adv(PEER, 0, SEC, Version::V3));
    assert_eq!(
        r.poll_timeout(),
        Some(t(2000) + Duration::from_nanos(609_375_000))
    );
    assert_eq!(r.current_master(), None);
}

/// RFC 9568 §6.4.2: with Preempt_Mode, a lower-priority advert is
/// discarded, so the Backup takes over when Master_Down_Timer expires.
#[test]
fn preempting_backup_discards_lower_priority() {
    let mut r = started(cfg(Version::V3, 150), t(0));
    let deadline = r.poll_timeout();
    r.handle_advert(t(1000), &adv(PEER, 100, SEC, Version::V3));
    assert_eq!(r.poll_timeout(), deadline);
    r.handle_timeout(deadline.unwrap());
    assert_eq!(r.state(), State::Master);
}

/// RFC 9568 §6.4.2: without Preempt_Mode, any non-zero advert restarts
/// Master_Down_Timer, even from a lower priority.
#[test]
fn non_preempting_backup_accepts_lower_priority() {
    let mut c = cfg(Version::V3, 150);
    c.preempt = false;
    let mut r = started(c, t(0));
    r.handle_advert(t(1000), &adv(PEER, 100, SEC, Version::V3));
    assert_eq!(r.poll_timeout(), Some(t(1000) + r.master_down_interval()));
    assert_eq!(r.current_master(), Some(PEER));
}

/// RFC 9568 §6.4.2: an advert with priority >= ours restarts
/// Master_Down_Timer (equal priority included, whatever the address).
#[test]
fn backup_accepts_equal_or_higher_priority() {
    let mut r = started(cfg(Version::V3, 150), t(0));
    r.handle_advert(t(1000), &adv(PEER, 150, SEC, Version::V3));
    assert_eq!(r.poll_timeout(), Some(t(1000) + r.master_down_interval()));
    r.handle_advert(t(2000), &adv(PEER, 151, SEC, Version::V3));
    assert_eq!(r.poll_timeout(), Some(t(2000) + r.master_down_interval()));
}

/// RFC 9568 §6.4.2 "Shutdown": a Backup cancels its timer and stops,
/// sending nothing.
#[test]
fn backup_shutdown_is_silent() {
    let mut r = started(cfg(Version::V3, 100), t(0));
    r.handle_shutdown(t(10));
    assert_eq!(
        drain(&mut r),
        vec![Action::StateChange {
            from: State::Backup,
            to: State::Stop
        }]
    );
    assert_eq!(r.poll_timeout(), None);
}

// ---- Master receives (RFC 9568 §6.4.3) ----------------------------------------

/// RFC 9568 §6.4.3: priority 0 received -> send an advert at once and
/// restart Adver_Timer.
#[test]
fn master_answers_priority_zero_at_once() {
    let (mut r, at) = master(cfg(Version::V3, 100));
    let rx = at + Duration::from_millis(300);
    r.handle_advert(rx, &adv(PEER, 0, SEC, Version::V3));
    assert_eq!(drain(&mut r), vec![Action::SendAdvert { priority: 100 }]);
    assert_eq!(r.poll_timeout(), Some(rx + SEC));
}

/// RFC 9568 §6.4.3: a higher-priority advert makes the Master a Backup:
/// VIPs removed, v3 interval learned, Master_Down_Timer set; one last advert
/// at our priority goes out first (not in the RFCs, see router.rs).
#[test]
fn master_yields_to_higher_priority() {
    let (mut r, at) = master(cfg(Version::V3, 100));
    let rx = at + Duration::from_millis(300);
    r.handle_advert(rx, &adv(PEER, 101, Duration::from_millis(200), Version::V3));
    assert_eq!(
        drain(&mut r),
        vec![
            // Not in the RFCs (router.rs: the yielding master's last
            // advert): so the winner re-announces after a split brain.
            // Wire order: the advert first.
            Action::SendAdvert { priority: 100 },
            Action::StateChange {
                from: State::Master,
                to: State::Backup
            },
            Action::RemoveVips
        ]
    );
    assert_eq!(r.master_adver_interval(), Duration::from_millis(200));
    assert_eq!(r.poll_timeout(), Some(rx + r.master_down_interval()));
    assert_eq!(r.current_master(), Some(PEER));
}

/// RFC 9568 §6.4.3: equal priority, the greater primary address wins,
/// compared as unsigned network-order integers (192.0.2.200 > 192.0.2.100
/// although "192.0.2.200" < "192.0.2.3" as text).
#[test]
fn equal_priority_tie_break_by_greater_address() {
    let (mut r, at) = master(cfg(Version::V3, 100));
    let higher = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200));
    r.handle_advert(at, &adv(higher, 100, SEC, Version::V3));
    assert_eq!(r.state(), State::Backup);

    let (mut r, at) = master(cfg(Version::V3, 100));
    let lower = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3));
    r.handle_advert(at, &adv(lower, 100, SEC, Version::V3));
    assert_eq!(r.state(), State::Master);

    let mut c = cfg(Version::V3, 100);
    c.family = Family::V6;
    c.primary_addr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x7fff));
    let (mut r, at) = master(c);
    r.handle_advert(
        at,
        &adv(
            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x8000)),
            100,
            SEC,
            Version::V3,
        ),
    );
    assert_eq!(r.state(), State::Backup);
}

/// RFC 9568 §6.4.3: a lower-priority advert (or an equal one from a smaller
/// address) is discarded and answered at once with our advert, plus a VIP
/// re-announcement for clients that followed the other master.
#[test]
fn master_asserts_itself_against_lower_priority() {
    let (mut r, at) = master(cfg(Version::V3, 100));
    let next = r.poll_timeout();
    r.handle_advert(at, &adv(PEER, 99, SEC, Version::V3));
    assert_eq!(
        drain(&mut r),
        vec![Action::SendAdvert { priority: 100 }, Action::Announce]
    );
    assert_eq!(r.state(), State::Master);
    assert_eq!(r.poll_timeout(), next);
    r.handle_advert(at, &adv(PEER, 100, SEC, Version::V3));
    assert_eq!(
        drain(&mut r),
        vec![Action::SendAdvert { priority: 100 }, Action::Announce]
    );
}

/// RFC 9568 §6.4.3 "Shutdown": the Master sends an advert with priority 0,
/// removes its VIPs and stops; no timer remains.
#[test]
fn master_shutdown_sends_priority_zero() {
    let (mut r, at) = master(cfg(Version::V3, 100));
    r.handle_shutdown(at);
    assert_eq!(
        drain(&mut r),
        vec![
            Action::SendAdvert { priority: 0 },
            Action::StateChange {
                from: State::Master,
                to: State::Stop
            },
            Action::RemoveVips,
        ]
    );
    assert_eq!(r.poll_timeout(), None);
    r.handle_advert(at, &adv(PEER, 0, SEC, Version::V3));
    r.handle_timeout(at + SEC * 10);
    assert!(drain(&mut r).is_empty());
}

/// Our own adverts looped back by multicast, and adverts of the other
/// version, are ignored (RFC 9568 §7.1 item 2 for the version).
#[test]
fn own_and_other_version_adverts_are_ignored() {
    let (mut r, at) = master(cfg(Version::V3, 100));
    r.handle_advert(at, &adv(ME, 200, SEC, Version::V3));
    r.handle_advert(at, &adv(PEER, 200, SEC, Version::V2));
    assert_eq!(r.state(), State::Master);
    assert!(drain(&mut r).is_empty());
}

// ---- Fault, accept mode, priority changes --------------------------------------

/// Interface down: Master removes its VIPs and goes Fault; a Faulted router
/// sends nothing and ignores adverts; up again it restarts as at startup.
#[test]
fn interface_down_faults_and_up_restarts() {
    let (mut r, at) = master(cfg(Version::V3, 100));
    r.handle_interface(at, false);
    assert_eq!(
        drain(&mut r),
        vec![
            Action::StateChange {
                from: State::Master,
                to: State::Fault
            },
            Action::RemoveVips
        ]
    );
    assert_eq!(r.poll_timeout(), None);
    r.handle_timeout(at + SEC * 100);
    r.handle_advert(at, &adv(PEER, 0, SEC, Version::V3));
    assert!(drain(&mut r).is_empty());
    let up = at + SEC * 100;
    r.handle_interface(up, true);
    assert_eq!(
        drain(&mut r),
        vec![Action::StateChange {
            from: State::Fault,
            to: State::Backup
        }]
    );
    assert_eq!(r.poll_timeout(), Some(up + r.master_down_interval()));

    // The owner goes straight back to Master (RFC 9568 §6.4.1).
    let mut o = started(cfg(Version::V3, 255), t(0));
    o.handle_interface(t(1), false);
    o.handle_interface(t(2), true);
    assert_eq!(o.state(), State::Master);
    // Started while down: Fault.
    let mut d = VirtualRouter::new(cfg(Version::V3, 100));
    d.handle_interface(t(0), false);
    d.handle_startup(t(0));
    assert_eq!(d.state(), State::Fault);
}

/// RFC 9568 §6.4.3: a Master accepts VIP traffic only as owner or with
/// Accept_Mode.
#[test]
fn accept_mode_is_carried_as_state() {
    let mut c = cfg(Version::V3, 100);
    let (r, _) = master(c.clone());
    assert!(!r.accept_mode());
    assert!(!r.accepts_vip_traffic());
    c.accept_mode = true;
    let (r, _) = master(c.clone());
    assert!(r.accept_mode());
    assert!(r.accepts_vip_traffic());
    let b = started(c, t(0));
    assert!(!b.accepts_vip_traffic());
    assert!(started(cfg(Version::V3, 255), t(0)).accepts_vip_traffic());
}

/// A priority change re-derives Master_Down_Timer from the advert that
/// armed it (Skew_Time depends on our priority).
#[test]
fn priority_change_rederives_master_down_timer() {
    let mut r = started(cfg(Version::V3, 100), t(0));
    r.handle_advert(t(1000), &adv(PEER, 200, SEC, Version::V3));
    r.set_priority(t(1500), 192);
    assert_eq!(r.priority(), 192);
    assert_eq!(r.skew_time(), Duration::from_millis(250));
    assert_eq!(
        r.poll_timeout(),
        Some(t(1000) + Duration::from_millis(3250))
    );
}

// ---- preempt_delay (keepalived extension) ---------------------------------------

/// preempt_delay: the first lower-priority advert arms a Preempt timer;
/// until it fires the lower master is followed (no take-over through
/// Master_Down), then the Backup becomes Master at exactly that time.
#[test]
fn preempt_delay_waits_then_preempts() {
    let mut c = cfg(Version::V3, 200);
    c.preempt_delay = Duration::from_secs(5);
    let mut r = started(c, t(0));
    assert!(r.wants_every_advert());
    for s in 0..5 {
        r.handle_advert(t(500 + s * 1000), &adv(PEER, 100, SEC, Version::V3));
        r.handle_timeout(t(500 + s * 1000));
        assert_eq!(r.state(), State::Backup);
        assert_eq!(r.current_master(), Some(PEER));
    }
    assert_eq!(r.poll_timeout(), Some(t(5500)));
    r.handle_timeout(t(5500));
    assert_eq!(drain(&mut r), become_master_actions(200, State::Backup));
}

/// preempt_delay: an advert with priority >= ours disarms the Preempt timer.
#[test]
fn preempt_delay_cancelled_by_higher_master() {
    let mut c = cfg(Version::V3, 200);
    c.preempt_delay = Duration::from_secs(2);
    let mut r = started(c, t(0));
    r.handle_advert(t(500), &adv(PEER, 100, SEC, Version::V3));
    assert_eq!(r.poll_timeout(), Some(t(2500)));
    r.handle_advert(t(1500), &adv(PEER, 250, SEC, Version::V3));
    assert_eq!(r.poll_timeout(), Some(t(1500) + r.master_down_interval()));
    r.handle_timeout(t(3000));
    assert_eq!(r.state(), State::Backup);
}

/// Without preempt_delay, a lower master is not followed even briefly
/// (contrast with `preempt_delay_waits_then_preempts`).
#[test]
fn zero_preempt_delay_is_plain_rfc_preemption() {
    let mut r = started(cfg(Version::V3, 200), t(0));
    assert!(!r.wants_every_advert());
    r.handle_advert(t(500), &adv(PEER, 100, SEC, Version::V3));
    assert_eq!(r.current_master(), None);
}

/// reconfigure with unchanged settings changes nothing (SIGHUP keeps state
/// and timers); a new VRID restarts the router, a Master resigning first.
#[test]
fn reconfigure_keeps_or_restarts() {
    let (mut r, at) = master(cfg(Version::V3, 100));
    let next = r.poll_timeout();
    r.reconfigure(at, cfg(Version::V3, 100));
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.poll_timeout(), next);
    let mut c = cfg(Version::V3, 100);
    c.vrid = 52;
    r.reconfigure(at, c);
    assert_eq!(
        drain(&mut r),
        vec![
            Action::SendAdvert { priority: 0 },
            Action::StateChange {
                from: State::Master,
                to: State::Init
            },
            Action::RemoveVips,
            Action::StateChange {
                from: State::Init,
                to: State::Backup
            },
        ]
    );
}

/// Master wants every advert (lower ones need an answer); a plain Backup
/// does not.
#[test]
fn wants_every_advert_follows_state() {
    let r = started(cfg(Version::V3, 100), t(0));
    assert!(!r.wants_every_advert());
    let (m, _) = master(cfg(Version::V3, 100));
    assert!(m.wants_every_advert());
}

// ---- suppression invariance ----------------------------------------------------

/// One advert on the wire in the invariance test.
#[derive(Clone, Copy, Debug)]
struct Wire {
    at_ms: u64,
    src: IpAddr,
    priority: u8,
    interval: Duration,
}

/// Drives a router over `wire`; `suppress` mimics the data plane (identical
/// (source, priority, interval) adverts are not delivered unless the core
/// wants every advert) plus the daemon (before a due deadline, deliver the
/// newest suppressed advert). When a run ends with a different advert, the
/// run's newest is delivered first: the kernel's `LAST_SEEN` has already
/// been overwritten by then, so this needs the data plane to report the
/// previous advert's timestamp with the change (otherwise a Backup that
/// discards the new, lower-priority advert takes over up to one
/// Master_Down_Interval early). Returns every action with the time it was
/// produced, and the final state and deadline.
fn drive(
    c: &RouterConfig,
    wire: &[Wire],
    suppress: bool,
) -> (Vec<(Instant, Action)>, State, Option<Instant>) {
    let mut r = VirtualRouter::new(c.clone());
    let mut log = Vec::new();
    r.handle_startup(t(0));
    let mut collect = |r: &mut VirtualRouter, at: Instant| {
        while let Some(a) = r.poll_action() {
            log.push((at, a));
        }
    };
    collect(&mut r, t(0));
    let mut last: Option<(IpAddr, u8, Duration)> = None;
    let mut pending: Option<(Instant, RxAdvert)> = None;
    let end = wire.last().map_or(0, |w| w.at_ms) + 20_000;
    let mut i = 0;
    loop {
        let next_wire = wire.get(i).map(|w| t(w.at_ms));
        let deadline = r.poll_timeout();
        let timeout_first = match (deadline, next_wire) {
            (Some(d), Some(w)) => d < w,
            (Some(d), None) => d <= t(end),
            (None, _) => false,
        };
        if timeout_first {
            let d = deadline.unwrap_or_else(|| unreachable!());
            if let Some((ts, a)) = pending.take() {
                r.handle_advert(ts, &a);
                collect(&mut r, ts);
                if r.poll_timeout() != Some(d) {
                    continue;
                }
            }
            r.handle_timeout(d);
            collect(&mut r, d);
            continue;
        }
        let Some(w) = wire.get(i) else { break };
        i += 1;
        let a = RxAdvert {
            src: w.src,
            priority: w.priority,
            interval: w.interval,
            version: c.version,
        };
        let key = (w.src, w.priority, w.interval);
        let identical = last == Some(key);
        last = Some(key);
        if suppress && identical && !r.wants_every_advert() {
            pending = Some((t(w.at_ms), a));
        } else {
            // The newest of the run that just ended (the contract assumes
            // the data plane reports it with the change, see the module
            // note in the report).
            if let Some((ts, p)) = pending.take() {
                r.handle_advert(ts, &p);
                collect(&mut r, ts);
            }
            r.handle_advert(t(w.at_ms), &a);
            collect(&mut r, t(w.at_ms));
        }
    }
    (log, r.state(), r.poll_timeout())
}

fn arb_case() -> impl Strategy<Value = (RouterConfig, Vec<Wire>)> {
    let config = (
        any::<bool>(),
        prop::sample::select(vec![1u8, 100, 150, 200, 254, 255]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(v2, priority, preempt, delay)| {
            let mut c = cfg(if v2 { Version::V2 } else { Version::V3 }, priority);
            c.preempt = preempt;
            c.preempt_delay = if delay {
                Duration::from_secs(3)
            } else {
                Duration::ZERO
            };
            c
        });
    // Runs of identical adverts with random gaps.
    let run = (
        any::<bool>(),
        prop::sample::select(vec![0u8, 50, 150, 200, 255]),
        prop::sample::select(vec![1u64, 2]),
        1usize..6,
        prop::collection::vec(100u64..4000, 6),
    );
    (config, prop::collection::vec(run, 1..8)).prop_map(|(c, runs)| {
        let mut at = 0;
        let mut wire = Vec::new();
        for (a, priority, secs, n, gaps) in runs {
            let src = if a {
                PEER
            } else {
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 250))
            };
            for gap in gaps.into_iter().take(n) {
                at += gap;
                wire.push(Wire {
                    at_ms: at,
                    src,
                    priority,
                    interval: Duration::from_secs(secs),
                });
            }
        }
        (c, wire)
    })
}

proptest! {
    /// The data plane delivers only the first of a run of identical adverts
    /// and the daemon hands over the newest one when a deadline is due:
    /// the core must end up with the same actions (at the same times), the
    /// same state and the same deadline as if it had seen every advert
    /// (the note at the end of proto-api.md).
    #[test]
    fn suppressing_identical_adverts_changes_nothing((c, wire) in arb_case()) {
        let full = drive(&c, &wire, false);
        let suppressed = drive(&c, &wire, true);
        prop_assert_eq!(full, suppressed);
    }
}

// ---- sync groups (keepalived's vrrp_sync.c, module doc) --------------------

#[test]
fn sync_backup_steps_a_master_down_silently_and_arms_master_down() {
    let (mut r, at) = master(cfg(Version::V3, 100));
    let now = at + SEC / 2;
    r.handle_sync_backup(now);
    assert_eq!(
        drain(&mut r),
        [
            Action::StateChange {
                from: State::Master,
                to: State::Backup
            },
            Action::RemoveVips
        ],
        "no advert at all, as keepalived's vrrp_sync_backup"
    );
    assert_eq!(r.poll_timeout(), Some(now + r.master_down_interval()));
}

#[test]
fn held_backup_does_not_take_over_and_wants_master_until_released() {
    let mut r = started(cfg(Version::V3, 100), t(0));
    r.set_sync_hold(t(0), true);
    let at = r.poll_timeout().unwrap();
    r.handle_timeout(at);
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.state(), State::Backup);
    assert!(r.wants_master());
    assert_eq!(
        r.poll_timeout(),
        Some(at + r.master_down_interval()),
        "Master_Down_Timer restarts while it waits for its group"
    );
    r.handle_timeout(at + r.master_down_interval());
    assert_eq!(drain(&mut r), []);
    assert!(r.wants_master());
    r.set_sync_hold(at + SEC, false);
    assert_eq!(drain(&mut r), become_master_actions(100, State::Backup));
}

#[test]
fn a_followed_advert_withdraws_a_held_backups_wish() {
    let mut r = started(cfg(Version::V3, 100), t(0));
    r.set_sync_hold(t(0), true);
    let at = r.poll_timeout().unwrap();
    r.handle_timeout(at);
    assert!(r.wants_master());
    r.handle_advert(at + SEC, &adv(PEER, 150, SEC, Version::V3));
    assert!(!r.wants_master());
    r.set_sync_hold(at + SEC, false);
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn held_owner_starts_as_a_backup_wanting_master() {
    let mut r = VirtualRouter::new(cfg(Version::V3, 255));
    r.set_sync_hold(t(0), true);
    r.handle_startup(t(0));
    assert_eq!(r.state(), State::Backup);
    assert!(r.wants_master());
}
