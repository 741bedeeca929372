//! Start-up and address-owner faults found by fault injection (issue 9):
//! real vrrp-agent daemons in network namespaces. Run as root by
//! `cargo xtask test`.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::time::Duration;

use nix::sys::signal::Signal;
use tests::cluster::{Lab, has_address, one_instance_config};

const SETTLE: Duration = Duration::from_secs(10);

/// A one-instance config for VIP `vip` at `priority`.
fn config(priority: u8, vip: &str) -> String {
    one_instance_config(priority, "100ms", &format!("\"{vip}/24\""), "")
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

/// The instance's `fault_reason` in status.
fn fault_reason(a: &tests::cluster::Agent) -> Option<String> {
    let st = a.status()?;
    st["instances"][0]["fault_reason"]
        .as_str()
        .map(str::to_owned)
}

/// IPv6 instance config (VIPs fe80::51 and 2001:db8::10).
fn config_v6(priority: u8) -> String {
    config(priority, "192.0.2.10").replace(
        "[\"192.0.2.10/24\"]",
        "[\"fe80::51/64\", \"2001:db8::10/64\"]",
    )
}

/// Issue 9, defect 6: an interface that is down at start does not stop the
/// daemon: the instances wait in FAULT with the reason in status, and
/// recover by itself when the interface comes up. (An IPv6 instance: a down
/// interface has no link-local address, which used to be fatal.)
#[test]
fn interface_down_at_start_waits_in_fault_then_recovers() {
    let lab = Lab::new("dn", 1);
    lab.router(0).ip(&["link", "set", "eth0", "down"]).unwrap();
    let a = lab.agent(0, &config_v6(100));
    a.wait_state("VI_1", "FAULT", SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", a.log_tail(30)));
    assert_eq!(fault_reason(&a).as_deref(), Some("interface down"));
    lab.router(0).ip(&["link", "set", "eth0", "up"]).unwrap();
    a.wait_state("VI_1", "MASTER", SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", a.log_tail(30)));
    assert!(has_address(lab.router(0), "eth0", "2001:db8::10"));
}

/// Issue 9, defect 6: no IPv4 address yet at start (DHCP not done, say):
/// FAULT with the reason, then MASTER once the address appears.
#[test]
fn no_ipv4_address_at_start_waits_in_fault_then_recovers() {
    let lab = Lab::new("na", 1);
    lab.router(0)
        .ip(&["addr", "del", "192.0.2.1/24", "dev", "eth0"])
        .unwrap();
    let a = lab.agent(0, &config(100, "192.0.2.10"));
    a.wait_state("VI_1", "FAULT", SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", a.log_tail(30)));
    assert_eq!(
        fault_reason(&a).as_deref(),
        Some("no IPv4 address on the interface")
    );
    lab.router(0).addr_add("eth0", "192.0.2.1/24").unwrap();
    a.wait_state("VI_1", "MASTER", SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", a.log_tail(30)));
}

/// Issue 9, defect 6: an IPv6 instance whose link-local address is not
/// there yet (missing, or still in DAD) waits in FAULT, then recovers.
#[test]
fn ipv6_without_link_local_waits_in_fault_then_recovers() {
    let lab = Lab::new("ll", 1);
    lab.router(0)
        .ip(&["-6", "addr", "flush", "dev", "eth0", "scope", "link"])
        .unwrap();
    let a = lab.agent(0, &config_v6(100));
    a.wait_state("VI_1", "FAULT", SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", a.log_tail(30)));
    assert!(
        fault_reason(&a).is_some_and(|r| r.contains("link-local")),
        "{:?}",
        fault_reason(&a)
    );
    lab.router(0).addr_add("eth0", "fe80::1/64").unwrap();
    a.wait_state("VI_1", "MASTER", SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", a.log_tail(30)));
}

/// Issue 9, defect 6: the interface is deleted and created again under the
/// same name (a new index, as ifdown/ifup and NetworkManager do). The
/// instance follows it: it hears the master again (BACKUP, and stays
/// BACKUP) instead of sitting in FAULT until a restart.
#[test]
fn recreated_interface_is_picked_up_again() {
    let lab = Lab::new("rc", 2);
    let m = lab.agent(1, &config(200, "192.0.2.10"));
    m.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    let b = lab.agent(0, &config(100, "192.0.2.10"));
    b.wait_state("VI_1", "BACKUP", SETTLE).unwrap();

    lab.router(0).ip(&["link", "del", "eth0"]).unwrap();
    b.wait_state("VI_1", "FAULT", SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", b.log_tail(30)));
    tests::netns::veth_pair(&lab.lan.lan, "p0", lab.router(0), "eth0").unwrap();
    lab.lan
        .lan
        .ip(&["link", "set", "p0", "master", "br0"])
        .unwrap();
    lab.router(0).addr_add("eth0", "192.0.2.1/24").unwrap();
    b.wait_state("VI_1", "BACKUP", SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", b.log_tail(40)));
    // It hears the master on the new interface: no takeover over several
    // Master_Down_Intervals (0.35 s each).
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        b.state("VI_1").as_deref(),
        Some("BACKUP"),
        "{}",
        b.log_tail(40)
    );
    assert_eq!(m.state("VI_1").as_deref(), Some("MASTER"));
}
