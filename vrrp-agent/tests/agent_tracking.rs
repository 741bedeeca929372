//! Health tracking and sync groups in the agent, on a virtual clock: each
//! keepalived rule (SPEC "Health checks, tracking, sync groups") through
//! [`Agent::handle_check`] / [`Agent::handle_tracked_link`], each test
//! failing if its rule is removed.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::{ffi::OsString, net::IpAddr, sync::Arc, time::Duration};

use vrrp_agent::{
    agent::{AdvertIn, Agent, Command, LastSeen, Link, SeenAdvert},
    checks::{CheckEvent, Outcome, state::Failure},
    config::Config,
    proto::{Family, Instant, RxAdvert, State, Version},
};

const IFINDEX: u32 = 7;

fn t(ms: u64) -> Instant {
    Instant::from_nanos(1_000_000_000 + ms * 1_000_000)
}

struct NoSeen;
impl LastSeen for NoSeen {
    fn last_seen(&self, _: u32, _: u8, _: Family) -> Option<SeenAdvert> {
        None
    }
}

const CHECKS: &str = "[[check]]\nname = \"alive\"\nkind = \"process\"\nprocess = \"redis-server\"\n\
    [[check]]\nname = \"ping\"\nkind = \"tcp\"\naddress = \"127.0.0.1:6379\"\n";

/// An instance `name` (VRID `vrid`) with `extra` keys.
fn instance(name: &str, vrid: u8, priority: u8, extra: &str) -> String {
    format!(
        "[[instance]]\nname = \"{name}\"\ninterface = \"eth0\"\nvrid = {vrid}\npriority = {priority}\n\
         advert_interval = \"1s\"\nvirtual_ips = [\"192.0.2.{vrid}/24\"]\n{extra}\n"
    )
}

/// An agent with the config `text`, its checks and groups, started at t(0).
fn agent(text: &str) -> Agent {
    let c = Config::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let mut a = Agent::new();
    for inst in &c.instances {
        let link = Link {
            ifindex: IFINDEX,
            up: true,
            source: Some("192.0.2.2".parse().unwrap()),
        };
        a.add_instance(t(0), inst.clone(), link);
    }
    a.configure_tracking(&c.checks, &c.sync_groups);
    a.start(t(0));
    a
}

fn check(a: &mut Agent, now: u64, name: &str, up: bool) -> Vec<Command> {
    let outcome = if up {
        Outcome::Success
    } else {
        Outcome::Failure(Failure::NoProcess)
    };
    let ev = CheckEvent {
        check: Arc::from(name),
        outcome,
        duration: Duration::from_micros(100),
        at: t(now),
    };
    a.handle_check(t(now), &ev);
    drain(a)
}

fn drain(a: &mut Agent) -> Vec<Command> {
    std::iter::from_fn(|| a.poll_command()).collect()
}

fn state(a: &Agent, i: usize) -> State {
    a.instances()[i].router().state()
}

/// Fires due timers until `until`.
fn run_until(a: &mut Agent, until: u64) -> Vec<Command> {
    let mut out = Vec::new();
    while let Some(at) = a.poll_timeout().filter(|at| *at <= t(until)) {
        a.handle_timeout(at, &NoSeen);
        out.extend(drain(a));
    }
    out
}

fn master_advert(ts: Instant, priority: u8) -> AdvertIn {
    AdvertIn {
        ifindex: IFINDEX,
        vrid: 51,
        ts,
        prev_ts: None,
        advert: RxAdvert {
            src: "192.0.2.1".parse::<IpAddr>().unwrap(),
            priority,
            interval: Duration::from_secs(1),
            version: Version::V3,
        },
    }
}

fn sent_priorities(cmds: &[Command]) -> Vec<u8> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::SendAdvert { advert, .. } => Some(advert.priority),
            _ => None,
        })
        .collect()
}

fn notifies(cmds: &[Command]) -> Vec<Vec<String>> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Notify { argv, .. } => Some(
                argv.iter()
                    .map(|a: &OsString| a.to_string_lossy().into_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// A MASTER tracking `alive` with weight 0.
fn tracked_master(extra: &str) -> Agent {
    let mut a = agent(&format!(
        "{CHECKS}{}",
        instance(
            "VI_1",
            51,
            100,
            &format!("track = [{{ check = \"alive\" }}]\n{extra}")
        )
    ));
    check(&mut a, 1, "alive", true);
    run_until(&mut a, 5_000);
    assert_eq!(state(&a, 0), State::Master);
    a
}

#[test]
fn pending_weight_zero_check_holds_init_until_its_first_result() {
    let mut a = agent(&format!(
        "{CHECKS}{}",
        instance("VI_1", 51, 100, "track = [{ check = \"alive\" }]")
    ));
    assert_eq!(state(&a, 0), State::Init, "no result yet: no election");
    assert_eq!(a.poll_timeout(), None);
    assert!(a.instances()[0].tracking().pending);
    check(&mut a, 5, "alive", true);
    assert_eq!(
        state(&a, 0),
        State::Backup,
        "first success: starts as at startup"
    );
}

#[test]
fn weight_zero_failure_resigns_with_priority_zero_releases_vips_and_recovers() {
    let mut a = tracked_master("");
    let cmds = check(&mut a, 6_000, "alive", false);
    assert_eq!(state(&a, 0), State::Fault);
    let resign = cmds
        .iter()
        .position(|c| matches!(c, Command::SendAdvert { advert, .. } if advert.priority == 0));
    let remove = cmds
        .iter()
        .position(|c| matches!(c, Command::RemoveVips { .. }));
    assert!(
        matches!((resign, remove), (Some(r), Some(v)) if r < v),
        "priority-0 advert, then the VIPs released: {cmds:?}"
    );
    assert_eq!(
        a.instances()[0].fault_reason(),
        Some("check alive down: FAULT")
    );
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::Tracking { fault: Some(_), .. }))
    );
    check(&mut a, 7_000, "alive", true);
    assert_eq!(state(&a, 0), State::Backup, "recovered: back as at startup");
}

#[test]
fn negative_weight_lowers_the_priority_a_master_advertises() {
    let mut a = agent(&format!(
        "{CHECKS}{}",
        instance(
            "VI_1",
            51,
            100,
            "track = [{ check = \"ping\", weight = -60 }]"
        )
    ));
    run_until(&mut a, 5_000);
    assert_eq!(state(&a, 0), State::Master);
    let cmds = check(&mut a, 5_100, "ping", false);
    assert!(
        cmds.iter().any(|c| matches!(
            c,
            Command::Tracking {
                effective_priority: 40,
                ..
            }
        )),
        "{cmds:?}"
    );
    assert_eq!(a.instances()[0].router().priority(), 40);
    let cmds = run_until(&mut a, 7_000);
    assert!(sent_priorities(&cmds).iter().all(|p| *p == 40), "{cmds:?}");
    assert!(!sent_priorities(&cmds).is_empty());
    // The backup at 100 preempts: its higher-priority advert makes us BACKUP.
    a.handle_advert(t(7_100), &master_advert(t(7_100), 100));
    drain(&mut a);
    assert_eq!(state(&a, 0), State::Backup);
    // Recovery restores the configured priority.
    check(&mut a, 7_200, "ping", true);
    assert_eq!(a.instances()[0].router().priority(), 100);
}

#[test]
fn positive_weight_makes_a_preempting_backup_take_over() {
    let mut a = agent(&format!(
        "{CHECKS}{}",
        instance(
            "VI_1",
            51,
            100,
            "track = [{ check = \"ping\", weight = 60 }]"
        )
    ));
    a.handle_advert(t(10), &master_advert(t(10), 150));
    drain(&mut a);
    assert_eq!(state(&a, 0), State::Backup);
    check(&mut a, 20, "ping", true);
    assert_eq!(a.instances()[0].router().priority(), 160);
    // The master keeps advertising 150, which a preempting 160 ignores.
    for k in 1..=5u64 {
        a.handle_advert(t(10 + k * 1000), &master_advert(t(10 + k * 1000), 150));
        drain(&mut a);
        run_until(&mut a, 10 + k * 1000 + 999);
    }
    assert_eq!(state(&a, 0), State::Master);
}

#[test]
fn an_owner_keeps_255_whatever_the_weights() {
    let mut a = agent(&format!(
        "{CHECKS}{}",
        instance(
            "VI_1",
            51,
            255,
            "track = [{ check = \"ping\", weight = -60 }]"
        )
    ));
    check(&mut a, 1, "ping", false);
    assert_eq!(a.instances()[0].router().priority(), 255);
    assert_eq!(a.instances()[0].tracking().effective_priority, 255);
}

#[test]
fn a_tracked_interface_down_is_fault() {
    let mut a = agent(&format!(
        "{CHECKS}{}",
        instance("VI_1", 51, 100, "track = [{ interface = \"eth1\" }]")
    ));
    assert_eq!(a.tracked_interfaces(), ["eth1"]);
    run_until(&mut a, 5_000);
    assert_eq!(state(&a, 0), State::Master);
    a.handle_tracked_link(t(5_100), "eth1", false);
    drain(&mut a);
    assert_eq!(state(&a, 0), State::Fault);
    a.handle_tracked_link(t(5_200), "eth1", true);
    drain(&mut a);
    assert_eq!(state(&a, 0), State::Backup);
}

#[test]
fn notify_master_runs_as_written_and_generic_notify_gets_keepalived_arguments() {
    let mut a = agent(&format!(
        "{CHECKS}{}",
        instance(
            "VI_1",
            51,
            100,
            "notify_master = \"/m.sh 192.0.2.2 '6 379'\"\nnotify_fault = \"/f.sh\"\n\
             notify = \"/n.sh\"\ntrack = [{ check = \"ping\" }]"
        )
    ));
    check(&mut a, 1, "ping", true);
    let cmds = run_until(&mut a, 5_000);
    assert_eq!(
        notifies(&cmds),
        [
            vec!["/m.sh", "192.0.2.2", "6 379"],
            vec!["/n.sh", "INSTANCE", "VI_1", "MASTER", "100"]
        ]
    );
    let cmds = check(&mut a, 6_000, "ping", false);
    assert_eq!(
        notifies(&cmds),
        [
            vec!["/f.sh"],
            vec!["/n.sh", "INSTANCE", "VI_1", "FAULT", "100"]
        ]
    );
}

fn group_config(notify: &str) -> String {
    format!(
        "{CHECKS}{}{}[[sync_group]]\nname = \"G1\"\ninstances = [\"VI_4\", \"VI_5\"]\n{notify}\n",
        instance("VI_4", 51, 100, "track = [{ check = \"alive\" }]"),
        instance("VI_5", 52, 100, "")
    )
}

#[test]
fn one_member_in_fault_takes_the_group_to_fault_with_group_notify() {
    let mut a = agent(&group_config("notify = \"/g.sh\""));
    assert_eq!(
        (state(&a, 0), state(&a, 1)),
        (State::Init, State::Init),
        "a pending member holds the whole group in INIT"
    );
    check(&mut a, 1, "alive", true);
    let cmds = run_until(&mut a, 5_000);
    assert_eq!((state(&a, 0), state(&a, 1)), (State::Master, State::Master));
    assert!(notifies(&cmds).contains(&vec![
        "/g.sh".into(),
        "GROUP".into(),
        "G1".into(),
        "MASTER".into(),
        "0".into()
    ]));
    let cmds = check(&mut a, 6_000, "alive", false);
    assert_eq!((state(&a, 0), state(&a, 1)), (State::Fault, State::Fault));
    assert_eq!(
        a.instances()[1].fault_reason(),
        Some("sync group G1: member VI_4 in FAULT")
    );
    assert_eq!(
        notifies(&cmds),
        [vec!["/g.sh", "GROUP", "G1", "FAULT", "0"]]
    );
    check(&mut a, 7_000, "alive", true);
    assert_eq!((state(&a, 0), state(&a, 1)), (State::Backup, State::Backup));
}

#[test]
fn a_member_whose_own_link_goes_down_takes_the_group_to_fault() {
    let mut a = agent(&group_config(""));
    check(&mut a, 1, "alive", true);
    run_until(&mut a, 5_000);
    assert_eq!((state(&a, 0), state(&a, 1)), (State::Master, State::Master));
    // Both members share eth0 here; VI_5's link alone cannot go down, so
    // take VI_4's interface index away from VI_5 first.
    let link = Link {
        ifindex: IFINDEX + 1,
        up: true,
        source: Some("192.0.2.2".parse().unwrap()),
    };
    let id = a.instances()[1].id();
    a.handle_resolved(t(5_100), id, link);
    drain(&mut a);
    a.handle_link(t(5_200), IFINDEX, false);
    drain(&mut a);
    assert_eq!((state(&a, 0), state(&a, 1)), (State::Fault, State::Fault));
    a.handle_link(t(5_300), IFINDEX, true);
    drain(&mut a);
    assert_eq!((state(&a, 0), state(&a, 1)), (State::Backup, State::Backup));
}

/// Two members on two interfaces, so each hears its own peer.
fn split_group() -> Agent {
    let mut a = agent(&group_config(""));
    let link = Link {
        ifindex: IFINDEX + 1,
        up: true,
        source: Some("192.0.2.2".parse().unwrap()),
    };
    let id = a.instances()[1].id();
    a.handle_resolved(t(0), id, link);
    drain(&mut a);
    a
}

#[test]
fn a_member_yielding_to_a_better_master_takes_its_group_mate_to_backup_silently() {
    let mut a = split_group();
    check(&mut a, 1, "alive", true);
    run_until(&mut a, 5_000);
    assert_eq!((state(&a, 0), state(&a, 1)), (State::Master, State::Master));
    a.handle_advert(t(5_100), &master_advert(t(5_100), 200));
    let cmds = drain(&mut a);
    assert_eq!((state(&a, 0), state(&a, 1)), (State::Backup, State::Backup));
    let vi5 = a.instances()[1].id();
    assert!(
        !cmds
            .iter()
            .any(|c| matches!(c, Command::SendAdvert { id, .. } if *id == vi5)),
        "the group-mate stops advertising, as keepalived: {cmds:?}"
    );
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::RemoveVips { id, .. } if *id == vi5))
    );
}

#[test]
fn a_member_whose_master_is_gone_waits_while_its_mate_follows_a_live_master() {
    let mut a = split_group();
    check(&mut a, 1, "alive", true);
    // VI_5 (second interface) follows a live master, VI_4 hears nobody.
    for s in 0..10 {
        let ts = t(500 + s * 1_000);
        let mut ev = master_advert(ts, 200);
        ev.ifindex = IFINDEX + 1;
        ev.vrid = 52;
        a.handle_advert(ts, &ev);
        drain(&mut a);
        run_until(&mut a, 500 + s * 1_000 + 999);
    }
    assert_eq!((state(&a, 0), state(&a, 1)), (State::Backup, State::Backup));
    assert!(a.instances()[0].router().wants_master(), "held, not Master");
    // The other master goes too: the group becomes MASTER together.
    let cmds = run_until(&mut a, 20_000);
    assert_eq!((state(&a, 0), state(&a, 1)), (State::Master, State::Master));
    assert!(!cmds.is_empty());
}

/// A split group at t(4s) where VI_5 follows a live master, so VI_4 (whose
/// master nobody heard) is held, BACKUP, wanting MASTER.
fn held_vi4() -> Agent {
    let mut a = split_group();
    check(&mut a, 1, "alive", true);
    let ts = t(3_000);
    let mut ev = master_advert(ts, 200);
    ev.ifindex = IFINDEX + 1;
    ev.vrid = 52;
    a.handle_advert(ts, &ev);
    drain(&mut a);
    run_until(&mut a, 4_000);
    assert!(a.instances()[0].router().wants_master());
    assert_eq!(state(&a, 0), State::Backup);
    a
}

#[test]
fn a_member_held_by_a_group_removed_on_reload_takes_over() {
    let mut a = held_vi4();
    let c = Config::parse(&group_config(""), "t.toml").unwrap();
    a.configure_tracking(&c.checks, &[]);
    a.start(t(4_100));
    drain(&mut a);
    assert_eq!(state(&a, 0), State::Master, "no group holds it any more");
}

/// LAST_SEEN holding one advert of VRID 51 (the data plane suppressed its
/// event).
struct SeenVi4(Instant);
impl LastSeen for SeenVi4 {
    fn last_seen(&self, ifindex: u32, vrid: u8, _: Family) -> Option<SeenAdvert> {
        (ifindex == IFINDEX && vrid == 51).then(|| SeenAdvert {
            ts: self.0,
            advert: master_advert(self.0, 200).advert,
        })
    }
}

#[test]
fn a_held_member_catches_up_with_a_suppressed_advert_of_its_returning_master() {
    let mut a = held_vi4();
    // VI_4's master is back, its adverts seen only in LAST_SEEN: the
    // restarted Master_Down_Timer lets the agent catch up.
    let due = a.instances()[0].router().poll_timeout().expect("timer");
    a.handle_timeout(due, &SeenVi4(due - Duration::from_millis(100)));
    drain(&mut a);
    assert!(!a.instances()[0].router().wants_master());
    assert_eq!(
        a.instances()[0].router().current_master(),
        Some("192.0.2.1".parse().unwrap())
    );
}
