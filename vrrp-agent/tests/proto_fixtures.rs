//! Golden adverts captured from keepalived 2.2.7 (see
//! `tests/fixtures/README.md`): we parse what keepalived sends, and what we
//! emit with the same parameters is byte-identical.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::net::IpAddr;
use std::time::Duration;

use vrrp_agent::proto::{Advert, ChecksumForm, RxMeta, V3Checksum, Version, split_frame};

fn frame(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|e| panic!("{path}: {b}: {e}")))
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

struct Expect {
    version: Version,
    vrid: u8,
    priority: u8,
    interval: Duration,
    addrs: Vec<IpAddr>,
    src: IpAddr,
    dst: IpAddr,
    form: ChecksumForm,
}

/// Parses the fixture, checks every field, re-emits and compares bytes.
fn check(name: &str, e: Expect) {
    let frame = frame(name);
    let (meta, msg) = split_frame(&frame).unwrap();
    assert_eq!(
        meta,
        RxMeta {
            src: e.src,
            dst: e.dst,
            ttl: 255
        },
        "{name}"
    );
    let (advert, form) = Advert::parse(&meta, msg).unwrap();
    let expected = Advert {
        version: e.version,
        vrid: e.vrid,
        priority: e.priority,
        interval: e.interval,
        addrs: e.addrs,
    };
    assert_eq!(advert, expected, "{name}");
    assert_eq!(form, e.form, "{name}");
    let emitted = expected.emit(e.src, e.dst, V3Checksum::Rfc5798).unwrap();
    assert_eq!(emitted, msg, "{name}: emit differs from keepalived");
}

/// RFC 3768 §5: VRRPv2, seconds interval, zero auth data, message-only
/// checksum.
#[test]
fn keepalived_v2_ipv4() {
    for (name, priority) in [("v2_ipv4", 150), ("v2_ipv4_prio0", 0)] {
        check(
            name,
            Expect {
                version: Version::V2,
                vrid: 51,
                priority,
                interval: Duration::from_secs(1),
                addrs: vec![ip("192.0.2.10"), ip("192.0.2.11")],
                src: ip("192.0.2.1"),
                dst: ip("224.0.0.18"),
                form: ChecksumForm::MessageOnly,
            },
        );
    }
}

/// RFC 5798 §5.2.8: keepalived's v3 IPv4 checksum covers the IPv4
/// pseudo-header; 0.5 s is 50 centiseconds.
#[test]
fn keepalived_v3_ipv4() {
    for (name, priority) in [("v3_ipv4", 200), ("v3_ipv4_prio0", 0)] {
        check(
            name,
            Expect {
                version: Version::V3,
                vrid: 52,
                priority,
                interval: Duration::from_millis(500),
                addrs: vec![ip("192.0.2.20")],
                src: ip("192.0.2.1"),
                dst: ip("224.0.0.18"),
                form: ChecksumForm::PseudoHeader,
            },
        );
    }
}

/// RFC 9568 §5.2.8: v3 IPv6 with the RFC 8200 pseudo-header, first address
/// link-local.
#[test]
fn keepalived_v3_ipv6() {
    for (name, priority) in [("v3_ipv6", 100), ("v3_ipv6_prio0", 0)] {
        check(
            name,
            Expect {
                version: Version::V3,
                vrid: 53,
                priority,
                interval: Duration::from_secs(1),
                addrs: vec![ip("fe80::53"), ip("2001:db8::53")],
                src: ip("fe80::ff:fe00:1"),
                dst: ip("ff02::12"),
                form: ChecksumForm::PseudoHeader,
            },
        );
    }
}

/// RFC 9568 §5.2.8: the message-only form of the same v3 IPv4 advert is
/// accepted too and reported as such.
#[test]
fn keepalived_v3_ipv4_in_rfc9568_form_is_accepted() {
    let frame = frame("v3_ipv4");
    let (meta, msg) = split_frame(&frame).unwrap();
    let (advert, _) = Advert::parse(&meta, msg).unwrap();
    let rfc9568 = advert
        .emit(meta.src, meta.dst, V3Checksum::Rfc9568)
        .unwrap();
    assert_ne!(rfc9568, msg);
    let (again, form) = Advert::parse(&meta, &rfc9568).unwrap();
    assert_eq!(again, advert);
    assert_eq!(form, ChecksumForm::MessageOnly);
}
