//! The fault suite (issue 9): faults an operator meets in real networks,
//! injected into two vrrp-agent routers and a client on a bridge, each
//! scenario asserting the outcome a user needs. Run as root by `cargo
//! xtask test`; every namespace, process and file is removed at the end.
//!
//! Router 0 (192.0.2.1, priority 150) is the master, router 1 (192.0.2.2,
//! priority 100) the backup, host 2 (192.0.2.100) the client.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::{
    thread::sleep,
    time::{Duration, Instant},
};

use nix::sys::signal::Signal;
use tests::{
    cluster::{
        Agent, Lab, has_address, mac_string, neigh_mac, one_instance_config, ping, sole_holder,
        wait_holder, wait_until,
    },
    faults::{
        Capture, add_vrrp_loss, expected_false_takeovers, max_gap_ns, remove_vrrp_loss,
        snooping_with_querier, transitions,
    },
};

const VIP: &str = "192.0.2.10";
const VIP6: &str = "2001:db8::10";
const SETTLE: Duration = Duration::from_secs(10);

/// A one-instance config (VRRPv3, VRID 51) with adverts every `interval`.
fn config(priority: u8, interval: &str, vips: &str) -> String {
    one_instance_config(priority, interval, vips, "")
}

fn v4(priority: u8, interval: &str) -> String {
    config(priority, interval, &format!("\"{VIP}/24\""))
}

/// Router 0 as MASTER, then router 1 as BACKUP (in that order, so no
/// start-up race adds transitions).
fn master_and_backup(lab: &Lab, interval: &str) -> (Agent, Agent) {
    let m = lab.agent(0, &v4(150, interval));
    m.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    let b = lab.agent(1, &v4(100, interval));
    b.wait_state("VI_1", "BACKUP", SETTLE).unwrap();
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 0);
    (m, b)
}

fn state(a: &Agent) -> String {
    a.state("VI_1").unwrap_or_else(|| "(no answer)".into())
}

/// Both routers in their roles, the VIP on router 0 alone.
fn assert_roles(lab: &Lab, m: &Agent, b: &Agent) {
    assert_eq!(state(m), "MASTER", "{}", m.log_tail(30));
    assert_eq!(state(b), "BACKUP", "{}", b.log_tail(30));
    assert_eq!(
        sole_holder(&[lab.router(0), lab.router(1)], VIP),
        Some(0),
        "the VIP must be on router 0 alone"
    );
}

/// A backup that cannot run for a second (SIGSTOP: a starved or swapped
/// process) must not take over when it resumes: the adverts that arrived
/// meanwhile show the master alive.
#[test]
fn backup_starved_does_not_take_over() {
    let lab = Lab::new("fst", 2);
    let (m, b) = master_and_backup(&lab, "100ms");
    let (tm, tb) = (transitions(&m).unwrap(), transitions(&b).unwrap());
    b.signal(Signal::SIGSTOP).unwrap();
    sleep(Duration::from_secs(1));
    b.signal(Signal::SIGCONT).unwrap();
    // Several Master_Down_Intervals (0.36 s) after it resumes.
    sleep(Duration::from_secs(1));
    assert_roles(&lab, &m, &b);
    assert_eq!(
        transitions(&b).unwrap(),
        tb,
        "the starved backup changed state\n{}",
        b.log_tail(30)
    );
    assert_eq!(transitions(&m).unwrap(), tm, "the master changed state");
}

/// The master hangs for 2 s (SIGSTOP) and then resumes: the backup takes
/// over once, and afterwards there is exactly one master, the client's
/// entry for the VIP points at it (moved by gratuitous ARP: the client
/// sends nothing meanwhile), and the VIP answers.
#[test]
fn master_hung_then_resumed() {
    let lab = Lab::new("fhg", 2);
    let (m, b) = master_and_backup(&lab, "100ms");
    let mac0 = mac_string(lab.router(0));
    assert!(ping(lab.client(), VIP));
    let tb = transitions(&b).unwrap();
    m.signal(Signal::SIGSTOP).unwrap();
    let t0 = Instant::now();
    b.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    sleep(Duration::from_secs(2).saturating_sub(t0.elapsed()));
    m.signal(Signal::SIGCONT).unwrap();

    b.wait_state("VI_1", "BACKUP", SETTLE).unwrap();
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 0);
    let on_master = wait_until(SETTLE, || {
        neigh_mac(lab.client(), VIP).as_deref() == Some(mac0.as_str())
    });
    assert!(
        on_master.is_some(),
        "client entry for the VIP still {:?} (master {mac0})",
        neigh_mac(lab.client(), VIP)
    );
    assert_roles(&lab, &m, &b);
    assert_eq!(
        transitions(&b).unwrap() - tb,
        2,
        "one takeover (BACKUP→MASTER→BACKUP)\n{}",
        b.log_tail(30)
    );
    assert!(ping(lab.client(), VIP), "VIP unreachable after the resume");
}

/// Split brain healed (issue 9, defect 2): the master's bridge port leaves
/// the bridge, so the backup and the client see no master; the backup
/// takes over and the client follows it. When the port returns, the first
/// adverts of the two masters cross in either order; whatever the order,
/// within one advert interval there must be one master and the client's
/// entry must point at it (RFC 9568 re-assertion covers one order only).
/// Five trials, healed at different points of router 1's advert cycle.
#[test]
fn split_brain_heal_moves_every_client_within_one_interval() {
    const INTERVAL: Duration = Duration::from_millis(500);
    let lab = Lab::new("fsb", 2);
    let (m, b) = master_and_backup(&lab, "500ms");
    let (mac0, mac1) = (mac_string(lab.router(0)), mac_string(lab.router(1)));
    assert!(ping(lab.client(), VIP));
    let bridge = &lab.lan.lan;
    let mut late = Vec::new();
    for trial in 0..5 {
        bridge.ip(&["link", "set", "p0", "nomaster"]).unwrap();
        b.wait_state("VI_1", "MASTER", SETTLE).unwrap();
        let follows = wait_until(SETTLE, || {
            neigh_mac(lab.client(), VIP).as_deref() == Some(mac1.as_str())
        });
        assert!(
            follows.is_some(),
            "trial {trial}: client never followed router 1"
        );
        assert_eq!(state(&m), "MASTER", "router 0 alone stays MASTER");

        // Router 1 advertised when it took over, just now; healing at a
        // later point of its advert cycle in each trial makes its next
        // advert reach router 0 sooner, so the trials cover both orders.
        sleep(INTERVAL * trial / 5);
        bridge.ip(&["link", "set", "p0", "master", "br0"]).unwrap();
        let healed = Instant::now();
        let moved = wait_until(INTERVAL, || {
            neigh_mac(lab.client(), VIP).as_deref() == Some(mac0.as_str())
        });
        if moved.is_none() {
            late.push(trial);
        }
        b.wait_state("VI_1", "BACKUP", SETTLE).unwrap();
        wait_holder(&[lab.router(0), lab.router(1)], VIP, 0);
        // How late, for the log (a client left behind waits for its
        // entry to expire: not worth waiting for here).
        let after = wait_until(Duration::from_secs(2), || {
            neigh_mac(lab.client(), VIP).as_deref() == Some(mac0.as_str())
        });
        eprintln!(
            "trial {trial}: client on the master after {:?}{}",
            after.map(|_| healed.elapsed()),
            if moved.is_none() { " (LATE)" } else { "" }
        );
        assert_roles(&lab, &m, &b);
    }
    assert!(
        late.is_empty(),
        "trials {late:?} of 5: the client was not on the surviving master's MAC \
         within one advert interval ({INTERVAL:?}) of the heal"
    );
}

/// A storm of reloads (100 SIGHUPs to each router) at 10 ms adverts
/// changes nothing: no transition, and the master's adverts, captured at
/// the client, never pause for more than three intervals (a backup takes
/// over after 3 × interval + Skew_Time). On a loaded machine adverts pause
/// now and then with no reload at all, so the pauses of an equally long
/// quiet window just before are the floor: the storm may not double them.
#[test]
fn reload_storm_at_10ms_no_transition_no_gap() {
    const INTERVAL: Duration = Duration::from_millis(10);
    let lab = Lab::new("frl", 2);
    let (m, b) = master_and_backup(&lab, "10ms");
    let (tm, tb) = (transitions(&m).unwrap(), transitions(&b).unwrap());
    let capture = || {
        Capture::start(
            lab.client(),
            &lab.dir,
            "eth0",
            "ip proto 112 and src host 192.0.2.1",
        )
        .unwrap()
    };
    let window = |cap: Capture, what: &str| {
        let times: Vec<i64> = cap.stop().unwrap().iter().map(|f| f.t_ns).collect();
        assert!(
            times.len() > 150,
            "{what}: only {} adverts captured in ~2.4 s",
            times.len()
        );
        Duration::from_nanos(u64::try_from(max_gap_ns(&times)).unwrap_or(0))
    };
    let cap = capture();
    sleep(INTERVAL * 240);
    let quiet = window(cap, "quiet window");
    let cap = capture();
    sleep(INTERVAL * 10);
    for _ in 0..100 {
        m.signal(Signal::SIGHUP).unwrap();
        sleep(INTERVAL);
        b.signal(Signal::SIGHUP).unwrap();
        sleep(INTERVAL);
    }
    sleep(INTERVAL * 30);
    let storm = window(cap, "reload storm");
    eprintln!(
        "longest pause of the master's adverts: {quiet:?} quiet, {storm:?} during the reloads"
    );
    assert_roles(&lab, &m, &b);
    assert_eq!(transitions(&m).unwrap(), tm, "{}", m.log_tail(30));
    assert_eq!(transitions(&b).unwrap(), tb, "{}", b.log_tail(30));
    assert!(
        storm <= (INTERVAL * 3).max(quiet * 2),
        "the master's adverts paused {storm:?} during the reloads ({quiet:?} without)"
    );
}

/// A reload with a broken config file keeps the daemon running exactly as
/// it was: same instances, same states, the VIP kept (keepalived exits and
/// leaks the VIP).
#[test]
fn bad_reload_keeps_running_as_it_was() {
    let lab = Lab::new("fbr", 2);
    let (mut m, b) = master_and_backup(&lab, "100ms");
    let view = |a: &Agent| {
        let st = a.status().expect("status");
        let i = &st["instances"][0];
        (
            i["name"].clone(),
            i["state"].clone(),
            i["priority"].clone(),
            i["virtual_ips"].clone(),
            i["transitions"].clone(),
            i["master"].clone(),
        )
    };
    let before = view(&m);
    std::fs::write(&m.config, "[global\n[[instance]]\nname = \n").unwrap();
    m.signal(Signal::SIGHUP).unwrap();
    sleep(Duration::from_millis(800));
    assert!(
        !m.wait_exit(Duration::from_millis(10)),
        "the agent exited on a bad reload\n{}",
        m.log_tail(20)
    );
    assert_eq!(view(&m), before, "status changed after a bad reload");
    assert_roles(&lab, &m, &b);
    assert!(ping(lab.client(), VIP));
}

/// Twenty link flaps, of the master's link and the backup's in turn, some
/// shorter and some longer than Master_Down_Interval: afterwards one
/// master, the VIP on it alone, and none left on the other router.
#[test]
fn link_flaps_end_with_one_master_and_no_leaked_vip() {
    let lab = Lab::new("flf", 2);
    let (m, b) = master_and_backup(&lab, "100ms");
    let down_ms = [20u64, 150, 450, 60, 800];
    let up_ms = [30u64, 300, 100, 600];
    for i in 0..20 {
        let r = lab.router(i % 2);
        r.ip(&["link", "set", "eth0", "down"]).unwrap();
        sleep(Duration::from_millis(down_ms[i % down_ms.len()]));
        r.ip(&["link", "set", "eth0", "up"]).unwrap();
        sleep(Duration::from_millis(up_ms[i % up_ms.len()]));
    }
    m.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    b.wait_state("VI_1", "BACKUP", SETTLE).unwrap();
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 0);
    // And it stays so.
    sleep(Duration::from_millis(500));
    assert_roles(&lab, &m, &b);
    assert!(!has_address(lab.router(1), "eth0", VIP), "leaked VIP");
    assert!(ping(lab.client(), VIP));
}

/// IPv6 on a bridge that snoops MLD, with a querier (issue 9, defect 1):
/// ff02::12 reaches only ports that joined it, so a router that receives
/// adverts without joining the group hears nothing and both become MASTER.
#[test]
fn ipv6_on_snooping_bridge_with_querier_elects_one_master() {
    let lab = Lab::new("fmld", 2);
    snooping_with_querier(&lab.lan.lan).unwrap();
    let cfg = |p: u8| config(p, "100ms", &format!("\"fe80::51/64\", \"{VIP6}/64\""));
    let m = lab.agent(0, &cfg(150));
    m.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    let b = lab.agent(1, &cfg(100));
    b.wait_state("VI_1", "BACKUP", SETTLE).unwrap();
    // Many Master_Down_Intervals (0.36 s): a backup that hears nothing is
    // MASTER by now.
    sleep(Duration::from_secs(2));
    assert_eq!(state(&m), "MASTER");
    assert_eq!(
        state(&b),
        "BACKUP",
        "the backup does not hear the master through a snooping bridge\n{}",
        b.log_tail(20)
    );
    assert_eq!(
        sole_holder(&[lab.router(0), lab.router(1)], VIP6),
        Some(0),
        "{VIP6} must be on router 0 alone"
    );
}

/// Random loss of 25 % of the master's adverts for 10 s at 20 ms adverts
/// (500 adverts): the backup may take over only when three adverts in a
/// row are lost (Master_Down_Interval = 3 × interval + Skew_Time), about
/// adverts × (1 − p) × p³ ≈ 6 times. A backup that gives up earlier (after
/// one or two lost adverts) takes over 25 to 90 times; the assertion allows
/// three times the expectation, plus three, for the machine's own jitter.
#[test]
fn loss_on_master_link_false_takeovers_within_rfc_bound() {
    let lab = Lab::new("fls", 2);
    let (m, b) = master_and_backup(&lab, "20ms");
    let tb = transitions(&b).unwrap();
    add_vrrp_loss(&lab.lan.lan, "p0", 25).unwrap();
    sleep(Duration::from_secs(10));
    let (seen, dropped) = remove_vrrp_loss(&lab.lan.lan).unwrap();
    b.wait_state("VI_1", "BACKUP", SETTLE).unwrap();
    m.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 0);
    let changes = transitions(&b).unwrap() - tb;
    let takeovers = changes.div_ceil(2);
    assert!(seen > 300, "only {seen} adverts of the master seen");
    let p = dropped as f64 / seen as f64;
    let expected = expected_false_takeovers(seen, p);
    let bound = 3.0 * expected + 3.0;
    eprintln!(
        "loss {:.1} % of {seen} adverts: {takeovers} takeovers (RFC rule expects {expected:.1}, bound {bound:.1})",
        p * 100.0
    );
    assert!(
        takeovers as f64 <= bound,
        "{takeovers} false takeovers at {:.1} % loss over {seen} adverts; the three-missed-adverts \
         rule expects {expected:.1}",
        p * 100.0
    );
    assert_roles(&lab, &m, &b);
}
