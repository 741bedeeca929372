//! Reliability in real networks (issue 9, defects 1-3), end to end: real
//! vrrp-agent daemons in network namespaces on a bridge, checked the way an
//! operator would check them.
//!
//! - Adverts are marked CS6 (or the configured DSCP) like keepalived's.
//! - The agent joins 224.0.0.18 / ff02::12 (IGMP / MLD), so a snooping
//!   bridge with a querier forwards the adverts, and it re-reports after a
//!   link flap.
//! - After a split brain heals, in either order of the first adverts, one
//!   MASTER remains and the client's neighbour entry for the VIP points at it.
//!
//! Run as root by `cargo xtask test`.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::{
    net::IpAddr,
    os::fd::{AsRawFd, OwnedFd},
    time::{Duration, Instant},
};

use nix::sys::{
    signal::Signal,
    socket::{self, AddressFamily, SockFlag, SockProtocol, SockType, sockopt},
};
use tests::{
    cluster::{Agent, Lab, mac_string, neigh_mac, ping, wait_until},
    netns::{Netns, privileged, run_cmd, veth_pair},
};
use vrrp_agent::tx::AdvertSender;

/// Only bounds a wait; no assertion depends on it.
const SETTLE: Duration = Duration::from_secs(10);
const VIP4: &str = "192.0.2.10";
const VIP6: &str = "2001:db8::10";
/// IPPROTO_VRRP.
const VRRP: u8 = 112;

/// A two-instance config (IPv4 VRID 51, IPv6 VRID 52), `extra` added to
/// `[global]`.
fn config(priority: u8, global_extra: &str) -> String {
    format!(
        r#"[global]
router_id = "r{priority}"
control_socket = "{{SOCKET}}"
{global_extra}

[[instance]]
name = "VI_4"
interface = "eth0"
vrid = 51
priority = {priority}
advert_interval = "100ms"
virtual_ips = ["{VIP4}/24"]

[[instance]]
name = "VI_6"
interface = "eth0"
vrid = 52
priority = {priority}
advert_interval = "100ms"
virtual_ips = ["fe80::52/64", "{VIP6}/64"]
"#
    )
}

// ---- capturing ------------------------------------------------------------

/// An AF_PACKET socket in `ns` receiving every frame (ETH_P_ALL), with a
/// short receive timeout so a reader can give up.
fn sniffer(ns: &Netns) -> OwnedFd {
    ns.run(|| {
        let fd = socket::socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::empty(),
            SockProtocol::EthAll,
        )
        .expect("packet socket");
        socket::setsockopt(
            &fd,
            sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(0, 100_000),
        )
        .expect("rcvtimeo");
        fd
    })
}

/// A VRRP advert seen on the wire: its family and its IPv4 TOS / IPv6
/// Traffic Class byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SeenAdvert {
    v6: bool,
    tos: u8,
}

/// The advert carried by an Ethernet frame, if it is one.
fn vrrp_advert(f: &[u8]) -> Option<SeenAdvert> {
    match f.get(12..14)? {
        [0x08, 0x00] if *f.get(23)? == VRRP => Some(SeenAdvert {
            v6: false,
            tos: *f.get(15)?,
        }),
        [0x86, 0xdd] if *f.get(20)? == VRRP => {
            let (b0, b1) = (*f.get(14)?, *f.get(15)?);
            Some(SeenAdvert {
                v6: true,
                tos: (b0 << 4) | (b1 >> 4),
            })
        }
        _ => None,
    }
}

/// Reads frames from `fd` until `done` holds for the adverts seen so far,
/// or [`SETTLE`] passes; returns those adverts.
fn adverts_until(fd: &OwnedFd, mut done: impl FnMut(&[SeenAdvert]) -> bool) -> Vec<SeenAdvert> {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    while !done(&out) && start.elapsed() < SETTLE {
        if let Ok(n) = socket::recv(fd.as_raw_fd(), &mut buf, socket::MsgFlags::empty())
            && let Some(a) = vrrp_advert(&buf[..n])
        {
            out.push(a);
        }
    }
    out
}

/// The TOS (IPv4) and Traffic Class (IPv6) of the next adverts of each family.
fn advert_tos(fd: &OwnedFd) -> (Option<u8>, Option<u8>) {
    let seen = adverts_until(fd, |s| s.iter().any(|a| a.v6) && s.iter().any(|a| !a.v6));
    let of = |v6: bool| seen.iter().find(|a| a.v6 == v6).map(|a| a.tos);
    (of(false), of(true))
}

// ---- defect 3: DSCP -------------------------------------------------------

/// Adverts leave marked CS6 (TOS / Traffic Class 0xc0) by default, as
/// keepalived's do, in both families; `advert_dscp` changes it, also on
/// reload.
#[test]
fn adverts_carry_cs6_by_default_and_the_configured_dscp() {
    if !privileged() {
        eprintln!("skipped: needs root");
        return;
    }
    let lab = Lab::new("nfd", 1);
    let cap = sniffer(lab.client());
    let a = lab.agent(0, &config(200, ""));
    wait_both(&a, "MASTER");
    assert_eq!(advert_tos(&cap), (Some(0xc0), Some(0xc0)), "CS6");

    // EF (46) after a reload: 46 << 2 = 0xb8.
    std::fs::write(&a.config, config(200, "advert_dscp = 46")).unwrap();
    a.signal(Signal::SIGHUP).unwrap();
    let changed = adverts_until(&cap, |s| {
        s.iter().any(|x| {
            *x == SeenAdvert {
                v6: false,
                tos: 0xb8,
            }
        }) && s.iter().any(|x| {
            *x == SeenAdvert {
                v6: true,
                tos: 0xb8,
            }
        })
    });
    assert!(
        changed.contains(&SeenAdvert {
            v6: false,
            tos: 0xb8
        }) && changed.contains(&SeenAdvert {
            v6: true,
            tos: 0xb8
        }),
        "after reload to DSCP 46: {changed:?}\n{}",
        a.log_tail(20)
    );

    // And from the start.
    drop(a);
    let cap = sniffer(lab.client());
    let a = lab.agent(0, &config(200, "advert_dscp = 0"));
    a.wait_state("VI_6", "MASTER", SETTLE).unwrap();
    assert_eq!(advert_tos(&cap), (Some(0), Some(0)), "DSCP 0 configured");
}

// ---- defect 1: IGMP / MLD membership ----------------------------------------

/// Turns the lab's bridge into a snooping one with an active querier (IGMPv3
/// and MLDv2), the way a managed switch behaves: ff02::12 is then forwarded
/// only to ports that reported it. Returns once the bridge has taken the
/// querier role (it gates forwarding on that).
fn snooping_querier(lab: &Lab) {
    let lan = &lab.lan.lan;
    // The MLD querier needs a usable link-local source address.
    lan.addr_add("br0", "fe80::100/64").unwrap();
    let set = |args: &[&str]| {
        let mut all = vec!["link", "set", "br0", "type", "bridge"];
        all.extend_from_slice(args);
        lan.ip(&all).unwrap();
    };
    // 1 s (centiseconds): the window hosts get to answer a query, and how
    // long a new querier waits before it counts as one. Set before the
    // querier, whose enabling reads it.
    set(&["mcast_query_response_interval", "100"]);
    set(&[
        "mcast_snooping",
        "1",
        "mcast_igmp_version",
        "3",
        "mcast_mld_version",
        "2",
    ]);
    set(&["mcast_querier", "1"]);
    // Until then the bridge floods unknown groups; after that it forwards
    // them to ports that reported them only.
    std::thread::sleep(Duration::from_millis(1500));
}

/// The bridge ports (`p<i>`) on which the bridge has learned `group`.
fn mdb_ports(lab: &Lab, group: &str) -> Vec<String> {
    let out = lab
        .lan
        .lan
        .exec("bridge", &["mdb", "show", "dev", "br0"])
        .unwrap_or_default();
    out.lines()
        .filter(|l| l.split_whitespace().any(|w| w == group))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|x| *x == "port")
                .and_then(|_| w.next().map(str::to_owned))
        })
        .collect()
}

/// How many sockets in `ns` have joined 224.0.0.18 on `ifname`
/// (`/proc/net/igmp`: the group in host byte order, then its users).
fn igmp_users(ns: &Netns, ifname: &str) -> u32 {
    let text = ns.exec("cat", &["/proc/net/igmp"]).unwrap_or_default();
    let group = format!("{:08X}", u32::from_ne_bytes([224, 0, 0, 18]));
    let mut on_if = false;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if !line.starts_with('\t') && !line.starts_with(' ') {
            on_if = words.nth(1) == Some(ifname);
        } else if on_if && words.next() == Some(group.as_str()) {
            return words.next().and_then(|u| u.parse().ok()).unwrap_or(0);
        }
    }
    0
}

/// Whether `ns` has joined 224.0.0.18 on eth0.
fn igmp_joined(ns: &Netns) -> bool {
    igmp_users(ns, "eth0") > 0
}

/// Waits until both instances of `agent` are in `state`.
fn wait_both(agent: &Agent, state: &str) {
    for instance in ["VI_4", "VI_6"] {
        agent.wait_state(instance, state, SETTLE).unwrap();
    }
}

/// Both routers' states of `instance`.
fn states(a: &Agent, b: &Agent, instance: &str) -> (Option<String>, Option<String>) {
    (a.state(instance), b.state(instance))
}

/// On a bridge that snoops MLD with a querier (a Linux bridge's default
/// snooping plus a querier, like a managed switch), two agents elect one
/// MASTER for IPv6: each joins ff02::12, so the bridge forwards the adverts
/// to it. A link flap drops the bridge's record of the port; the kernel
/// re-reports on link up, so the election holds afterwards too. IPv4 elects
/// correctly there as well (a Linux bridge floods 224.0.0.x), and the IGMP
/// membership exists for switches that do snoop it.
#[test]
fn one_master_on_a_snooping_bridge_with_a_querier() {
    if !privileged() {
        eprintln!("skipped: needs root");
        return;
    }
    let lab = Lab::new("nfs", 2);
    snooping_querier(&lab);
    let a = lab.agent(0, &config(200, ""));
    a.wait_state("VI_6", "MASTER", SETTLE).unwrap();
    let b = lab.agent(1, &config(100, ""));
    b.wait_state("VI_6", "BACKUP", SETTLE).unwrap();
    // Many advert intervals (100 ms) and Master_Down_Intervals (~0.4 s):
    // a backup that missed the adverts would have taken over.
    std::thread::sleep(Duration::from_secs(2));
    let want = (Some("MASTER".to_owned()), Some("BACKUP".to_owned()));
    assert_eq!(states(&a, &b, "VI_6"), want, "IPv6");
    assert_eq!(states(&a, &b, "VI_4"), want, "IPv4");
    let both = wait_until(SETTLE, || {
        let p = mdb_ports(&lab, "ff02::12");
        p.contains(&"p0".to_owned()) && p.contains(&"p1".to_owned())
    });
    assert!(
        both.is_some(),
        "bridge learned ff02::12 on {:?}",
        mdb_ports(&lab, "ff02::12")
    );
    assert!(igmp_joined(lab.router(0)) && igmp_joined(lab.router(1)));

    // Link flap on the backup: the bridge forgets port p1's groups.
    lab.router(1).ip(&["link", "set", "eth0", "down"]).unwrap();
    let forgot = wait_until(SETTLE, || {
        !mdb_ports(&lab, "ff02::12").contains(&"p1".to_owned())
    });
    assert!(forgot.is_some(), "bridge kept p1's group while it was down");
    lab.router(1).ip(&["link", "set", "eth0", "up"]).unwrap();
    let relearned = wait_until(SETTLE, || {
        mdb_ports(&lab, "ff02::12").contains(&"p1".to_owned())
    });
    assert!(relearned.is_some(), "no MLD report after link up");
    b.wait_state("VI_6", "BACKUP", SETTLE).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(states(&a, &b, "VI_6"), want, "IPv6 after a link flap");
    assert_eq!(states(&a, &b, "VI_4"), want, "IPv4 after a link flap");
    assert!(
        igmp_joined(lab.router(1)),
        "IGMP membership kept over the flap"
    );

    // A reload (reconfiguring the instances in place) keeps the membership:
    // leaving would send an MLD Done and the bridge would drop the port.
    std::fs::write(&b.config, config(90, "")).unwrap();
    b.signal(Signal::SIGHUP).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        mdb_ports(&lab, "ff02::12").contains(&"p1".to_owned()),
        "ff02::12 kept on p1 over a reload"
    );
    assert!(
        igmp_joined(lab.router(1)),
        "IGMP membership kept over a reload"
    );
    assert_eq!(states(&a, &b, "VI_6"), want, "IPv6 after a reload");

    // The membership goes with the agent.
    drop(b);
    assert!(!igmp_joined(lab.router(1)), "membership left on exit");
}

// ---- defect 2: split brain healed -------------------------------------------

/// Isolates the routers' bridge ports from each other (`isolated` ports
/// reach only non-isolated ones: both routers still reach the client), or
/// joins them again; both ports in one command, so a heal is quick.
fn isolate_routers(lab: &Lab, on: bool) {
    let flag = if on { "on" } else { "off" };
    let batch = lab.dir.path().join("isolate.batch");
    std::fs::write(
        &batch,
        format!("link set dev p0 isolated {flag}\nlink set dev p1 isolated {flag}\n"),
    )
    .unwrap();
    let batch = batch.display().to_string();
    run_cmd("bridge", &["-n", lab.lan.lan.name(), "-batch", &batch]).unwrap();
}

/// Waits (on a fresh capture in `ns`) for the next IPv4 advert from `src`.
fn next_advert_from(ns: &Netns, src: [u8; 4]) {
    let fd = sniffer(ns);
    let mut buf = vec![0u8; 2048];
    let start = Instant::now();
    while start.elapsed() < SETTLE {
        if let Ok(n) = socket::recv(fd.as_raw_fd(), &mut buf, socket::MsgFlags::empty())
            && vrrp_advert(&buf[..n]).is_some_and(|a| !a.v6)
            && buf.get(26..30) == Some(&src[..])
        {
            return;
        }
    }
    panic!("no advert from {src:?} within {SETTLE:?}");
}

/// A split brain healed, ten times, alternately right after the loser's
/// advert (the winner's next advert reaches the loser first) and right
/// after the winner's (the loser's reaches the winner first): within one
/// advert interval (plus slack for the links and the daemon) one MASTER
/// remains and the client's ARP and neighbour entries for the VIPs point at
/// its MAC. (In the first order the loser used to yield silently and the
/// client stayed on its MAC.)
#[test]
fn healed_split_brain_leaves_the_client_on_the_master() {
    if !privileged() {
        eprintln!("skipped: needs root");
        return;
    }
    let lab = Lab::new("nfb", 2);
    let a = lab.agent(0, &config(200, ""));
    wait_both(&a, "MASTER");
    let b = lab.agent(1, &config(100, ""));
    wait_both(&b, "BACKUP");
    let (mac_a, mac_b) = (mac_string(lab.router(0)), mac_string(lab.router(1)));
    let client = lab.client();
    for vip in [VIP4, VIP6] {
        assert!(wait_until(SETTLE, || ping(client, vip)).is_some(), "{vip}");
    }
    let on = |vip: &str, mac: &str| neigh_mac(client, vip).as_deref() == Some(mac);
    let interval = Duration::from_millis(100);
    let mut trials = Vec::new();
    for trial in 0..10u32 {
        isolate_routers(&lab, true);
        wait_both(&b, "MASTER");
        // The loser's announcements took the client.
        let taken = wait_until(SETTLE, || on(VIP4, &mac_b) && on(VIP6, &mac_b));
        assert!(taken.is_some(), "trial {trial}: client not on the loser");
        // ~3 s of split brain, healed right after one side's advert.
        std::thread::sleep(Duration::from_secs(3));
        let first = if trial % 2 == 0 {
            [192, 0, 2, 2]
        } else {
            [192, 0, 2, 1]
        };
        next_advert_from(client, first);
        isolate_routers(&lab, false);
        std::thread::sleep(interval + Duration::from_millis(400));
        let outcome = (
            states(&a, &b, "VI_4"),
            states(&a, &b, "VI_6"),
            neigh_mac(client, VIP4),
            neigh_mac(client, VIP6),
        );
        trials.push(outcome.clone());
        let want = (Some("MASTER".to_owned()), Some("BACKUP".to_owned()));
        assert_eq!(
            outcome,
            (want.clone(), want, Some(mac_a.clone()), Some(mac_a.clone())),
            "trial {trial} after the heal (winner {mac_a}, loser {mac_b}); earlier: {trials:?}"
        );
    }
}

/// The senders of one interface and family share one membership (one
/// socket joined, however many VRIDs), which lasts while any of them does.
#[test]
fn senders_of_one_interface_share_one_membership() {
    if !privileged() {
        eprintln!("skipped: needs root");
        return;
    }
    let a = Netns::new("nfm").unwrap();
    let p = Netns::new("nfmp").unwrap();
    veth_pair(&a, "eth0", &p, "eth0").unwrap();
    a.addr_add("eth0", "192.0.2.1/24").unwrap();
    let ifindex = a.ifindex("eth0").unwrap();
    let src: IpAddr = "192.0.2.1".parse().unwrap();
    let users = a.run_async(|| async {
        let mut users = Vec::new();
        let first = AdvertSender::new("eth0", ifindex, src).unwrap();
        let second = AdvertSender::new("eth0", ifindex, src).unwrap();
        users.push(igmp_users(&a, "eth0"));
        drop(first);
        users.push(igmp_users(&a, "eth0"));
        drop(second);
        users.push(igmp_users(&a, "eth0"));
        users
    });
    assert_eq!(
        users,
        vec![1, 1, 0],
        "joined once, left with the last sender"
    );
}
