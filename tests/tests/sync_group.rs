//! Sync groups end to end (issue 10): a member that yields to a better
//! master takes its group-mate to BACKUP, so the pair of VIPs never stays
//! split across two routers. Two vrrp-agent daemons in a lab, judged by
//! which host holds each VIP. Run as root by `cargo xtask test`.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::time::Duration;

use tests::cluster::{Agent, Lab, wait_holder};

const VIP1: &str = "192.0.2.10";
const VIP2: &str = "192.0.2.11";
const SETTLE: Duration = Duration::from_secs(10);

fn instance(name: &str, vrid: u8, priority: u8, vip: &str) -> String {
    format!(
        r#"
[[instance]]
name = "{name}"
interface = "eth0"
vrid = {vrid}
priority = {priority}
version = 3
advert_interval = "100ms"
virtual_ips = ["{vip}/24"]
"#
    )
}

fn config(id: &str, body: &str) -> String {
    format!("[global]\nrouter_id = \"{id}\"\ncontrol_socket = \"{{SOCKET}}\"\n{body}")
}

/// Router 0 holds both VIPs of group G1; router 1 (no group) comes up with
/// a better priority for VI_1 only and preempts it. Router 0's VI_1 yields,
/// and the group rule takes its VI_2 to BACKUP (silently, as keepalived):
/// router 1's VI_2 takes over when its Master_Down_Timer fires, and both
/// VIPs end on router 1. Without the rule VI_2 would stay on router 0.
#[test]
fn a_member_yielding_takes_its_group_mate_to_the_other_router() {
    let lab = Lab::new("sg", 2);
    let hosts = [lab.router(0), lab.router(1)];
    let r0 = lab.agent(
        0,
        &config(
            "r0",
            &format!(
                "{}{}\n[[sync_group]]\nname = \"G1\"\ninstances = [\"VI_1\", \"VI_2\"]\n",
                instance("VI_1", 51, 150, VIP1),
                instance("VI_2", 52, 150, VIP2)
            ),
        ),
    );
    r0.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    r0.wait_state("VI_2", "MASTER", SETTLE).unwrap();
    assert_eq!(
        group(&r0),
        ("MASTER".into(), vec!["VI_1".into(), "VI_2".into()])
    );
    let r1 = lab.agent(
        1,
        &config(
            "r1",
            &format!(
                "{}{}",
                instance("VI_1", 51, 200, VIP1),
                instance("VI_2", 52, 100, VIP2)
            ),
        ),
    );
    r1.wait_state("VI_1", "MASTER", SETTLE)
        .unwrap_or_else(|e| panic!("{e}\nr0:\n{}\nr1:\n{}", r0.log_tail(60), r1.log_tail(40)));
    r1.wait_state("VI_2", "MASTER", SETTLE)
        .unwrap_or_else(|e| panic!("VI_2 left on router 0: {e}\n{}", r0.log_tail(30)));
    r0.wait_state("VI_2", "BACKUP", SETTLE).unwrap();
    wait_holder(&hosts, VIP1, 1);
    wait_holder(&hosts, VIP2, 1);
    // Stable: router 0's VI_2 wants MASTER (it hears a lower priority) but
    // its group-mate follows a better master, so it stays BACKUP.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(r0.state("VI_2").as_deref(), Some("BACKUP"));
    wait_holder(&hosts, VIP2, 1);
    assert_eq!(group(&r0).0, "BACKUP");
}

/// The state and members `status` shows for group G1.
fn group(a: &Agent) -> (String, Vec<String>) {
    let st = a.status().expect("status");
    let g = &st["sync_groups"][0];
    assert_eq!(g["name"], "G1", "{st}");
    let members = g["instances"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    (g["state"].as_str().unwrap_or_default().to_owned(), members)
}
