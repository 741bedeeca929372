//! Start-up and address-owner faults found by fault injection (issue 9):
//! real vrrp-agent daemons in network namespaces. Run as root by
//! `cargo xtask test`.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::time::Duration;

use nix::sys::signal::Signal;
use tests::cluster::{Lab, has_address};

const SETTLE: Duration = Duration::from_secs(10);

/// A one-instance config for VIP `vip` at `priority`.
fn config(priority: u8, vip: &str) -> String {
    format!(
        r#"[global]
router_id = "r{priority}"
control_socket = "{{SOCKET}}"

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = {priority}
version = 3
advert_interval = "100ms"
virtual_ips = ["{vip}/24"]
"#
    )
}

/// Whether `addr` is on eth0 of router 0 with the label `eth0:own` (set
/// when the test added it; an address deleted and added again loses it).
fn labelled(lab: &Lab, addr: &str) -> bool {
    let out = lab
        .router(0)
        .ip(&["-4", "addr", "show", "dev", "eth0", "label", "eth0:own"])
        .unwrap_or_default();
    out.contains(&format!("inet {addr}/"))
}

/// Issue 9, defect 4: an address owner (priority 255) keeps its own
/// address: the start-up cleanup of VIPs "left by a crash" leaves it alone,
/// and so does a graceful stop.
#[test]
fn address_owner_keeps_its_own_address() {
    let lab = Lab::new("own", 1);
    let vip = "192.0.2.10";
    lab.router(0)
        .ip(&[
            "addr",
            "add",
            "192.0.2.10/24",
            "dev",
            "eth0",
            "label",
            "eth0:own",
        ])
        .unwrap();
    assert!(labelled(&lab, vip));
    let mut a = lab.agent(0, &config(255, vip));
    a.wait_state("VI_1", "MASTER", SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", a.log_tail(30)));
    assert!(
        labelled(&lab, vip),
        "the owner's address was deleted (and re-added) at start:\n{}",
        a.log_tail(30)
    );
    a.signal(Signal::SIGTERM).unwrap();
    assert!(a.wait_exit(SETTLE), "agent did not stop");
    assert!(
        has_address(lab.router(0), "eth0", vip) && labelled(&lab, vip),
        "the owner's address was removed at stop:\n{}",
        a.log_tail(30)
    );
}

/// Issue 9, defect 8: `rx_dropped.vrid` counts the foreign-VRID adverts of
/// the instance's own interface and family, not a global count copied into
/// every instance.
#[test]
fn foreign_vrid_drops_are_counted_per_interface_and_family() {
    use tests::frames::{Advert, Envelope};
    let lab = Lab::new("fv", 1);
    let text = format!(
        "{}\n[[instance]]\nname = \"VI_6\"\ninterface = \"eth0\"\nvrid = 51\n\
         priority = 100\nversion = 3\nadvert_interval = \"100ms\"\n\
         virtual_ips = [\"fe80::51/64\", \"2001:db8::10/64\"]\n",
        config(100, "192.0.2.10").replace("name = \"VI_1\"", "name = \"VI_4\"")
    );
    let a = lab.agent(0, &text);
    a.wait_state("VI_4", "MASTER", SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", a.log_tail(30)));
    a.wait_state("VI_6", "MASTER", SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", a.log_tail(30)));
    // IPv4 adverts of VRID 99, which nobody configured.
    let mut env = Envelope::v4(99);
    env.src = "192.0.2.100".parse().unwrap();
    let frame = env.frame(&Advert::v3(99, 100, &["192.0.2.99".parse().unwrap()]));
    for _ in 0..5 {
        lab.client().send_frame("eth0", &frame).unwrap();
    }
    let vrid_drops = |name: &str| -> Option<u64> {
        let st = a.status()?;
        st["instances"]
            .as_array()?
            .iter()
            .find(|i| i["name"] == name)?["counters"]["rx_dropped"]["vrid"]
            .as_u64()
    };
    let counted = tests::cluster::wait_until(SETTLE, || vrid_drops("VI_4").is_some_and(|n| n >= 5));
    assert!(
        counted.is_some(),
        "VI_4 vrid drops: {:?}",
        vrid_drops("VI_4")
    );
    assert_eq!(vrid_drops("VI_6"), Some(0), "IPv4 drops counted on IPv6");
}
