//! A mixed pair that never splits (issue 11): keepalived 2.2.7 on one node,
//! vrrp-agent on the other, with the keepalived settings found in the wild
//! that a strict implementation would drop.
//!
//! - VRRPv2 simple password (`authentication { auth_type PASS }`), both
//!   roles, with a password longer than 8 bytes on both sides (keepalived
//!   truncates to 8; so do we).
//! - A password mismatch: both become MASTER (nothing else is possible),
//!   but the agent's status says why: `rx_dropped.auth` and a
//!   `peer_mismatch` entry naming keepalived's address, and its log warns.
//! - keepalived with a global-only IPv6 `virtual_ipaddress` (it warns and
//!   runs): we accept its adverts (counted in `rx_first_not_link_local`)
//!   even with our RFC 9568 list; for keepalived to accept ours, our list
//!   must equal its own (it compares the count and every address), which
//!   `check` allows with a warning. One master, both roles.
//!
//! Run as root by `cargo xtask test`.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::time::Duration;

use tests::{
    cluster::{Agent, Lab, has_address, sole_holder, wait_holder, wait_until},
    netns::{ChildGuard, keepalived},
};

const SETTLE_V2: Duration = Duration::from_secs(15);
const SETTLE_V3: Duration = Duration::from_secs(8);
/// 12 bytes: both sides send and compare only "longpass".
const PASS: &str = "longpass1234";

fn agent_v2(priority: u8, pass: &str) -> String {
    format!(
        r#"[global]
router_id = "agent"
control_socket = "{{SOCKET}}"

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = {priority}
version = 2
advert_interval = "1s"
virtual_ips = ["192.0.2.10/24"]
auth_pass = "{pass}"
"#
    )
}

fn keepalived_v2(priority: u8, pass: &str) -> String {
    format!(
        "global_defs {{\n    router_id ka\n    vrrp_version 2\n}}\n\
         vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
         priority {priority}\n    advert_int 1\n    \
         authentication {{\n        auth_type PASS\n        auth_pass {pass}\n    }}\n    \
         virtual_ipaddress {{\n        192.0.2.10/24\n    }}\n}}\n"
    )
}

fn start_ka(lab: &Lab, config: &str) -> ChildGuard {
    keepalived(lab.router(0), &lab.dir, config).expect("keepalived")
}

fn master_of(agent: &Agent) -> Option<String> {
    let st = agent.status()?;
    st["instances"][0]["master"].as_str().map(str::to_owned)
}

#[test]
fn v2_password_keepalived_master() {
    let lab = Lab::new("kpm", 2);
    let hosts = [lab.router(0), lab.router(1)];
    let mut ka = start_ka(&lab, &keepalived_v2(150, PASS));
    let agent = lab.agent(1, &agent_v2(100, PASS));
    agent.wait_state("VI_1", "BACKUP", SETTLE_V2).unwrap();
    wait_holder(&hosts, "192.0.2.10", 0);
    let seen = wait_until(SETTLE_V2, || {
        master_of(&agent).is_some_and(|m| m == "192.0.2.1")
    });
    assert!(
        seen.is_some(),
        "agent does not follow keepalived: {}",
        agent.log_tail(30)
    );
    ka.stop(Duration::from_secs(5));
    agent.wait_state("VI_1", "MASTER", SETTLE_V2).unwrap();
    wait_holder(&hosts, "192.0.2.10", 1);
    let _ka = start_ka(&lab, &keepalived_v2(150, PASS));
    agent.wait_state("VI_1", "BACKUP", SETTLE_V2).unwrap();
    wait_holder(&hosts, "192.0.2.10", 0);
}

#[test]
fn v2_password_keepalived_backup() {
    let lab = Lab::new("kpb", 2);
    let hosts = [lab.router(0), lab.router(1)];
    let _ka = start_ka(&lab, &keepalived_v2(100, PASS));
    let agent = lab.agent(1, &agent_v2(150, PASS));
    agent.wait_state("VI_1", "MASTER", SETTLE_V2).unwrap();
    wait_holder(&hosts, "192.0.2.10", 1);
    // Several adverts later keepalived still accepts ours (its Master_Down
    // interval is ~3.6 s): the password is right on the wire.
    std::thread::sleep(Duration::from_millis(4500));
    assert_eq!(
        sole_holder(&hosts, "192.0.2.10"),
        Some(1),
        "keepalived took the VIP: it rejects our adverts"
    );
}

/// Different passwords: keepalived (150) and the agent (100) both end up
/// MASTER. The agent must say why: the `auth` drop counter, a
/// `peer_mismatch` entry naming 192.0.2.1, and a warning in its log.
#[test]
fn v2_password_mismatch_is_named() {
    let lab = Lab::new("kpx", 2);
    let hosts = [lab.router(0), lab.router(1)];
    let _ka = start_ka(&lab, &keepalived_v2(150, "ka-pass"));
    let agent = lab.agent(1, &agent_v2(100, "ours"));
    agent.wait_state("VI_1", "MASTER", SETTLE_V2).unwrap();
    let both = wait_until(SETTLE_V2, || {
        has_address(hosts[0], "eth0", "192.0.2.10") && has_address(hosts[1], "eth0", "192.0.2.10")
    });
    assert!(both.is_some(), "expected both to hold the VIP");
    let named = wait_until(Duration::from_secs(10), || {
        let Some(st) = agent.status() else {
            return false;
        };
        let i = &st["instances"][0];
        let auth = i["counters"]["rx_dropped"]["auth"].as_u64().unwrap_or(0);
        let peers = i["peer_mismatch"].as_array().cloned().unwrap_or_default();
        auth > 0
            && peers.iter().any(|p| {
                p["peer"] == "192.0.2.1" && p["reason"] == "auth" && p["count"].as_u64() > Some(0)
            })
    });
    assert!(
        named.is_some(),
        "status does not name the mismatch: {:?}",
        agent.status()
    );
    let warned = wait_until(Duration::from_secs(10), || {
        let log = agent.log_tail(usize::MAX);
        log.contains("adverts from 192.0.2.1") && log.contains("password")
    });
    assert!(warned.is_some(), "no warning: {}", agent.log_tail(40));
}

/// `global_only`: our VIP list matches keepalived's (needed for keepalived
/// to accept our adverts: it compares the count and every address); else
/// the RFC 9568 form with a link-local first VIP.
fn agent_v6(priority: u8, global_only: bool) -> String {
    let vips = if global_only {
        r#"["2001:db8::10/64"]"#
    } else {
        r#"["fe80::52/64", "2001:db8::10/64"]"#
    };
    format!(
        r#"[global]
router_id = "agent"
control_socket = "{{SOCKET}}"

[[instance]]
name = "VI_6"
interface = "eth0"
vrid = 52
priority = {priority}
version = 3
advert_interval = "100ms"
virtual_ips = {vips}
"#
    )
}

/// keepalived with only a global IPv6 VIP: it warns ("the first IPv6 VIP
/// should be link local") and sends adverts whose only address is global.
fn keepalived_v6_global_only(priority: u8) -> String {
    format!(
        "global_defs {{\n    router_id ka\n    vrrp_version 3\n}}\n\
         vrrp_instance VI_6 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 52\n    \
         priority {priority}\n    advert_int 0.1\n    \
         virtual_ipaddress {{\n        2001:db8::10/64\n    }}\n}}\n"
    )
}

#[test]
fn v3_ipv6_global_only_keepalived_master() {
    let lab = Lab::new("k6gm", 2);
    let hosts = [lab.router(0), lab.router(1)];
    let mut ka = start_ka(&lab, &keepalived_v6_global_only(150));
    let agent = lab.agent(1, &agent_v6(100, false));
    agent.wait_state("VI_6", "BACKUP", SETTLE_V3).unwrap();
    wait_holder(&hosts, "2001:db8::10", 0);
    let counted = wait_until(SETTLE_V3, || {
        agent.status().is_some_and(|st| {
            st["instances"][0]["counters"]["rx_first_not_link_local"]
                .as_u64()
                .unwrap_or(0)
                > 0
        })
    });
    assert!(counted.is_some(), "not counted: {:?}", agent.status());
    assert!(
        agent
            .log_tail(usize::MAX)
            .contains("not a link-local address"),
        "no warning: {}",
        agent.log_tail(40)
    );
    assert_eq!(agent.state("VI_6").as_deref(), Some("BACKUP"));
    ka.stop(Duration::from_secs(5));
    agent.wait_state("VI_6", "MASTER", SETTLE_V3).unwrap();
    wait_holder(&hosts, "2001:db8::10", 1);
    let _ka = start_ka(&lab, &keepalived_v6_global_only(150));
    agent.wait_state("VI_6", "BACKUP", SETTLE_V3).unwrap();
    wait_holder(&hosts, "2001:db8::10", 0);
}

#[test]
fn v3_ipv6_global_only_keepalived_backup() {
    let lab = Lab::new("k6gb", 2);
    let hosts = [lab.router(0), lab.router(1)];
    let _ka = start_ka(&lab, &keepalived_v6_global_only(100));
    let agent = lab.agent(1, &agent_v6(150, true));
    agent.wait_state("VI_6", "MASTER", SETTLE_V3).unwrap();
    wait_holder(&hosts, "2001:db8::10", 1);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        sole_holder(&hosts, "2001:db8::10"),
        Some(1),
        "keepalived took the VIP: it rejects our adverts"
    );
}

/// Unicast with an explicit advert source on our side (`unicast_src`, a
/// second address of router 1) and keepalived's `unicast_peer` naming
/// exactly that address, with `check_unicast_src`: keepalived accepts only
/// adverts from its listed peer, so a wrong source would split the pair.
fn agent_unicast(priority: u8) -> String {
    format!(
        r#"[global]
router_id = "agent"
control_socket = "{{SOCKET}}"

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 53
priority = {priority}
version = 2
advert_interval = "1s"
virtual_ips = ["192.0.2.10/24"]
unicast_peers = ["192.0.2.1"]
unicast_src = "192.0.2.12"
"#
    )
}

fn keepalived_unicast(priority: u8) -> String {
    format!(
        "global_defs {{\n    router_id ka\n    vrrp_version 2\n}}\n\
         vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 53\n    \
         priority {priority}\n    advert_int 1\n    \
         unicast_src_ip 192.0.2.1\n    check_unicast_src\n    \
         unicast_peer {{\n        192.0.2.12\n    }}\n    \
         virtual_ipaddress {{\n        192.0.2.10/24\n    }}\n}}\n"
    )
}

fn unicast_lab(tag: &str) -> Lab {
    let lab = Lab::new(tag, 2);
    lab.router(1)
        .addr_add("eth0", "192.0.2.12/24")
        .expect("addr");
    lab
}

#[test]
fn unicast_src_keepalived_master() {
    let lab = unicast_lab("kum");
    let hosts = [lab.router(0), lab.router(1)];
    let mut ka = start_ka(&lab, &keepalived_unicast(150));
    let agent = lab.agent(1, &agent_unicast(100));
    agent.wait_state("VI_1", "BACKUP", SETTLE_V2).unwrap();
    wait_holder(&hosts, "192.0.2.10", 0);
    ka.stop(Duration::from_secs(5));
    agent.wait_state("VI_1", "MASTER", SETTLE_V2).unwrap();
    wait_holder(&hosts, "192.0.2.10", 1);
    let _ka = start_ka(&lab, &keepalived_unicast(150));
    agent.wait_state("VI_1", "BACKUP", SETTLE_V2).unwrap();
    wait_holder(&hosts, "192.0.2.10", 0);
}

#[test]
fn unicast_src_keepalived_backup() {
    let lab = unicast_lab("kub");
    let hosts = [lab.router(0), lab.router(1)];
    let _ka = start_ka(&lab, &keepalived_unicast(100));
    let agent = lab.agent(1, &agent_unicast(150));
    agent.wait_state("VI_1", "MASTER", SETTLE_V2).unwrap();
    wait_holder(&hosts, "192.0.2.10", 1);
    std::thread::sleep(Duration::from_millis(4500));
    assert_eq!(
        sole_holder(&hosts, "192.0.2.10"),
        Some(1),
        "keepalived took the VIP: it rejects our unicast adverts (source?)"
    );
}

/// `unicast_src` not (yet) on the interface: FAULT with the reason, then
/// running once the address appears.
#[test]
fn unicast_src_waits_in_fault_until_present() {
    let lab = Lab::new("kuf", 1);
    let agent = lab.agent(0, &agent_unicast(150).replace("192.0.2.12", "192.0.2.13"));
    agent.wait_state("VI_1", "FAULT", SETTLE_V3).unwrap();
    let st = agent.status().expect("status");
    let reason = st["instances"][0]["fault_reason"].as_str().unwrap_or("");
    assert!(reason.contains("unicast_src"), "fault_reason: {reason:?}");
    lab.router(0)
        .addr_add("eth0", "192.0.2.13/24")
        .expect("addr");
    agent.wait_state("VI_1", "MASTER", SETTLE_V2).unwrap();
}

/// Watches `hosts` for `d`: never both holding `addr`.
fn never_both(hosts: &[&tests::netns::Netns; 2], addr: &str, d: Duration) {
    let t = std::time::Instant::now();
    while t.elapsed() < d {
        assert!(
            !(has_address(hosts[0], "eth0", addr) && has_address(hosts[1], "eth0", addr)),
            "both hold {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn agent_mc_or_uc(priority: u8, peer: Option<&str>) -> String {
    let peers = peer.map_or(String::new(), |p| format!("unicast_peers = [\"{p}\"]\n"));
    format!(
        r#"[global]
router_id = "agent"

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 54
priority = {priority}
version = 3
advert_interval = "100ms"
virtual_ips = ["192.0.2.10/24"]
{peers}"#
    )
}

/// Moving a vrrp-agent pair from multicast to unicast one node at a time
/// (README "Moving a pair from multicast to unicast"): with `unicast_peers`
/// a node still accepts its listed peer's multicast adverts, and a
/// multicast node accepts unicast adverts addressed to it, so at no step do
/// both hold the VIP; afterwards failover still works over unicast.
#[test]
fn multicast_to_unicast_one_node_at_a_time() {
    let lab = Lab::new("m2u", 2);
    let hosts = [lab.router(0), lab.router(1)];
    let mut a = lab.agent(0, &agent_mc_or_uc(150, None));
    let b = lab.agent(1, &agent_mc_or_uc(100, None));
    a.wait_state("VI_1", "MASTER", SETTLE_V3).unwrap();
    b.wait_state("VI_1", "BACKUP", SETTLE_V3).unwrap();
    wait_holder(&hosts, "192.0.2.10", 0);
    // The backup first, then the master: reload each with unicast_peers.
    for (agent, peer) in [(&b, "192.0.2.1"), (&a, "192.0.2.2")] {
        let prio = if std::ptr::eq(agent, &a) { 150 } else { 100 };
        std::fs::write(
            &agent.config,
            with_socket(agent, &agent_mc_or_uc(prio, Some(peer))),
        )
        .expect("write config");
        agent.signal(nix::sys::signal::Signal::SIGHUP).unwrap();
        never_both(&hosts, "192.0.2.10", Duration::from_secs(3));
        assert_eq!(sole_holder(&hosts, "192.0.2.10"), Some(0));
    }
    assert_eq!(
        b.state("VI_1").as_deref(),
        Some("BACKUP"),
        "{}",
        b.log_tail(30)
    );
    // Unicast failover both ways.
    a.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(a.wait_exit(Duration::from_secs(5)));
    b.wait_state("VI_1", "MASTER", SETTLE_V3).unwrap();
    wait_holder(&hosts, "192.0.2.10", 1);
}

/// The config as the lab wrote it, with the control socket it chose.
fn with_socket(agent: &Agent, text: &str) -> String {
    let old = std::fs::read_to_string(&agent.config).expect("config");
    let sock = old
        .lines()
        .find(|l| l.starts_with("control_socket"))
        .expect("control_socket line");
    text.replacen("[global]", &format!("[global]\n{sock}"), 1)
}
