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
//!   runs): we accept its adverts (counted in `rx_first_not_link_local`),
//!   one master, both roles.
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

fn agent_v6(priority: u8) -> String {
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
virtual_ips = ["fe80::52/64", "2001:db8::10/64"]
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
    let agent = lab.agent(1, &agent_v6(100));
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
    let agent = lab.agent(1, &agent_v6(150));
    agent.wait_state("VI_6", "MASTER", SETTLE_V3).unwrap();
    wait_holder(&hosts, "2001:db8::10", 1);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        sole_holder(&hosts, "2001:db8::10"),
        Some(1),
        "keepalived took the VIP: it rejects our adverts"
    );
}
