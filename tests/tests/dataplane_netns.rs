//! The data plane end to end in network namespaces: the agent's namespace
//! `a` (interface `vr0`) and a peer namespace `p` (interface `vp0`) joined
//! by a veth pair. Adverts come from keepalived and from frames crafted
//! here and sent through AF_PACKET; both receive paths (XDP and the socket
//! fallback) must turn them into the same events and counters.
//!
//! Needs root; run by `cargo xtask test` (one test at a time).
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use tests::netns::{Netns, TempDir, have_keepalived, keepalived, privileged, veth_pair};
use vrrp_agent::{
    dataplane::{
        ActiveMode, DataPlane, DataPlaneConfig, Event, EventStream, Family, FamilyTag, VridEntry,
        XdpMode, monotonic_now_ns, xdp_built_in,
    },
    proto::packet::{Advert, V3Checksum, Version},
};
use vrrp_common::{ChecksumForm, DropReason, Stat, VridKey, event_reason};

const VRID: u8 = 51;
/// Long enough for keepalived to start and elect itself; only bounds a
/// hang, the assertions do not depend on it.
const EVENT_WAIT: Duration = Duration::from_secs(15);

struct Topo {
    a: Netns,
    p: Netns,
}

impl Topo {
    fn new() -> Self {
        let a = Netns::new("dpa").expect("netns a");
        let p = Netns::new("dpp").expect("netns p");
        veth_pair(&a, "vr0", &p, "vp0").expect("veth");
        a.addr_add("vr0", "192.0.2.1/24").expect("addr a");
        p.addr_add("vp0", "192.0.2.2/24").expect("addr p");
        a.addr_add("vr0", "fe80::1/64").expect("ll a");
        p.addr_add("vp0", "fe80::2/64").expect("ll p");
        Self { a, p }
    }
}

fn skip(why: &str) -> bool {
    eprintln!("skipped: {why}");
    true
}

fn needs_root() -> bool {
    !privileged() && skip("needs root")
}

fn needs_xdp() -> bool {
    if needs_root() {
        return true;
    }
    if !xdp_built_in() {
        // `cargo xtask test` builds the objects and wants failures, not skips.
        assert!(
            std::env::var_os("VRRP_TESTS_REQUIRE_XDP").is_none(),
            "vrrp-agent was built without XDP but VRRP_TESTS_REQUIRE_XDP is set"
        );
        return skip("vrrp-agent built without XDP (AYA_BUILD_SKIP)");
    }
    false
}

fn config(ifindex: u32, family: Family) -> DataPlaneConfig {
    DataPlaneConfig {
        vrids: vec![VridEntry {
            ifindex,
            vrid: VRID,
            family,
            version: 3,
            v2_adver_int: 0,
            local_priority: 100,
            deliver_all: false,
            unicast_peers: vec![],
            v2_auth_pass: None,
        }],
        vips: vec![
            "192.0.2.100".parse().unwrap(),
            "2001:db8::100".parse().unwrap(),
        ],
    }
}

/// An Ethernet frame carrying a VRRPv3 advert from `src` to the VRRP group,
/// built with the agent's codec (the XDP tests cross-check it against
/// independent builders).
fn advert_frame(src_mac: [u8; 6], src: IpAddr, ttl: u8, priority: u8) -> Vec<u8> {
    let (dst, addrs): (IpAddr, Vec<IpAddr>) = match src {
        IpAddr::V4(_) => (
            Ipv4Addr::new(224, 0, 0, 18).into(),
            vec!["192.0.2.100".parse().unwrap()],
        ),
        IpAddr::V6(_) => (
            "ff02::12".parse().unwrap(),
            vec![
                "fe80::100".parse().unwrap(),
                "2001:db8::100".parse().unwrap(),
            ],
        ),
    };
    let advert = Advert {
        version: Version::V3,
        vrid: VRID,
        priority,
        interval: Duration::from_millis(1000),
        addrs,
    };
    let msg = advert.emit(src, dst, V3Checksum::Rfc5798).expect("emit");
    let mut f = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
            f.extend_from_slice(&src_mac);
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, ttl, 112, 0, 0];
            ip[2..4].copy_from_slice(&((20 + msg.len()) as u16).to_be_bytes());
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            let c = ipv4_checksum(&ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend_from_slice(&[0x33, 0x33, 0x00, 0x00, 0x00, 0x12]);
            f.extend_from_slice(&src_mac);
            f.extend_from_slice(&0x86ddu16.to_be_bytes());
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(msg.len() as u16).to_be_bytes());
            f.extend_from_slice(&[112, ttl]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        _ => unreachable!("families match"),
    }
    f.extend_from_slice(&msg);
    f
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

async fn recv(events: &mut EventStream) -> Event {
    tokio::time::timeout(EVENT_WAIT, events.recv())
        .await
        .expect("no event in time")
        .expect("event stream failed")
}

/// Crafted adverts through `mode`: first advert, an identical one, one with
/// TTL 254, a priority change, then "deliver all".
fn crafted(mode: XdpMode, family: Family) {
    let t = Topo::new();
    let p_mac = t.p.mac("vp0").expect("mac");
    let ifindex = t.a.ifindex("vr0").expect("ifindex");
    let src: IpAddr = match family {
        Family::V4 => Ipv4Addr::new(192, 0, 2, 2).into(),
        Family::V6 => "fe80::2".parse::<Ipv6Addr>().unwrap().into(),
    };
    let key = VridKey::new(ifindex, VRID, family.tag());
    let cfg = config(ifindex, family);
    let socket = mode == XdpMode::Off;
    let send = |ttl, prio| {
        t.p.send_frame("vp0", &advert_frame(p_mac, src, ttl, prio))
            .expect("send")
    };
    t.a.run_async(|| async {
        let mut dp = DataPlane::open(&cfg, mode).expect("open data plane");
        let want_mode = match mode {
            XdpMode::Off => ActiveMode::Socket,
            XdpMode::Skb => ActiveMode::Skb,
            _ => ActiveMode::Driver,
        };
        assert_eq!(dp.mode(), want_mode);
        assert_eq!(dp.attachments(), vec![(ifindex, want_mode)]);
        let mut events = dp.events().expect("events");

        let before = monotonic_now_ns();
        send(255, 100);
        let first = recv(&mut events).await;
        let after = monotonic_now_ns();
        // The timestamp is the kernel's receive time on CLOCK_MONOTONIC.
        assert!(
            before <= first.ts.as_nanos() && first.ts.as_nanos() <= after,
            "{first:?}"
        );
        assert_eq!(first.src, src);
        assert_eq!(first.src_mac, p_mac);
        assert_eq!(
            (first.ifindex, first.vrid, first.version, first.priority),
            (ifindex, VRID, Version::V3, 100)
        );
        assert_eq!(first.interval, Duration::from_secs(1));
        assert_eq!(first.family, family);
        assert_eq!(first.key(), key);
        assert_eq!(first.checksum_form, Some(ChecksumForm::PseudoHeader));
        assert_ne!(first.reason & event_reason::FIRST, 0, "{first:?}");
        assert_eq!(first.from_socket(), socket);
        let want_addrs: Vec<IpAddr> = match family {
            Family::V4 => vec!["192.0.2.100".parse().unwrap()],
            Family::V6 => vec![
                "fe80::100".parse().unwrap(),
                "2001:db8::100".parse().unwrap(),
            ],
        };
        assert_eq!(first.addrs, want_addrs);

        send(255, 100); // identical: XDP only refreshes LAST_SEEN
        send(254, 100); // off-link: dropped (RFC 9568 §7.1 item 1)
        send(255, 90); // priority change: always an event
        if socket {
            let again = recv(&mut events).await;
            assert_eq!(
                (again.priority, again.reason & event_reason::FIRST),
                (100, 0)
            );
        }
        let changed = recv(&mut events).await;
        assert_eq!(changed.priority, 90);
        assert_ne!(changed.reason & event_reason::PRIORITY, 0, "{changed:?}");
        assert!(changed.ts > first.ts);

        let c = dp.counters().expect("counters");
        assert_eq!(c.stat(Stat::AdvertsValid), 3, "{c:?}");
        assert_eq!(c.dropped(DropReason::Ttl), 1, "{c:?}");
        assert_eq!(c.stat(Stat::AdvertsDropped), 1, "{c:?}");
        assert_eq!(
            c.stat(Stat::EventsSent),
            if socket { 3 } else { 2 },
            "{c:?}"
        );
        if !socket {
            assert_eq!(c.stat(Stat::EventsSuppressed), 1, "{c:?}");
        }
        let v = dp
            .vrid_counters(key)
            .expect("vrid counters")
            .expect("vrid seen");
        assert_eq!((v.valid, v.foreign, v.dropped(DropReason::Ttl)), (3, 0, 1));
        let seen = dp.last_seen(key).expect("last seen").expect("entry");
        assert_eq!(
            (seen.ts, seen.rx_total, seen.priority, seen.src),
            (changed.ts, 3, 90, src)
        );

        // Runtime update: every advert is delivered from now on.
        dp.set_deliver_all(key, true).expect("deliver all");
        send(255, 90);
        let all = recv(&mut events).await;
        assert_ne!(all.reason & event_reason::DELIVER_ALL, 0, "{all:?}");
        assert_eq!(all.reason & event_reason::PRIORITY, 0, "{all:?}");
        let seen = dp.last_seen(key).expect("last seen").expect("entry");
        assert_eq!((seen.ts, seen.rx_total), (all.ts, 4));
    });
}

#[test]
fn xdp_crafted_ipv4() {
    if needs_xdp() {
        return;
    }
    crafted(XdpMode::Driver, Family::V4);
}

#[test]
fn xdp_crafted_ipv6() {
    if needs_xdp() {
        return;
    }
    crafted(XdpMode::Driver, Family::V6);
}

#[test]
fn xdp_skb_mode_crafted_ipv4() {
    if needs_xdp() {
        return;
    }
    crafted(XdpMode::Skb, Family::V4);
}

#[test]
fn socket_crafted_ipv4() {
    if needs_root() {
        return;
    }
    crafted(XdpMode::Off, Family::V4);
}

#[test]
fn socket_crafted_ipv6() {
    if needs_root() {
        return;
    }
    crafted(XdpMode::Off, Family::V6);
}

/// The socket path reads its socket when polled, not only after the
/// reactor has reported it readable: the daemon drains waiting events
/// before it handles a deadline, and an advert queued since the reactor
/// last looked must count, or a backup that is behind (a busy CPU, a storm
/// of reloads) declares a live master down (issue 9). Polled here without
/// ever yielding to the reactor.
#[test]
fn socket_events_are_read_before_the_reactor_reports_them() {
    if needs_root() {
        return;
    }
    let t = Topo::new();
    let p_mac = t.p.mac("vp0").expect("mac");
    let ifindex = t.a.ifindex("vr0").expect("ifindex");
    let src: IpAddr = Ipv4Addr::new(192, 0, 2, 2).into();
    let cfg = config(ifindex, Family::V4);
    t.a.run_async(|| async {
        let mut dp = DataPlane::open(&cfg, XdpMode::Off).expect("open data plane");
        let mut events = dp.events().expect("events");
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(events.poll_recv(&mut cx).is_pending());
        t.p.send_frame("vp0", &advert_frame(p_mac, src, 255, 100))
            .expect("send");
        let got = (0..2000).find_map(|_| match events.poll_recv(&mut cx) {
            std::task::Poll::Ready(ev) => Some(ev),
            std::task::Poll::Pending => {
                std::thread::sleep(Duration::from_millis(1));
                None
            }
        });
        let ev = got
            .expect("the queued advert was not read without the reactor")
            .expect("event stream");
        assert_eq!((ev.src, ev.priority), (src, 100));
    });
}

/// keepalived 2.2.7 as master in `p`: its adverts arrive as events.
fn from_keepalived(mode: XdpMode) {
    let t = Topo::new();
    let dir = TempDir::new("dp-ka").expect("tempdir");
    let ifindex = t.a.ifindex("vr0").expect("ifindex");
    let key = VridKey::new(ifindex, VRID, Family::V4.tag());
    let cfg = config(ifindex, Family::V4);
    let conf = format!(
        "global_defs {{\n  router_id dp_test\n  vrrp_version 3\n}}\n\
         vrrp_instance VI_1 {{\n  state MASTER\n  interface vp0\n  virtual_router_id {VRID}\n  \
         priority 150\n  advert_int 0.1\n  virtual_ipaddress {{\n    192.0.2.100/24\n  }}\n}}\n"
    );
    let p_mac = t.p.mac("vp0").expect("mac");
    t.a.run_async(|| async {
        let mut dp = DataPlane::open(&cfg, mode).expect("open data plane");
        let mut events = dp.events().expect("events");
        let _ka = keepalived(&t.p, &dir, &conf).expect("start keepalived");
        let first = match tokio::time::timeout(EVENT_WAIT, events.recv()).await {
            Ok(ev) => ev.expect("event stream"),
            Err(_) => panic!("no advert from keepalived; its log:\n{}", logs(&dir)),
        };
        assert!(first.ts.as_nanos() <= monotonic_now_ns());
        assert_eq!(first.src, IpAddr::from(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(first.src_mac, p_mac);
        assert_eq!(
            (first.vrid, first.version, first.priority),
            (VRID, Version::V3, 150)
        );
        assert_eq!(first.interval, Duration::from_millis(100));
        assert_eq!(
            first.addrs,
            vec![IpAddr::from(Ipv4Addr::new(192, 0, 2, 100))]
        );
        // keepalived computes the RFC 5798 checksum (with pseudo-header).
        assert_eq!(first.checksum_form, Some(ChecksumForm::PseudoHeader));
        dp.set_deliver_all(key, true).expect("deliver all");
        let next = recv(&mut events).await;
        assert!(next.ts > first.ts);
        assert_eq!(next.priority, 150);
        let c = dp.counters().expect("counters");
        assert!(c.stat(Stat::AdvertsValid) >= 2, "{c:?}");
        assert_eq!(c.stat(Stat::AdvertsDropped), 0, "{c:?}");
        let seen = dp.last_seen(key).expect("last seen").expect("entry");
        assert_eq!(seen.src, first.src);
        assert!(seen.ts >= next.ts);
    });
}

fn logs(dir: &TempDir) -> String {
    let mut out = String::new();
    if let Ok(rd) = std::fs::read_dir(dir.path()) {
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "log") {
                out += &std::fs::read_to_string(e.path()).unwrap_or_default();
            }
        }
    }
    out
}

#[test]
fn xdp_keepalived_adverts() {
    if needs_xdp() || (!have_keepalived() && skip("keepalived not installed")) {
        return;
    }
    from_keepalived(XdpMode::Driver);
}

#[test]
fn socket_keepalived_adverts() {
    if needs_root() || (!have_keepalived() && skip("keepalived not installed")) {
        return;
    }
    from_keepalived(XdpMode::Off);
}

/// Auto picks native mode on veth; dropping the data plane detaches it.
#[test]
fn xdp_auto_attaches_and_detaches_on_drop() {
    if needs_xdp() {
        return;
    }
    let t = Topo::new();
    let ifindex = t.a.ifindex("vr0").expect("ifindex");
    let cfg = config(ifindex, Family::V4);
    t.a.run(|| {
        let dp = DataPlane::open(&cfg, XdpMode::Auto).expect("open");
        assert_eq!(dp.mode(), ActiveMode::Driver);
        let link = t.a.ip(&["link", "show", "vr0"]).expect("ip link");
        assert!(link.contains("xdp"), "{link}");
        drop(dp);
        let link = t.a.ip(&["link", "show", "vr0"]).expect("ip link");
        assert!(!link.contains("xdp"), "{link}");
    });
}

/// `vrrp_agent` built without the eBPF objects refuses XDP modes clearly,
/// and `auto` falls back to the socket path.
#[test]
fn auto_falls_back_without_xdp() {
    if needs_root() || (xdp_built_in() && skip("XDP is built in")) {
        return;
    }
    let t = Topo::new();
    let ifindex = t.a.ifindex("vr0").expect("ifindex");
    let cfg = config(ifindex, Family::V4);
    t.a.run(|| {
        let err = DataPlane::open(&cfg, XdpMode::Driver)
            .err()
            .expect("driver mode must fail");
        assert!(
            err.to_string().contains("built without XDP support"),
            "{err}"
        );
        let dp = DataPlane::open(&cfg, XdpMode::Auto).expect("auto");
        assert_eq!(dp.mode(), ActiveMode::Socket);
    });
}

fn udp_frame(dst_mac: [u8; 6], src_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let payload = [0u8; 18];
    let mut f = dst_mac.to_vec();
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&((20 + 8 + payload.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    // UDP 40000 -> 9, checksum 0 (none, allowed over IPv4).
    f.extend_from_slice(&[0x9c, 0x40, 0x00, 0x09]);
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&payload);
    f
}

fn arp_request(src_mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&sender.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f
}

/// VIP traffic is counted per VIP; a reload moves VIPs and VRIDs in the
/// kernel maps (a removed VRID's adverts become foreign).
#[test]
fn xdp_vip_counters_and_reload() {
    if needs_xdp() {
        return;
    }
    let t = Topo::new();
    let ifindex = t.a.ifindex("vr0").expect("ifindex");
    let a_mac = t.a.mac("vr0").expect("mac a");
    let p_mac = t.p.mac("vp0").expect("mac p");
    let p_ip = Ipv4Addr::new(192, 0, 2, 2);
    let vip = Ipv4Addr::new(192, 0, 2, 100);
    let vip2 = Ipv4Addr::new(192, 0, 2, 101);
    let cfg = config(ifindex, Family::V4);
    let key = VridKey::new(ifindex, VRID, Family::V4.tag());
    t.a.run(|| {
        let mut dp = DataPlane::open(&cfg, XdpMode::Driver).expect("open");
        let udp = udp_frame(a_mac, p_mac, p_ip, vip);
        t.p.send_frame("vp0", &udp).expect("send udp");
        t.p.send_frame("vp0", &arp_request(p_mac, p_ip, vip))
            .expect("send arp");
        // Frames to other addresses are not VIP traffic.
        t.p.send_frame(
            "vp0",
            &udp_frame(a_mac, p_mac, p_ip, Ipv4Addr::new(192, 0, 2, 1)),
        )
        .expect("send udp");
        let vips = dp.vip_counters().expect("vip counters");
        let c = vips
            .iter()
            .find(|c| c.vip == IpAddr::from(vip))
            .expect("vip listed");
        assert_eq!(
            (c.rx_packets, c.rx_bytes, c.resolutions),
            (1, udp.len() as u64, 1),
            "{vips:?}"
        );
        let v6 = vips
            .iter()
            .find(|c| c.vip.is_ipv6())
            .expect("v6 vip listed");
        assert_eq!((v6.rx_packets, v6.resolutions), (0, 0));
        let g = dp.counters().expect("counters");
        assert_eq!(
            (g.stat(Stat::VipPackets), g.stat(Stat::VipResolutions)),
            (1, 1),
            "{g:?}"
        );

        // Reload: the VRID replaced by another one (an interface without
        // VRIDs would be detached), the VIP replaced by another one.
        let mut reload_cfg = config(ifindex, Family::V4);
        reload_cfg.vrids[0].vrid = VRID + 1;
        reload_cfg.vips = vec![vip2.into()];
        dp.apply(&reload_cfg).expect("reload");
        assert!(
            dp.set_deliver_all(key, true).is_err(),
            "removed VRID must be unknown"
        );
        let vips = dp.vip_counters().expect("vip counters");
        assert_eq!(vips.len(), 1);
        assert_eq!((vips[0].vip, vips[0].rx_packets), (IpAddr::from(vip2), 0));
        t.p.send_frame("vp0", &udp).expect("send udp");
        assert_eq!(
            dp.counters().expect("counters").stat(Stat::VipPackets),
            1,
            "old VIP still counted"
        );
        t.p.send_frame("vp0", &advert_frame(p_mac, p_ip.into(), 255, 100))
            .expect("send advert");
        let g = dp.counters().expect("counters");
        assert_eq!(
            (g.stat(Stat::AdvertsForeign), g.stat(Stat::AdvertsValid)),
            (1, 0),
            "{g:?}"
        );
        assert!(dp.last_seen(key).expect("last seen").is_none());
    });
}

/// The bridged LAN helper floods the VRRP group to every host; the socket
/// path receives an advert sent by another host through the bridge.
#[test]
fn socket_path_over_bridged_lan() {
    if needs_root() {
        return;
    }
    let lan = tests::netns::Lan::new("dpl", 3).expect("lan");
    for (i, h) in lan.hosts.iter().enumerate() {
        h.addr_add("eth0", &format!("192.0.2.{}/24", i + 1))
            .expect("addr");
    }
    let (rx, tx) = (&lan.hosts[0], &lan.hosts[2]);
    let ifindex = rx.ifindex("eth0").expect("ifindex");
    let tx_mac = tx.mac("eth0").expect("mac");
    let src = IpAddr::from(Ipv4Addr::new(192, 0, 2, 3));
    let cfg = config(ifindex, Family::V4);
    rx.run_async(|| async {
        let mut dp = DataPlane::open(&cfg, XdpMode::Off).expect("open");
        let mut events = dp.events().expect("events");
        tx.send_frame("eth0", &advert_frame(tx_mac, src, 255, 100))
            .expect("send");
        let ev = recv(&mut events).await;
        assert_eq!((ev.src, ev.src_mac, ev.priority), (src, tx_mac, 100));
    });
}

/// Unicast peers: a source not on the allow-list is dropped as `peer`;
/// after a reload that lists it, its adverts are accepted.
fn unicast_peers(mode: XdpMode) {
    let t = Topo::new();
    let ifindex = t.a.ifindex("vr0").expect("ifindex");
    let p_mac = t.p.mac("vp0").expect("mac");
    let src = IpAddr::from(Ipv4Addr::new(192, 0, 2, 2));
    let mut cfg = config(ifindex, Family::V4);
    cfg.vrids[0].unicast_peers = vec!["192.0.2.3".parse().unwrap()];
    t.a.run_async(|| async {
        let mut dp = DataPlane::open(&cfg, mode).expect("open");
        let mut events = dp.events().expect("events");
        let allowed = IpAddr::from(Ipv4Addr::new(192, 0, 2, 3));
        t.p.send_frame("vp0", &advert_frame(p_mac, src, 255, 100))
            .expect("send");
        // An allowed peer's advert, sent after it, orders the check: once
        // its event is here the first frame has been handled too.
        t.p.send_frame("vp0", &advert_frame(p_mac, allowed, 255, 100))
            .expect("send");
        let ev = recv(&mut events).await;
        assert_eq!(ev.src, allowed, "the first advert must have been dropped");
        let c = dp.counters().expect("counters");
        assert_eq!(c.dropped(DropReason::Peer), 1, "{c:?}");
        let mut reload = cfg.clone();
        reload.vrids[0].unicast_peers.push(src);
        dp.apply(&reload).expect("reload");
        t.p.send_frame("vp0", &advert_frame(p_mac, src, 255, 100))
            .expect("send");
        let ev = recv(&mut events).await;
        assert_eq!((ev.src, ev.priority), (src, 100));
        assert_eq!(
            dp.counters().expect("counters").dropped(DropReason::Peer),
            1
        );
    });
}

#[test]
fn xdp_unicast_peers() {
    if needs_xdp() {
        return;
    }
    unicast_peers(XdpMode::Driver);
}

#[test]
fn socket_unicast_peers() {
    if needs_root() {
        return;
    }
    unicast_peers(XdpMode::Off);
}
