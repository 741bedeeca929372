//! The daemon's kernel-facing parts in network namespaces: netlink (interface
//! lookup, VIP add/remove, change notifications), the advert TX socket and
//! the gratuitous ARP / NA sender, and the start-up checks.
//!
//! Topology: namespace `a` (interface `vr0`, 192.0.2.1/24, fe80::1) and a
//! peer namespace `p` (interface `vp0`, 192.0.2.2/24, fe80::2) joined by a
//! veth pair; `p` captures every frame with an AF_PACKET socket.
//!
//! Needs root; run by `cargo xtask test`.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, OwnedFd},
    time::{Duration, Instant},
};

use nix::sys::socket::{self, AddressFamily, SockFlag, SockProtocol, SockType, sockopt};
use tests::netns::{Netns, TempDir, privileged, veth_pair};
use vrrp_agent::{
    config::{Config, VirtualIp, XdpMode},
    daemon,
    proto::packet::{Advert, V3Checksum, Version, split_frame},
    tx::{AdvertSender, FrameSender},
    vips::{self, NetEvent, Netlink},
};

/// Only bounds a hang; no assertion depends on it.
const WAIT: Duration = Duration::from_secs(10);

struct Topo {
    a: Netns,
    p: Netns,
}

impl Topo {
    fn new() -> Self {
        let a = Netns::new("dpta").expect("netns a");
        let p = Netns::new("dptp").expect("netns p");
        veth_pair(&a, "vr0", &p, "vp0").expect("veth");
        a.addr_add("vr0", "192.0.2.1/24").expect("addr a");
        p.addr_add("vp0", "192.0.2.2/24").expect("addr p");
        a.addr_add("vr0", "fe80::1/64").expect("ll a");
        p.addr_add("vp0", "fe80::2/64").expect("ll p");
        Topo { a, p }
    }
}

fn vip(s: &str) -> VirtualIp {
    s.parse().expect("vip")
}

/// An AF_PACKET socket in `ns` receiving every frame (ETH_P_ALL).
fn capture(ns: &Netns) -> OwnedFd {
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
            &nix::sys::time::TimeVal::new(0, 200_000),
        )
        .expect("rcvtimeo");
        fd
    })
}

/// Frames read until `done` says so or [`WAIT`] passes.
fn frames_until(fd: &OwnedFd, mut done: impl FnMut(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    while !done(&out) && start.elapsed() < WAIT {
        if let Ok(n) = socket::recv(fd.as_raw_fd(), &mut buf, socket::MsgFlags::empty()) {
            out.push(buf[..n].to_vec());
        }
    }
    out
}

fn is_vrrp(f: &[u8]) -> bool {
    // IPv4 protocol / IPv6 next header (no extension headers) = 112.
    matches!(
        (f.get(12..14), f.get(23), f.get(20)),
        (Some([0x08, 0x00]), Some(112), _) | (Some([0x86, 0xdd]), _, Some(112))
    )
}

#[test]
fn netlink_links_vips_and_events() {
    if !privileged() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Topo::new();
    let ifindex = t.a.ifindex("vr0").expect("ifindex");
    let mac = t.a.mac("vr0").expect("mac");
    let a = &t.a;
    a.run_async(|| async move {
        let nl = Netlink::new().expect("netlink");
        let link = nl.link_by_name("vr0").await.expect("vr0");
        assert_eq!(link.index, ifindex);
        assert_eq!(link.mac, Some(mac));
        assert!(link.is_up(), "{link:?}");
        assert_eq!(
            nl.link_by_index(ifindex).await.expect("by index").name,
            "vr0"
        );
        assert!(matches!(
            nl.link_by_name("nope0").await,
            Err(vips::NetlinkError::NoSuchInterface(_))
        ));

        let mut events = vips::subscribe().expect("subscribe");
        let v4 = vip("192.0.2.10/24");
        let v6 = vip("2001:db8::10/64");
        nl.add_vip(ifindex, &v4).await.expect("add v4");
        nl.add_vip(ifindex, &v4)
            .await
            .expect("adding twice is fine");
        nl.add_vip(ifindex, &v6).await.expect("add v6");

        let addrs = nl.addresses(ifindex).await.expect("addresses");
        let v4a = addrs.iter().find(|x| x.addr == v4.addr).expect("v4 listed");
        assert_eq!(v4a.prefix_len, 24);
        assert!(v4a.secondary, "same subnet as the primary: {v4a:?}");
        let v6a = addrs.iter().find(|x| x.addr == v6.addr).expect("v6 listed");
        assert!(!v6a.tentative, "added with IFA_F_NODAD: {v6a:?}");
        let vips_now = [v4, v6];
        assert_eq!(
            vips::primary_ipv4(&addrs, &vips_now),
            Some(Ipv4Addr::new(192, 0, 2, 1))
        );
        assert_eq!(
            vips::link_local_ipv6(&addrs, &vips_now),
            Some("fe80::1".parse::<Ipv6Addr>().unwrap())
        );

        // Our own changes are reported like anyone else's.
        let mut seen_add = false;
        tokio::time::timeout(WAIT, async {
            while let Some(ev) = events.next().await {
                if ev == NetEvent::AddrAdded(v4a.clone()) {
                    seen_add = true;
                    break;
                }
            }
        })
        .await
        .expect("AddrAdded event for the VIP");
        assert!(seen_add);

        nl.del_vip(ifindex, &v4).await.expect("del v4");
        nl.del_vip(ifindex, &v4)
            .await
            .expect("deleting twice is fine");
        nl.del_vip(ifindex, &v6).await.expect("del v6");
        let addrs = nl.addresses(ifindex).await.expect("addresses");
        assert!(
            !addrs.iter().any(|x| x.addr == v4.addr || x.addr == v6.addr),
            "{addrs:?}"
        );
        tokio::time::timeout(WAIT, async {
            while let Some(ev) = events.next().await {
                if matches!(&ev, NetEvent::AddrRemoved(x) if x.addr == v6.addr) {
                    break;
                }
            }
        })
        .await
        .expect("AddrRemoved event");
    });

    // Link down by someone else is reported.
    let a = &t.a;
    a.run_async(|| async move {
        let mut events = vips::subscribe().expect("subscribe");
        let out = tokio::process::Command::new("ip")
            .args(["link", "set", "vr0", "down"])
            .status()
            .await
            .expect("ip");
        assert!(out.success());
        tokio::time::timeout(WAIT, async {
            while let Some(ev) = events.next().await {
                if let NetEvent::Link(l) = ev
                    && l.index == ifindex
                    && !l.admin_up
                {
                    assert!(!l.is_up());
                    break;
                }
            }
        })
        .await
        .expect("link down event");
    });
}

#[test]
fn adverts_leave_with_ttl_255_and_parse() {
    if !privileged() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Topo::new();
    let ifindex = t.a.ifindex("vr0").expect("ifindex");
    let mac = t.a.mac("vr0").expect("mac");
    let cap = capture(&t.p);
    let src4: IpAddr = "192.0.2.1".parse().unwrap();
    let src6: IpAddr = "fe80::1".parse().unwrap();
    let group4: IpAddr = "224.0.0.18".parse().unwrap();
    let group6: IpAddr = "ff02::12".parse().unwrap();
    let peer4: IpAddr = "192.0.2.2".parse().unwrap();
    let adv4 = Advert {
        version: Version::V3,
        vrid: 51,
        priority: 100,
        interval: Duration::from_secs(1),
        addrs: vec!["192.0.2.10".parse().unwrap()],
    };
    let adv6 = Advert {
        addrs: vec!["fe80::51".parse().unwrap(), "2001:db8::10".parse().unwrap()],
        ..adv4.clone()
    };
    let (a4, a6) = (adv4.clone(), adv6.clone());
    t.a.run_async(|| async move {
        let s4 = AdvertSender::new("vr0", ifindex, src4).expect("v4 sender");
        assert_eq!(s4.src(), src4);
        s4.send(group4, &a4.emit(src4, group4, V3Checksum::Rfc5798).unwrap())
            .await
            .expect("send v4");
        s4.send(peer4, &a4.emit(src4, peer4, V3Checksum::Rfc9568).unwrap())
            .await
            .expect("send unicast");
        assert!(
            s4.send(group6, &[0u8; 8]).await.is_err(),
            "family mismatch refused"
        );
        let s6 = AdvertSender::new("vr0", ifindex, src6).expect("v6 sender");
        s6.send(group6, &a6.emit(src6, group6, V3Checksum::Rfc5798).unwrap())
            .await
            .expect("send v6");
    });
    let frames = frames_until(&cap, |f| f.iter().filter(|x| is_vrrp(x)).count() >= 3);
    let vrrp: Vec<&Vec<u8>> = frames.iter().filter(|x| is_vrrp(x)).collect();
    assert_eq!(vrrp.len(), 3, "three adverts captured");
    let mut dsts = Vec::new();
    for f in vrrp {
        // Interface MAC as source (keepalived without use_vmac does the same).
        assert_eq!(&f[6..12], &mac, "source MAC");
        let (meta, msg) = split_frame(f).expect("split");
        assert_eq!(meta.ttl, 255);
        let (adv, _form) = Advert::parse(&meta, msg).expect("valid advert");
        let want = if meta.src.is_ipv4() { &adv4 } else { &adv6 };
        assert_eq!(&adv, want);
        dsts.push((meta.src, meta.dst));
    }
    // The unicast advert waits for ARP, so arrival order may differ from send order.
    dsts.sort();
    let mut want = vec![(src4, group4), (src4, peer4), (src6, group6)];
    want.sort();
    assert_eq!(dsts, want);
}

#[test]
fn gratuitous_arp_and_na_burst() {
    if !privileged() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Topo::new();
    let ifindex = t.a.ifindex("vr0").expect("ifindex");
    let mac = t.a.mac("vr0").expect("mac");
    let cap = capture(&t.p);
    let vips = vec![vip("192.0.2.10/24"), vip("2001:db8::10/64")];
    let v = vips.clone();
    let sent = t.a.run_async(|| async move {
        let s = FrameSender::new("vr0", ifindex).expect("packet socket");
        s.announce(
            mac,
            Some("fe80::1".parse().unwrap()),
            &v,
            3,
            Duration::from_millis(10),
        )
        .await
        .expect("announce")
    });
    assert_eq!(sent, 6);
    let is_garp = |f: &Vec<u8>| {
        f.get(12..14) == Some(&[0x08, 0x06]) && f.get(28..32) == Some(&[192, 0, 2, 10])
    };
    // ICMPv6 (58) type 136 (NA) with target 2001:db8::10.
    let target: Ipv6Addr = "2001:db8::10".parse().unwrap();
    let is_na = |f: &Vec<u8>| {
        f.get(12..14) == Some(&[0x86, 0xdd])
            && f.get(20) == Some(&58)
            && f.get(54) == Some(&136)
            && f.get(62..78) == Some(&target.octets())
    };
    let frames = frames_until(&cap, |f| {
        f.iter().filter(|x| is_garp(x)).count() >= 3 && f.iter().filter(|x| is_na(x)).count() >= 3
    });
    let garps: Vec<_> = frames.iter().filter(|x| is_garp(x)).collect();
    let nas: Vec<_> = frames.iter().filter(|x| is_na(x)).collect();
    assert_eq!((garps.len(), nas.len()), (3, 3));
    for f in garps.iter().chain(&nas) {
        assert_eq!(&f[6..12], &mac, "announced with the interface MAC");
    }
}

#[test]
fn preflight_checks() {
    if !privileged() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Topo::new();
    let dir = TempDir::new("dpt").expect("tempdir");
    let sock = dir.path().join("ctl.sock");
    let cfg = |iface: &str| {
        Config::parse(
            &format!(
                "[global]\ncontrol_socket = \"{}\"\n[[instance]]\nname = \"VI_1\"\ninterface = \"{iface}\"\n\
                 vrid = 51\npriority = 100\nvirtual_ips = [\"192.0.2.10/24\"]\n",
                sock.display()
            ),
            "t.toml",
        )
        .expect("config")
    };
    let (good, bad) = (cfg("vr0"), cfg("nope0"));
    t.a.run_async(|| async move {
        daemon::preflight(&good, XdpMode::Off)
            .await
            .expect("preflight ok");
        let err = daemon::preflight(&bad, XdpMode::Off)
            .await
            .expect_err("missing interface");
        assert_eq!(
            err.to_string(),
            "interface `nope0` of instance `VI_1` does not exist"
        );
    });
}
