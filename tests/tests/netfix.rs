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

use std::{
    os::fd::{AsRawFd, OwnedFd},
    time::{Duration, Instant},
};

use nix::sys::{
    signal::Signal,
    socket::{self, AddressFamily, SockFlag, SockProtocol, SockType, sockopt},
};
use tests::{
    cluster::Lab,
    netns::{Netns, privileged},
};

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
    a.wait_state("VI_4", "MASTER", SETTLE).unwrap();
    a.wait_state("VI_6", "MASTER", SETTLE).unwrap();
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
