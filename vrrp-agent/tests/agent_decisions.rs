//! The agent's decisions, without root, on a virtual clock: reload, the
//! graceful-stop handover, the Master_Down catch-up from `LAST_SEEN` with the
//! suppressed-advert replay, link down/up, and the deliver-all flag. Each
//! test fails if its rule is removed. `LAST_SEEN` is a fake.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::{cell::RefCell, collections::HashMap, net::IpAddr, time::Duration};

use vrrp_agent::{
    agent::{
        AdvertIn, Agent, Command, HandoverStep, InstanceId, LastSeen, Link, SeenAdvert,
        handover::{HANDOVER_WAIT_MAX, TAKEOVER_GRACE},
    },
    config::{Config, Instance},
    proto::{Family, Instant, RxAdvert, State, Version},
};

const IFINDEX: u32 = 7;
const VRID: u8 = 51;
const SEC: Duration = Duration::from_secs(1);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn t(ms: u64) -> Instant {
    Instant::from_nanos(1_000_000_000 + ms * 1_000_000)
}

/// One instance on `eth0`, VRID 51, v3, 1 s adverts, with `extra` keys.
fn instance(priority: u8, extra: &str) -> Instance {
    let text = format!(
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = {VRID}\n\
         priority = {priority}\nadvert_interval = \"1s\"\n\
         virtual_ips = [\"192.0.2.10/24\"]\n{extra}\n"
    );
    match Config::parse(&text, "t.toml") {
        Ok(mut c) => c.instances.remove(0),
        Err(e) => panic!("{e}"),
    }
}

fn link(up: bool) -> Link {
    Link {
        ifindex: IFINDEX,
        up,
        source: Some(ip("192.0.2.2")),
    }
}

/// A fake `LAST_SEEN`: the newest advert per VRID, set by the test.
#[derive(Default)]
struct Seen(RefCell<HashMap<(u32, u8, Family), SeenAdvert>>);

impl Seen {
    fn set(&self, ts: Instant, priority: u8) {
        self.0.borrow_mut().insert(
            (IFINDEX, VRID, Family::V4),
            SeenAdvert {
                ts,
                advert: peer(priority),
            },
        );
    }
}

impl LastSeen for Seen {
    fn last_seen(&self, ifindex: u32, vrid: u8, family: Family) -> Option<SeenAdvert> {
        self.0.borrow().get(&(ifindex, vrid, family)).copied()
    }
}

fn peer(priority: u8) -> RxAdvert {
    RxAdvert {
        src: ip("192.0.2.1"),
        priority,
        interval: SEC,
        version: Version::V3,
    }
}

fn event(ts: Instant, prev_ts: Option<Instant>, priority: u8) -> AdvertIn {
    AdvertIn {
        ifindex: IFINDEX,
        vrid: VRID,
        ts,
        prev_ts,
        advert: peer(priority),
    }
}

fn drain(a: &mut Agent) -> Vec<Command> {
    std::iter::from_fn(|| a.poll_command()).collect()
}

fn state(a: &Agent) -> State {
    a.instances()[0].router().state()
}

/// A started agent with one Backup instance following a priority-150
/// master whose advert arrived at `t(10)`.
fn backup_following(priority: u8, extra: &str) -> (Agent, InstanceId) {
    let mut a = Agent::new();
    let id = a.add_instance(t(0), instance(priority, extra), link(true));
    a.start(t(0));
    a.handle_advert(t(10), &event(t(10), None, 150));
    drain(&mut a);
    assert_eq!(state(&a), State::Backup);
    (a, id)
}

/// A started agent whose one instance took over as MASTER.
fn master() -> (Agent, InstanceId, Instant) {
    let mut a = Agent::new();
    let id = a.add_instance(t(0), instance(100, ""), link(true));
    a.start(t(0));
    let at = a.poll_timeout().unwrap();
    a.handle_timeout(at, &Seen::default());
    drain(&mut a);
    assert_eq!(state(&a), State::Master);
    (a, id, at)
}

// ---- wire order ----------------------------------------------------------------

/// On a takeover the advert is the first command, the VIPs follow, and
/// their announcement starts after their first round went out with them.
#[test]
fn takeover_commands_come_advert_first() {
    let mut a = Agent::new();
    let id = a.add_instance(t(0), instance(100, ""), link(true));
    a.start(t(0));
    drain(&mut a);
    let at = a.poll_timeout().unwrap();
    a.handle_timeout(at, &Seen::default());
    let cmds = drain(&mut a);
    assert!(
        matches!(&cmds[0], Command::SendAdvert { id: i, advert, .. } if *i == id && advert.priority == 100),
        "{cmds:#?}"
    );
    let pos = |f: &dyn Fn(&Command) -> bool| cmds.iter().position(f).unwrap();
    let add = pos(&|c| matches!(c, Command::AddVips { .. }));
    let announce = pos(&|c| {
        matches!(
            c,
            Command::Announce {
                first_round_sent: true,
                ..
            }
        )
    });
    let changed = pos(&|c| {
        matches!(
            c,
            Command::StateChanged {
                to: State::Master,
                ..
            }
        )
    });
    assert!(changed < add && add < announce, "{cmds:#?}");
}

// ---- reload --------------------------------------------------------------------

/// An instance whose settings did not change keeps its state, its timer and
/// its counters: no transition, no advert, nothing but the data-plane sync.
#[test]
fn reload_keeps_an_unchanged_instance_and_its_timers() {
    let (mut a, id) = backup_following(100, "");
    let deadline = a.poll_timeout();
    let transitions = a.instances()[0].transitions();
    let started = a.reload(t(500), &[instance(100, "")]);
    assert!(started.is_empty());
    a.finish_reload(t(500));
    assert_eq!(drain(&mut a), vec![Command::ApplyDataPlane]);
    assert_eq!(a.poll_timeout(), deadline);
    assert_eq!(a.instances()[0].transitions(), transitions);
    assert_eq!(a.instances()[0].id(), id);
    assert_eq!(state(&a), State::Backup);
}

/// A higher priority on a preempting Backup: the lower master's adverts
/// are discarded from then on, so the Backup takes over at its deadline.
#[test]
fn reload_with_a_higher_priority_preempts() {
    let (mut a, _) = backup_following(100, "");
    assert!(a.reload(t(500), &[instance(200, "")]).is_empty());
    a.finish_reload(t(500));
    drain(&mut a);
    assert_eq!(a.instances()[0].router().priority(), 200);
    // The master goes on advertising priority 150: now lower than ours.
    a.handle_advert(t(1010), &event(t(1010), Some(t(10)), 150));
    let deadline = a.poll_timeout().unwrap();
    a.handle_timeout(deadline, &Seen::default());
    assert_eq!(state(&a), State::Master);
    let cmds = drain(&mut a);
    assert!(
        matches!(&cmds[0], Command::SendAdvert { advert, .. } if advert.priority == 200),
        "{cmds:#?}"
    );
}

/// A removed instance resigns if MASTER and its I/O is released; a new one
/// is handed back for the shell to resolve, then started.
#[test]
fn reload_stops_removed_and_starts_new_instances() {
    let (mut a, id, _) = master();
    let mut other = instance(100, "");
    other.name = "VI_2".into();
    other.vrid = 52;
    let started = a.reload(t(5000), std::slice::from_ref(&other));
    assert_eq!(started, vec![other.clone()]);
    let cmds = drain(&mut a);
    assert!(matches!(&cmds[0], Command::SendAdvert { advert, .. } if advert.priority == 0));
    assert!(cmds.contains(&Command::Forget { id }));
    let new_id = a.add_instance(t(5000), other, link(true));
    a.finish_reload(t(5000));
    let cmds = drain(&mut a);
    assert_eq!(cmds[0], Command::ApplyDataPlane);
    assert_eq!(a.instances().len(), 1);
    assert_eq!(a.instances()[0].id(), new_id);
    assert_eq!(state(&a), State::Backup);
}

// ---- graceful stop -------------------------------------------------------------

/// After resigning, the stop waits until `LAST_SEEN` shows a new master's
/// advert (received after the resign, priority > 0), then leaves it a
/// grace to add and announce the VIPs.
#[test]
fn stop_waits_for_the_new_master_in_last_seen() {
    let (mut a, _, at) = master();
    let stop = at + SEC * 10;
    let mut h = a.handle_stop(stop);
    let cmds = drain(&mut a);
    assert!(matches!(&cmds[0], Command::SendAdvert { advert, .. } if advert.priority == 0));
    assert!(cmds.iter().any(|c| matches!(c, Command::RemoveVips { .. })));
    let seen = Seen::default();
    // An advert from before the resign, or our own priority 0, is no
    // new master.
    seen.set(stop - Duration::from_millis(1), 100);
    assert!(matches!(h.poll(stop, &seen), HandoverStep::Wait(_)));
    seen.set(stop + Duration::from_millis(1), 0);
    assert!(matches!(
        h.poll(stop + Duration::from_millis(1), &seen),
        HandoverStep::Wait(_)
    ));
    seen.set(stop + Duration::from_millis(5), 100);
    assert_eq!(
        h.poll(stop + Duration::from_millis(6), &seen),
        HandoverStep::Done(TAKEOVER_GRACE)
    );
}

/// Nobody takes over: the wait ends at the limit (the longest
/// Master_Down_Interval, at most HANDOVER_WAIT_MAX); a router that was not
/// MASTER does not wait at all.
#[test]
fn stop_gives_up_at_the_limit() {
    let (mut a, _, at) = master();
    let stop = at + SEC * 10;
    let mut h = a.handle_stop(stop);
    drain(&mut a);
    let seen = Seen::default();
    let limit = HANDOVER_WAIT_MAX.min(Duration::from_millis(3609));
    match h.poll(stop, &seen) {
        HandoverStep::Wait(until) => assert!(until <= stop + limit),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        h.poll(stop + limit - Duration::from_millis(1), &seen),
        HandoverStep::Wait(_)
    ));
    assert_eq!(h.poll(stop + limit, &seen), HandoverStep::GiveUp);
    assert_eq!(h.pending().len(), 1);

    let (mut b, _) = backup_following(100, "");
    let mut h = b.handle_stop(t(100));
    assert_eq!(h.poll(t(100), &seen), HandoverStep::Done(Duration::ZERO));
}

// ---- Master_Down catch-up -----------------------------------------------------

/// At the Master_Down deadline the newest advert in `LAST_SEEN` (the
/// kernel suppressed the repeats) is delivered first: the master is alive,
/// the Backup stays Backup and its deadline moves on.
#[test]
fn master_down_deadline_catches_up_from_last_seen() {
    let (mut a, _) = backup_following(100, "");
    let deadline = a.poll_timeout().unwrap();
    let seen = Seen::default();
    seen.set(t(3010), 150);
    a.handle_timeout(deadline, &seen);
    assert_eq!(state(&a), State::Backup);
    let mdi = a.instances()[0].router().master_down_interval();
    assert_eq!(a.poll_timeout(), Some(t(3010) + mdi));
    assert!(drain(&mut a).is_empty());
    // The master really stops: nothing newer, the Backup takes over.
    a.handle_timeout(t(3010) + mdi, &seen);
    assert_eq!(state(&a), State::Master);
}

/// A Backup whose deadline is within CATCH_UP_AHEAD reads `LAST_SEEN` on a
/// wake-up for another deadline, but nothing fires before its time.
#[test]
fn deadline_just_ahead_is_caught_up_without_firing_early() {
    let (mut a, _) = backup_following(100, "");
    let deadline = a.poll_timeout().unwrap();
    let early = deadline - Duration::from_millis(1);
    a.handle_timeout(early, &Seen::default());
    assert_eq!(state(&a), State::Backup, "fired early");
    let seen = Seen::default();
    seen.set(t(3010), 150);
    a.handle_timeout(early, &seen);
    let mdi = a.instances()[0].router().master_down_interval();
    assert_eq!(a.poll_timeout(), Some(t(3010) + mdi));
}

/// A1 delivered, A2..An suppressed by the kernel, then B (lower priority,
/// discarded by a preempting Backup) whose event names An's time: An is
/// replayed first, so Master_Down runs from An, not from A1.
#[test]
fn suppressed_advert_is_replayed_before_the_event_that_replaced_it() {
    let (mut a, _) = backup_following(100, "");
    let an = t(2010);
    a.handle_advert(t(2510), &event(t(2510), Some(an), 50));
    let mdi = a.instances()[0].router().master_down_interval();
    assert_eq!(a.poll_timeout(), Some(an + mdi));
    a.handle_timeout(t(10) + mdi, &Seen::default());
    assert_eq!(state(&a), State::Backup, "took over from A1's deadline");
}

// ---- link, deliver-all -------------------------------------------------------

/// Interface down: the MASTER goes to FAULT and removes its VIPs; up again
/// it starts as at startup (Backup). Other interfaces and repeats are
/// ignored.
#[test]
fn link_down_faults_and_up_restarts() {
    let (mut a, id, at) = master();
    a.handle_link(at, IFINDEX + 1, false);
    assert!(drain(&mut a).is_empty());
    a.handle_link(at, IFINDEX, false);
    assert_eq!(state(&a), State::Fault);
    let cmds = drain(&mut a);
    assert!(cmds.contains(&Command::RemoveVips {
        id,
        vips: instance(100, "").virtual_ips
    }));
    assert!(cmds.contains(&Command::SetDeliverAll { id, on: false }));
    a.handle_link(at, IFINDEX, false);
    assert!(drain(&mut a).is_empty());
    assert_eq!(a.poll_timeout(), None);
    a.handle_link(at + SEC, IFINDEX, true);
    assert_eq!(state(&a), State::Backup);
    assert_eq!(
        a.poll_timeout(),
        Some(at + SEC + a.instances()[0].router().master_down_interval())
    );

    // Down at start: FAULT until the link comes up.
    let mut b = Agent::new();
    b.add_instance(t(0), instance(100, ""), link(false));
    b.start(t(0));
    assert_eq!(state(&b), State::Fault);
    b.handle_link(t(5), IFINDEX, true);
    assert_eq!(state(&b), State::Backup);
}

/// The deliver-all flag follows the core: on when MASTER, off as Backup.
/// Once it is on, an advert suppressed before it took effect is caught up
/// from `LAST_SEEN`: a lower-priority master gets its answer.
#[test]
fn deliver_all_follows_the_state_and_catches_up_when_set() {
    let mut a = Agent::new();
    let id = a.add_instance(t(0), instance(100, ""), link(true));
    a.start(t(0));
    assert!(
        !drain(&mut a)
            .iter()
            .any(|c| matches!(c, Command::SetDeliverAll { .. }))
    );
    let at = a.poll_timeout().unwrap();
    a.handle_timeout(at, &Seen::default());
    let cmds = drain(&mut a);
    assert_eq!(
        cmds.last(),
        Some(&Command::SetDeliverAll { id, on: true }),
        "{cmds:#?}"
    );
    let seen = Seen::default();
    seen.set(at + Duration::from_millis(1), 50);
    a.handle_deliver_all_set(at + Duration::from_millis(2), id, &seen);
    let cmds = drain(&mut a);
    assert!(
        matches!(&cmds[0], Command::SendAdvert { advert, .. } if advert.priority == 100),
        "{cmds:#?}"
    );
    assert!(cmds.iter().any(|c| matches!(c, Command::Announce { .. })));
    // A higher-priority master: back to Backup, flag off.
    a.handle_advert(at + SEC, &event(at + SEC, None, 200));
    assert_eq!(state(&a), State::Backup);
    assert!(drain(&mut a).contains(&Command::SetDeliverAll { id, on: false }));
}

/// Tracking's hook: a lower priority on a MASTER goes out in its next
/// advert.
#[test]
fn set_priority_reaches_the_next_advert() {
    let (mut a, id, at) = master();
    a.set_priority(at, id, 90);
    a.handle_timeout(at + SEC, &Seen::default());
    let cmds = drain(&mut a);
    assert!(
        matches!(&cmds[0], Command::SendAdvert { advert, .. } if advert.priority == 90),
        "{cmds:#?}"
    );
}

// ---- address owner -------------------------------------------------------------

/// An address owner (priority 255) is MASTER at once and never removes its
/// VIPs — they are the interface's own addresses: not on a stop, not on a
/// fault, and not as "left by a crash" at start.
#[test]
fn address_owner_never_removes_its_addresses() {
    let owner = instance(255, "");
    assert!(!vrrp_agent::agent::removes_stale_vips(&owner));
    assert!(vrrp_agent::agent::removes_stale_vips(&instance(254, "")));
    let mut a = Agent::new();
    a.add_instance(t(0), owner, link(true));
    a.start(t(0));
    assert_eq!(state(&a), State::Master);
    assert!(
        drain(&mut a)
            .iter()
            .any(|c| matches!(c, Command::AddVips { .. }))
    );
    a.handle_link(t(5), IFINDEX, false);
    assert_eq!(state(&a), State::Fault);
    let faulted = drain(&mut a);
    assert!(
        !faulted
            .iter()
            .any(|c| matches!(c, Command::RemoveVips { .. })),
        "{faulted:#?}"
    );
    a.handle_link(t(6), IFINDEX, true);
    drain(&mut a);
    let _ = a.handle_stop(t(10));
    let stopped = drain(&mut a);
    assert!(matches!(&stopped[0], Command::SendAdvert { advert, .. } if advert.priority == 0));
    assert!(
        !stopped
            .iter()
            .any(|c| matches!(c, Command::RemoveVips { .. })),
        "{stopped:#?}"
    );
}

// ---- interfaces that are not ready ---------------------------------------------

/// An interface without an advert source yet (no IPv4 address, link-local
/// address tentative) or down at start: FAULT with the reason, and out of
/// it once the shell resolves the interface again — no restart.
#[test]
fn instance_waits_in_fault_until_its_interface_is_usable() {
    let mut a = Agent::new();
    let id = a.add_instance(
        t(0),
        instance(100, ""),
        Link {
            source: None,
            ..link(true)
        },
    );
    a.start(t(0));
    assert_eq!(state(&a), State::Fault);
    assert_eq!(
        a.instances()[0].fault_reason(),
        Some("no IPv4 address on the interface")
    );
    assert_eq!(a.poll_timeout(), None);
    // The link going up and down changes nothing without a source.
    a.handle_link(t(1), IFINDEX, false);
    assert_eq!(a.instances()[0].fault_reason(), Some("interface down"));
    a.handle_link(t(2), IFINDEX, true);
    assert_eq!(state(&a), State::Fault);
    // The address appears.
    a.handle_resolved(t(3), id, link(true));
    assert_eq!(state(&a), State::Backup);
    assert_eq!(a.instances()[0].fault_reason(), None);
    assert_eq!(a.instances()[0].source(), Some(ip("192.0.2.2")));
    let mdi = a.instances()[0].router().master_down_interval();
    assert_eq!(a.poll_timeout(), Some(t(3) + mdi));
}

/// The interface is deleted and created again under the same name: the
/// instance follows the new index, the data plane is re-applied (XDP
/// attached to it) before the instance starts again.
#[test]
fn recreated_interface_is_taken_up_again() {
    let (mut a, id, at) = master();
    a.handle_link(at, IFINDEX, false);
    assert_eq!(state(&a), State::Fault);
    drain(&mut a);
    a.handle_resolved(
        at + SEC,
        id,
        Link {
            ifindex: IFINDEX + 10,
            ..link(true)
        },
    );
    let cmds = drain(&mut a);
    assert_eq!(cmds.first(), Some(&Command::ApplyDataPlane), "{cmds:#?}");
    assert_eq!(state(&a), State::Backup);
    assert_eq!(a.instances()[0].ifindex(), IFINDEX + 10);
    assert_eq!(a.ifindexes(), vec![IFINDEX + 10]);
}
