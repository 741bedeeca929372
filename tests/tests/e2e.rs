//! End to end: real vrrp-agent daemons in network namespaces on a bridge,
//! with a client, checked the way an operator would check them: instance
//! state, which host holds the VIP, and where the client's ARP / neighbour
//! entry for the VIP points. Run as root by `cargo xtask test`.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::{net::IpAddr, time::Duration};

use nix::sys::signal::Signal;
use tests::{
    cluster::{
        Agent, Lab, has_address, mac_string, neigh_mac, one_instance_config, ping, wait_holder,
        wait_until,
    },
    frames::{Advert, Checksum, Envelope},
};

const VIP: &str = "192.0.2.10";
const SETTLE: Duration = Duration::from_secs(10);

/// Starts a MASTER on router 0, waits for it, then a BACKUP on router 1
/// (in that order, so no start-up race adds transitions).
fn master_and_backup(lab: &Lab, master: &str, backup: &str) -> (Agent, Agent) {
    let m = lab.agent(0, master);
    m.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    let b = lab.agent(1, backup);
    b.wait_state("VI_1", "BACKUP", SETTLE).unwrap();
    (m, b)
}

/// A one-instance config.
fn config(priority: u8, extra: &str) -> String {
    one_instance_config(priority, "100ms", &format!("\"{VIP}/24\""), extra)
}

#[test]
fn initial_election_higher_priority_wins() {
    let lab = Lab::new("el", 2);
    let a = lab.agent(0, &config(100, ""));
    let b = lab.agent(1, &config(200, ""));
    b.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    a.wait_state("VI_1", "BACKUP", SETTLE).unwrap();
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 1);
    let st = a.status().unwrap();
    assert_eq!(st["instances"][0]["master"], "192.0.2.2");
}

/// RFC 9568 §6.4.3: two MASTERs of equal priority (a healed partition):
/// the one with the lower primary address steps down. (A BACKUP never
/// preempts an equal-priority MASTER, §6.4.2, so the tie-break only shows
/// when both are MASTER.)
#[test]
fn equal_priority_masters_higher_address_wins() {
    let lab = Lab::new("eq", 2);
    // Partition: both routers' bridge ports leave the bridge (carrier stays up).
    for port in ["p0", "p1"] {
        lab.lan.lan.ip(&["link", "set", port, "nomaster"]).unwrap();
    }
    let a = lab.agent(0, &config(100, ""));
    let b = lab.agent(1, &config(100, ""));
    a.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    b.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    // Heal it.
    for port in ["p0", "p1"] {
        lab.lan
            .lan
            .ip(&["link", "set", port, "master", "br0"])
            .unwrap();
    }
    a.wait_state("VI_1", "BACKUP", SETTLE).unwrap();
    assert_eq!(b.state("VI_1").as_deref(), Some("MASTER"));
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 1);
}

/// The master host dies (process killed, link down): the backup takes the
/// VIP and the client's ARP entry moves to the backup's MAC.
fn failover_when_master_dies(xdp_off: bool) {
    let lab = Lab::new(if xdp_off { "fs" } else { "fd" }, 2);
    let extra: &[&str] = if xdp_off { &["--xdp", "off"] } else { &[] };
    let m = Agent::start(lab.router(0), &lab.dir, &config(150, ""), extra).unwrap();
    m.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    let b = Agent::start(lab.router(1), &lab.dir, &config(100, ""), extra).unwrap();
    b.wait_state("VI_1", "BACKUP", SETTLE).unwrap();
    if xdp_off {
        assert_eq!(m.status().unwrap()["xdp"]["mode"], "off");
    }
    check_interarrival(&b);
    let (mac0, mac1) = (mac_string(lab.router(0)), mac_string(lab.router(1)));
    assert!(ping(lab.client(), VIP));
    assert_eq!(neigh_mac(lab.client(), VIP).as_deref(), Some(mac0.as_str()));

    m.signal(Signal::SIGKILL).unwrap();
    lab.router(0).ip(&["link", "set", "eth0", "down"]).unwrap();

    b.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    let moved = wait_until(SETTLE, || {
        neigh_mac(lab.client(), VIP).as_deref() == Some(mac1.as_str())
    });
    assert!(
        moved.is_some(),
        "client ARP entry still {:?}",
        neigh_mac(lab.client(), VIP)
    );
    assert!(ping(lab.client(), VIP), "VIP unreachable after failover");
    assert!(has_address(lab.router(1), "eth0", VIP));
}

/// SPEC Metrics: the backup's advert inter-arrival histogram comes from the
/// kernel timestamps of every advert (with XDP the daemon itself is woken
/// only by changes), so a master advertising every 100 ms fills the 0.1 s /
/// 0.2 s buckets.
fn check_interarrival(b: &Agent) {
    let hist = || {
        b.status()
            .map(|s| s["instances"][0]["advert_interarrival"].clone())
    };
    let filled = wait_until(SETTLE, || {
        hist().is_some_and(|h| h["count"].as_u64().is_some_and(|c| c >= 5))
    });
    let h = hist().unwrap();
    assert!(filled.is_some(), "histogram not filled: {h}");
    let bounds: Vec<f64> = serde_json::from_value(h["bounds"].clone()).unwrap();
    let counts: Vec<u64> = serde_json::from_value(h["counts"].clone()).unwrap();
    let count = h["count"].as_u64().unwrap();
    assert_eq!(counts.iter().sum::<u64>(), count, "{h}");
    let near_100ms: u64 = bounds
        .iter()
        .zip(&counts)
        .filter(|(b, _)| **b == 0.1 || **b == 0.2)
        .map(|(_, c)| *c)
        .sum();
    assert!(near_100ms * 2 > count, "most gaps are about 100 ms: {h}");
    let sum = h["sum"].as_f64().unwrap();
    assert!(sum > 0.0, "{h}");
}

#[test]
fn failover_when_master_host_dies() {
    failover_when_master_dies(false);
}

#[test]
fn failover_when_master_host_dies_socket_path() {
    failover_when_master_dies(true);
}

/// Only the master's link goes down: it goes to FAULT and drops the VIP,
/// the backup takes over; when the link returns it is BACKUP... and then
/// preempts back (higher priority).
#[test]
fn failover_when_master_link_goes_down() {
    let lab = Lab::new("ld", 2);
    let (m, b) = master_and_backup(&lab, &config(150, ""), &config(100, ""));
    let mac1 = mac_string(lab.router(1));
    assert!(ping(lab.client(), VIP));

    lab.router(0).ip(&["link", "set", "eth0", "down"]).unwrap();
    m.wait_state("VI_1", "FAULT", SETTLE).unwrap();
    b.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    assert!(
        !has_address(lab.router(0), "eth0", VIP),
        "FAULT must not hold the VIP"
    );
    let moved = wait_until(SETTLE, || {
        neigh_mac(lab.client(), VIP).as_deref() == Some(mac1.as_str())
    });
    assert!(
        moved.is_some(),
        "client ARP entry still {:?}",
        neigh_mac(lab.client(), VIP)
    );

    lab.router(0).ip(&["link", "set", "eth0", "up"]).unwrap();
    m.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    b.wait_state("VI_1", "BACKUP", SETTLE).unwrap();
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 0);
}

/// SIGTERM: the master sends priority 0, removes its VIP and exits 0; the
/// backup takes over after Skew_Time instead of Master_Down_Interval
/// (RFC 9568 §6.4.2 / §6.4.3).
#[test]
fn graceful_stop_hands_over_at_skew_time() {
    let lab = Lab::new("gs", 2);
    // 1 s adverts: Skew_Time 0.609 s, Master_Down_Interval 3.609 s for priority 100.
    let slow = |p| config(p, "").replace("\"100ms\"", "\"1s\"");
    let (mut m, b) = master_and_backup(&lab, &slow(150), &slow(100));

    m.signal(Signal::SIGTERM).unwrap();
    let took = b.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    assert!(
        m.wait_exit(Duration::from_secs(5)),
        "agent did not exit after SIGTERM"
    );
    assert_eq!(
        m.child.exit_code(),
        Some(0),
        "exit status after SIGTERM\n{}",
        m.log_tail(20)
    );
    assert!(
        !has_address(lab.router(0), "eth0", VIP),
        "stopped master kept the VIP"
    );
    assert!(has_address(lab.router(1), "eth0", VIP));
    let st = b.status().unwrap();
    assert_eq!(st["instances"][0]["counters"]["prio0_rx"], 1);
    // Far below the 3.6 s a silent master would take: the priority-0
    // advert, not the Master_Down timer, triggered the takeover.
    assert!(
        took < Duration::from_millis(3000),
        "takeover after {took:?}: priority 0 ignored?"
    );
}

/// A higher-priority router that comes back preempts; with preempt = false it does not.
#[test]
fn preemption_when_higher_priority_returns() {
    let lab = Lab::new("pr", 2);
    let b = lab.agent(1, &config(100, ""));
    b.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    let a = lab.agent(0, &config(200, ""));
    a.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    b.wait_state("VI_1", "BACKUP", SETTLE).unwrap();
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 0);
}

#[test]
fn no_preemption_with_preempt_false() {
    let lab = Lab::new("np", 2);
    let b = lab.agent(1, &config(100, ""));
    b.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    let a = lab.agent(0, &config(200, "preempt = false"));
    a.wait_state("VI_1", "BACKUP", SETTLE).unwrap();
    // Several Master_Down intervals later nothing has changed.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(a.state("VI_1").as_deref(), Some("BACKUP"));
    assert_eq!(b.state("VI_1").as_deref(), Some("MASTER"));
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 1);
}

/// A VIP left on the interface by a crash is removed at start-up, and the
/// restarted agent comes back as BACKUP under the current master.
#[test]
fn restarted_agent_removes_stale_vip() {
    let lab = Lab::new("rs", 2);
    let m = lab.agent(1, &config(200, ""));
    m.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    lab.router(0)
        .addr_add("eth0", &format!("{VIP}/24"))
        .unwrap();
    let a = lab.agent(0, &config(100, ""));
    a.wait_state("VI_1", "BACKUP", SETTLE).unwrap();
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 1);
}

/// IPv6 (VRRPv3): the VIP moves and the client's neighbour entry follows.
#[test]
fn ipv6_failover_moves_neighbour_entry() {
    let lab = Lab::new("v6", 2);
    let cfg = |p: u8| {
        config(p, "").replace(
            &format!("[\"{VIP}/24\"]"),
            "[\"fe80::51/64\", \"2001:db8::10/64\"]",
        )
    };
    let (m, b) = master_and_backup(&lab, &cfg(150), &cfg(100));
    let (mac0, mac1) = (mac_string(lab.router(0)), mac_string(lab.router(1)));
    let vip6 = "2001:db8::10";
    let reach = wait_until(SETTLE, || ping(lab.client(), vip6));
    assert!(reach.is_some(), "IPv6 VIP unreachable");
    assert_eq!(
        neigh_mac(lab.client(), vip6).as_deref(),
        Some(mac0.as_str())
    );

    m.signal(Signal::SIGKILL).unwrap();
    lab.router(0).ip(&["link", "set", "eth0", "down"]).unwrap();
    b.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    let moved = wait_until(SETTLE, || {
        neigh_mac(lab.client(), vip6).as_deref() == Some(mac1.as_str())
    });
    assert!(
        moved.is_some(),
        "client neighbour entry still {:?}",
        neigh_mac(lab.client(), vip6)
    );
    assert!(ping(lab.client(), vip6));
}

/// Dual master: each node is MASTER for one VIP and BACKUP for the other;
/// when one dies the other holds both.
#[test]
fn dual_master() {
    let lab = Lab::new("dm", 2);
    let cfg = |pa: u8, pb: u8| {
        format!(
            r#"[global]
control_socket = "{{SOCKET}}"

[[instance]]
name = "VI_A"
interface = "eth0"
vrid = 51
priority = {pa}
advert_interval = "100ms"
virtual_ips = ["192.0.2.10/24"]

[[instance]]
name = "VI_B"
interface = "eth0"
vrid = 52
priority = {pb}
advert_interval = "100ms"
virtual_ips = ["192.0.2.11/24"]
"#
        )
    };
    let r0 = lab.agent(0, &cfg(150, 100));
    let r1 = lab.agent(1, &cfg(100, 150));
    r0.wait_state("VI_A", "MASTER", SETTLE).unwrap();
    r0.wait_state("VI_B", "BACKUP", SETTLE).unwrap();
    r1.wait_state("VI_A", "BACKUP", SETTLE).unwrap();
    r1.wait_state("VI_B", "MASTER", SETTLE).unwrap();
    let hosts = [lab.router(0), lab.router(1)];
    wait_holder(&hosts, "192.0.2.10", 0);
    wait_holder(&hosts, "192.0.2.11", 1);

    r0.signal(Signal::SIGKILL).unwrap();
    lab.router(0).ip(&["link", "set", "eth0", "down"]).unwrap();
    r1.wait_state("VI_A", "MASTER", SETTLE).unwrap();
    assert_eq!(r1.state("VI_B").as_deref(), Some("MASTER"));
    assert!(has_address(lab.router(1), "eth0", "192.0.2.10"));
    assert!(has_address(lab.router(1), "eth0", "192.0.2.11"));
}

/// A hostile host on the LAN sends every kind of bad advert, claiming
/// priority 255 where it can: the master does not move, nobody dies, and
/// the data plane counts each drop by reason.
#[test]
fn hostile_input_never_moves_the_master() {
    let lab = Lab::new("ho", 2);
    let (m, b) = master_and_backup(&lab, &config(150, ""), &config(100, ""));

    let vip: IpAddr = VIP.parse().unwrap();
    let mut env = Envelope::v4(51);
    env.src = "192.0.2.100".parse().unwrap();
    env.src_mac = [0x02, 0, 0, 0, 0, 0x66];
    let good = || Advert::v3(51, 255, &[vip]);
    let mut frames = Vec::new();
    // TTL 64 (off-link forgery).
    let mut e = env.clone();
    e.ttl = 64;
    frames.push(e.frame(&good()));
    // Wrong version.
    frames.push(env.frame(&Advert {
        version: 4,
        ..good()
    }));
    // Bad checksum.
    frames.push(env.frame(&Advert {
        checksum: Checksum::Corrupt,
        ..good()
    }));
    // Count says 3 addresses, carries 1.
    frames.push(env.frame(&Advert {
        count: Some(3),
        ..good()
    }));
    // Zero interval.
    frames.push(env.frame(&Advert {
        interval: 0,
        ..good()
    }));
    // Truncated after the header.
    let mut t = env.frame(&good());
    t.truncate(14 + 20 + 6);
    frames.push(t);
    // Random bytes with VRRP's protocol number.
    let mut r = env.frame(&good());
    let n = r.len();
    for (i, byte) in r[14 + 20..n].iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(151).wrapping_add(7);
    }
    frames.push(r);

    let client = lab.client();
    for _ in 0..20 {
        for f in &frames {
            client.send_frame("eth0", f).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        m.state("VI_1").as_deref(),
        Some("MASTER"),
        "{}",
        m.log_tail(30)
    );
    assert_eq!(
        b.state("VI_1").as_deref(),
        Some("BACKUP"),
        "{}",
        b.log_tail(30)
    );
    let st = b.status().expect("backup still answers");
    let drops = &st["instances"][0]["counters"]["rx_dropped"];
    for reason in ["ttl", "version", "checksum", "length", "interval"] {
        assert!(
            drops[reason].as_u64().unwrap_or(0) >= 20,
            "{reason} drops: {drops}"
        );
    }
    assert_eq!(
        st["instances"][0]["transitions"], 1,
        "the backup changed state: {st}"
    );
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 0);
}

/// SIGHUP with an unchanged config keeps the master's state: no transition.
#[test]
fn reload_keeps_unchanged_instances() {
    let lab = Lab::new("rl", 2);
    let (m, b) = master_and_backup(&lab, &config(150, ""), &config(100, ""));
    let before = m.status().unwrap()["instances"][0]["transitions"].clone();
    for _ in 0..3 {
        m.signal(Signal::SIGHUP).unwrap();
        b.signal(Signal::SIGHUP).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(m.status().unwrap()["instances"][0]["transitions"], before);
    assert_eq!(b.state("VI_1").as_deref(), Some("BACKUP"));
    assert_eq!(b.status().unwrap()["instances"][0]["transitions"], 1);
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 0);
}

/// A VIP deleted by someone else while MASTER is restored.
#[test]
fn vip_deleted_by_someone_else_is_restored() {
    let lab = Lab::new("vd", 1);
    let m = lab.agent(0, &config(150, ""));
    m.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    assert!(wait_until(SETTLE, || has_address(lab.router(0), "eth0", VIP)).is_some());
    lab.router(0)
        .ip(&["addr", "del", &format!("{VIP}/24"), "dev", "eth0"])
        .unwrap();
    let back = wait_until(SETTLE, || has_address(lab.router(0), "eth0", VIP));
    assert!(back.is_some(), "VIP not restored\n{}", m.log_tail(20));
}

/// SIGHUP after raising a backup's priority: it preempts the master, with no
/// restart (its transitions go BACKUP -> MASTER).
#[test]
fn reload_priority_change_preempts() {
    let lab = Lab::new("rp", 2);
    let (m, b) = master_and_backup(&lab, &config(150, ""), &config(100, ""));
    let text = std::fs::read_to_string(&b.config).unwrap();
    std::fs::write(&b.config, text.replace("priority = 100", "priority = 200")).unwrap();
    b.signal(Signal::SIGHUP).unwrap();
    b.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    m.wait_state("VI_1", "BACKUP", SETTLE).unwrap();
    assert_eq!(b.status().unwrap()["instances"][0]["transitions"], 2);
    assert_eq!(b.status().unwrap()["instances"][0]["priority"], 200);
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 1);
}

/// The notify script runs with keepalived's arguments, in order.
#[test]
fn notify_script_gets_keepalived_arguments() {
    let lab = Lab::new("nt", 1);
    let out = lab.dir.path().join("notify.out");
    let script = lab.dir.path().join("notify.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", out.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut m = lab.agent(
        0,
        &config(150, &format!("notify = \"{}\"", script.display())),
    );
    m.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    m.signal(Signal::SIGTERM).unwrap();
    assert!(m.wait_exit(Duration::from_secs(5)));
    let lines: Vec<String> = std::fs::read_to_string(&out)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines,
        [
            "INSTANCE VI_1 BACKUP 150",
            "INSTANCE VI_1 MASTER 150",
            "INSTANCE VI_1 STOP 150"
        ],
        "notify calls"
    );
}

/// Start-up failures give one clear line and a non-zero exit.
#[test]
fn startup_errors_are_one_line() {
    let lab = Lab::new("se", 1);
    let ns = lab.router(0);
    let run = |cfg: &str, extra: &[&str]| {
        let mut a = Agent::start(ns, &lab.dir, cfg, extra).unwrap();
        assert!(
            a.wait_exit(SETTLE),
            "agent did not exit: {cfg}\n{}",
            a.log_tail(20)
        );
        let log = std::fs::read_to_string(&a.log).unwrap_or_default();
        (a.child.exit_code(), log)
    };
    // Missing interface.
    let (code, log) = run(&config(100, "").replace("\"eth0\"", "\"nope0\""), &[]);
    assert_ne!(code, Some(0));
    assert!(
        log.contains("interface `nope0`") && log.contains("does not exist"),
        "{log}"
    );

    // Control socket in use by a live daemon.
    let first = lab.agent(0, &config(100, ""));
    first.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    let same = config(100, "").replace("{SOCKET}", &first.socket.display().to_string());
    let (code, log) = run(&same, &[]);
    assert_ne!(code, Some(0));
    assert!(log.contains("already running"), "{log}");
    drop(first);

    // Without CAP_NET_ADMIN / CAP_NET_RAW (root with those capabilities
    // dropped from the bounding set, as an unprivileged service would be).
    let cfg_path = lab.dir.path().join("nocaps.toml");
    std::fs::write(
        &cfg_path,
        config(100, "").replace("{SOCKET}", "/tmp/vrrp-nocaps.sock"),
    )
    .unwrap();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns.name(), "setpriv", "--bounding-set"])
        .arg("-net_admin,-net_raw,-bpf,-sys_admin")
        .arg(tests::cluster::agent_bin())
        .args(["run", "--config"])
        .arg(&cfg_path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("CAP_NET_ADMIN") && err.contains("missing"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // XDP required in driver mode where the driver cannot do it: veth with a
    // jumbo MTU (native XDP on veth needs the frame in one page).
    // Both ends: the limit applies to the frames the peer can send.
    lab.lan
        .lan
        .ip(&["link", "set", "p0", "mtu", "9000"])
        .unwrap();
    ns.ip(&["link", "set", "eth0", "mtu", "9000"]).unwrap();
    let (code, log) = run(&config(100, ""), &["--xdp", "driver"]);
    assert_ne!(code, Some(0));
    assert!(log.to_lowercase().contains("xdp"), "{log}");
    assert_eq!(
        log.trim()
            .lines()
            .filter(|l| l.contains("vrrp-agent:"))
            .count(),
        1,
        "{log}"
    );
}
