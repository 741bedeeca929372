//! Advert codec: one test per RFC 9568 §7.1 receive check, the wire rules
//! of RFC 3768 §5 / RFC 9568 §5, frame splitting, and round-trip properties.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use proptest::prelude::*;
use vrrp_agent::proto::packet::{v2_interval_secs, v3_interval_centis};
use vrrp_agent::proto::{
    Advert, ChecksumForm, EmitError, Packet, RxError, RxMeta, V3Checksum, Version, checksum,
    split_frame,
};
use vrrp_common::DropReason;

const SRC4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const GROUP4: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
const SRC6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
const GROUP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));

fn meta4() -> RxMeta {
    RxMeta {
        src: SRC4,
        dst: GROUP4,
        ttl: 255,
    }
}

fn meta6() -> RxMeta {
    RxMeta {
        src: SRC6,
        dst: GROUP6,
        ttl: 255,
    }
}

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse().unwrap())
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().unwrap())
}

fn advert(version: Version) -> Advert {
    Advert {
        version,
        vrid: 51,
        priority: 100,
        interval: Duration::from_secs(1),
        addrs: vec![v4("192.0.2.10")],
    }
}

fn advert6() -> Advert {
    Advert {
        version: Version::V3,
        vrid: 51,
        priority: 100,
        interval: Duration::from_millis(10),
        addrs: vec![v6("fe80::10"), v6("2001:db8::10")],
    }
}

fn emit4(a: &Advert) -> Vec<u8> {
    a.emit(SRC4, GROUP4, V3Checksum::Rfc5798).unwrap()
}

/// Rewrites the checksum after a test edited the message.
fn refill(msg: &mut [u8], pseudo: Option<(IpAddr, IpAddr)>) {
    Packet::new_unchecked(msg).fill_checksum(pseudo);
}

/// RFC 9568 §7.1 item 1: TTL/Hop Limit must be 255.
#[test]
fn rx_ttl_not_255_is_dropped() {
    let msg = emit4(&advert(Version::V3));
    let meta = RxMeta {
        ttl: 254,
        ..meta4()
    };
    assert_eq!(Advert::parse(&meta, &msg), Err(RxError::Ttl));
    assert!(Advert::parse(&meta4(), &msg).is_ok());
}

/// RFC 9568 §7.1 item 2: the version must be 2 or 3.
#[test]
fn rx_unknown_version_is_dropped() {
    let mut msg = emit4(&advert(Version::V3));
    msg[0] = 0x41;
    refill(&mut msg, Some((SRC4, GROUP4)));
    assert_eq!(Advert::parse(&meta4(), &msg), Err(RxError::Version));
}

/// RFC 9568 §7.1 item 3 / §5.2.2: only type 1 (ADVERTISEMENT).
#[test]
fn rx_unknown_type_is_dropped() {
    let mut msg = emit4(&advert(Version::V3));
    msg[0] = 0x32;
    refill(&mut msg, Some((SRC4, GROUP4)));
    assert_eq!(Advert::parse(&meta4(), &msg), Err(RxError::Type));
}

/// RFC 9568 §7.1 item 4: the message holds exactly the fixed header and
/// `count` addresses (+ 8 bytes of auth data in v2). Short, long and
/// header-less messages are all dropped.
#[test]
fn rx_length_must_match_count() {
    for version in [Version::V2, Version::V3] {
        let msg = emit4(&advert(version));
        assert_eq!(
            Advert::parse(&meta4(), &msg[..msg.len() - 1]),
            Err(RxError::Length)
        );
        let mut long = msg.clone();
        long.extend_from_slice(&[0, 0, 0, 0]);
        refill(
            &mut long,
            (version == Version::V3).then_some((SRC4, GROUP4)),
        );
        assert_eq!(
            Advert::parse(&meta4(), &long),
            Err(RxError::Length),
            "{version:?}"
        );
        assert_eq!(Advert::parse(&meta4(), &msg[..7]), Err(RxError::Length));
        assert_eq!(Advert::parse(&meta4(), &[]), Err(RxError::Length));
    }
    // v2 without its authentication data.
    let msg = emit4(&advert(Version::V2));
    assert_eq!(msg.len(), 8 + 4 + 8);
}

/// RFC 9568 §7.1 item 5: a corrupted message fails the checksum.
#[test]
fn rx_bad_checksum_is_dropped() {
    for version in [Version::V2, Version::V3] {
        let mut msg = emit4(&advert(version));
        msg[2] ^= 1;
        assert_eq!(
            Advert::parse(&meta4(), &msg),
            Err(RxError::Checksum),
            "{version:?}"
        );
    }
    let mut msg = advert6().emit(SRC6, GROUP6, V3Checksum::Rfc9568).unwrap();
    msg[9] ^= 0x80;
    assert_eq!(Advert::parse(&meta6(), &msg), Err(RxError::Checksum));
}

/// RFC 3768 §5.3.8: the v2 checksum covers the message only; a v2 advert
/// checksummed with a pseudo-header is invalid.
#[test]
fn rx_v2_checksum_is_message_only() {
    let mut msg = emit4(&advert(Version::V2));
    assert_eq!(
        Advert::parse(&meta4(), &msg).unwrap().1,
        ChecksumForm::MessageOnly
    );
    refill(&mut msg, Some((SRC4, GROUP4)));
    assert_eq!(Advert::parse(&meta4(), &msg), Err(RxError::Checksum));
}

/// RFC 5798 §5.2.8 vs RFC 9568 §5.2.8: v3 IPv4 is accepted in both forms
/// and the form that verified is reported; TX follows `V3Checksum`.
#[test]
fn rx_v3_ipv4_accepts_both_checksum_forms() {
    let a = advert(Version::V3);
    let with_ph = a.emit(SRC4, GROUP4, V3Checksum::Rfc5798).unwrap();
    let msg_only = a.emit(SRC4, GROUP4, V3Checksum::Rfc9568).unwrap();
    assert_ne!(with_ph, msg_only);
    assert_eq!(checksum::finish(checksum::sum(&msg_only)), 0);
    assert_eq!(
        Advert::parse(&meta4(), &with_ph).unwrap(),
        (a.clone(), ChecksumForm::PseudoHeader)
    );
    assert_eq!(
        Advert::parse(&meta4(), &msg_only).unwrap(),
        (a, ChecksumForm::MessageOnly)
    );
}

/// RFC 9568 §5.2.8: v3 IPv6 always includes the pseudo-header; a
/// message-only checksum is not accepted and `V3Checksum` does not apply.
#[test]
fn rx_v3_ipv6_requires_pseudo_header() {
    let a = advert6();
    let msg = a.emit(SRC6, GROUP6, V3Checksum::Rfc9568).unwrap();
    assert_eq!(msg, a.emit(SRC6, GROUP6, V3Checksum::Rfc5798).unwrap());
    assert_eq!(
        Advert::parse(&meta6(), &msg).unwrap(),
        (a, ChecksumForm::PseudoHeader)
    );
    let mut msg_only = msg.clone();
    refill(&mut msg_only, None);
    assert_eq!(Advert::parse(&meta6(), &msg_only), Err(RxError::Checksum));
}

/// RFC 9568 §7.1 item 8 + erratum 8301: Max Adver Int 0 is invalid; v2
/// Adver Int 0 likewise.
#[test]
fn rx_zero_interval_is_dropped() {
    let mut msg = emit4(&advert(Version::V3));
    msg[4] = 0;
    msg[5] = 0;
    refill(&mut msg, Some((SRC4, GROUP4)));
    assert_eq!(Advert::parse(&meta4(), &msg), Err(RxError::Interval));
    let mut msg = emit4(&advert(Version::V2));
    msg[5] = 0;
    refill(&mut msg, None);
    assert_eq!(Advert::parse(&meta4(), &msg), Err(RxError::Interval));
}

/// RFC 9568 §7.1 item 8 + erratum 8299: count 0 is invalid.
#[test]
fn rx_zero_count_is_dropped() {
    let mut msg = emit4(&advert(Version::V3));
    msg[3] = 0;
    msg.truncate(8);
    refill(&mut msg, Some((SRC4, GROUP4)));
    assert_eq!(Advert::parse(&meta4(), &msg), Err(RxError::Count));
}

/// RFC 9568 §5.1.1/§5.1.2: addresses have the IP header's family; v2 is
/// IPv4 only (RFC 3768 §5).
#[test]
fn rx_family_mismatch_is_dropped() {
    let msg = emit4(&advert(Version::V3));
    let mixed = RxMeta {
        src: SRC4,
        dst: GROUP6,
        ttl: 255,
    };
    assert_eq!(Advert::parse(&mixed, &msg), Err(RxError::Family));
    let mut v2_over_v6 = advert6().emit(SRC6, GROUP6, V3Checksum::Rfc5798).unwrap();
    v2_over_v6[0] = 0x21;
    assert_eq!(Advert::parse(&meta6(), &v2_over_v6), Err(RxError::Family));
}

/// RFC 9568 §7.1 item 8 + erratum 8300 want the first IPv6 address
/// link-local; keepalived runs configs without one (it only warns), so we
/// accept them on receive (the data plane counts them) and only ever send
/// the compliant form.
#[test]
fn rx_ipv6_first_address_not_link_local_is_tolerated() {
    let mut msg = advert6().emit(SRC6, GROUP6, V3Checksum::Rfc5798).unwrap();
    let (ok, _) = Advert::parse(&meta6(), &msg).unwrap();
    assert!(ok.first_is_link_local());
    // Swap the two addresses: global first.
    let (a, b) = msg[8..].split_at_mut(16);
    a.swap_with_slice(b);
    refill(&mut msg, Some((SRC6, GROUP6)));
    let (tolerated, _) = Advert::parse(&meta6(), &msg).unwrap();
    assert!(!tolerated.first_is_link_local());
}

/// RFC 3768 §5.3.6 / RFC 9568 §7.1 item 7: v2 Auth Type 0; 1 (RFC 2338
/// simple password, keepalived's `auth_type PASS`) also parses and is
/// checked against the configuration by `proto::auth`; others never pass.
#[test]
fn rx_v2_auth_type_is_zero_or_one() {
    let mut msg = emit4(&advert(Version::V2));
    msg[4] = 1;
    refill(&mut msg, None);
    assert!(Advert::parse(&meta4(), &msg).is_ok());
    msg[4] = 2;
    refill(&mut msg, None);
    assert_eq!(Advert::parse(&meta4(), &msg), Err(RxError::AuthType));
}

/// RFC 3768 §5.3.10: auth data is zero on TX and ignored on RX.
#[test]
fn v2_auth_data_zero_on_tx_ignored_on_rx() {
    let a = advert(Version::V2);
    let mut msg = emit4(&a);
    assert_eq!(&msg[msg.len() - 8..], &[0; 8]);
    let n = msg.len();
    msg[n - 8..].copy_from_slice(b"password");
    refill(&mut msg, None);
    assert_eq!(Advert::parse(&meta4(), &msg).unwrap().0, a);
}

/// RFC 9568 §5.2.5: the 4 reserved bits are 0 on TX and ignored on RX.
#[test]
fn v3_reserved_bits_zero_on_tx_ignored_on_rx() {
    let a = advert(Version::V3);
    let mut msg = emit4(&a);
    assert_eq!(msg[4] >> 4, 0);
    msg[4] |= 0xf0;
    refill(&mut msg, Some((SRC4, GROUP4)));
    let p = Packet::new_checked(&msg[..]).unwrap();
    assert_eq!(p.v3_reserved(), 0xf);
    assert_eq!(Advert::parse(&meta4(), &msg).unwrap().0, a);
}

/// RFC 3768 §5.3.7 (seconds) and RFC 9568 §5.2.7 (12-bit centiseconds):
/// units converted in the codec only, exactly.
#[test]
fn interval_units_on_the_wire() {
    let mut a = advert(Version::V3);
    a.interval = Duration::from_millis(40_950);
    let msg = emit4(&a);
    assert_eq!(u16::from_be_bytes([msg[4], msg[5]]), 4095);
    assert_eq!(
        Advert::parse(&meta4(), &msg).unwrap().0.interval,
        Duration::from_millis(40_950)
    );
    a.interval = Duration::from_millis(10);
    assert_eq!(emit4(&a)[5], 1);
    let mut b = advert(Version::V2);
    b.interval = Duration::from_secs(255);
    assert_eq!(emit4(&b)[5], 255);
    assert_eq!(v3_interval_centis(Duration::from_millis(15)), None);
    assert_eq!(v3_interval_centis(Duration::from_millis(40_960)), None);
    assert_eq!(v3_interval_centis(Duration::ZERO), None);
    assert_eq!(v2_interval_secs(Duration::from_millis(1500)), None);
    assert_eq!(v2_interval_secs(Duration::from_secs(256)), None);
    assert_eq!(v2_interval_secs(Duration::ZERO), None);
}

/// What cannot be put on the wire is refused, not truncated.
#[test]
fn emit_rejects_unrepresentable_adverts() {
    let mut a = advert(Version::V2);
    a.interval = Duration::from_millis(500);
    assert_eq!(
        a.emit(SRC4, GROUP4, V3Checksum::Rfc5798),
        Err(EmitError::Interval)
    );
    let mut a = advert(Version::V3);
    a.addrs.clear();
    assert_eq!(
        a.emit(SRC4, GROUP4, V3Checksum::Rfc5798),
        Err(EmitError::Count)
    );
    a.addrs = vec![v4("192.0.2.10"); 256];
    assert_eq!(
        a.emit(SRC4, GROUP4, V3Checksum::Rfc5798),
        Err(EmitError::Count)
    );
    a.addrs = vec![v4("192.0.2.10"), v6("fe80::1")];
    assert_eq!(
        a.emit(SRC4, GROUP4, V3Checksum::Rfc5798),
        Err(EmitError::Family)
    );
    let mut a = advert6();
    a.version = Version::V2;
    a.interval = Duration::from_secs(1);
    assert_eq!(
        a.emit(SRC6, GROUP6, V3Checksum::Rfc5798),
        Err(EmitError::Family)
    );
    // A global first IPv6 address is sent as configured (`check` warns):
    // the only way to match a keepalived peer that lists only global VIPs.
    let mut a = advert6();
    a.addrs.reverse();
    let msg = a.emit(SRC6, GROUP6, V3Checksum::Rfc5798).unwrap();
    assert_eq!(Advert::parse(&meta6(), &msg).unwrap().0.addrs, a.addrs);
    let mut a = advert(Version::V3);
    a.vrid = 0;
    assert_eq!(
        a.emit(SRC4, GROUP4, V3Checksum::Rfc5798),
        Err(EmitError::Vrid)
    );
}

/// Every RxError is counted under its own DropReason.
#[test]
fn rx_errors_map_one_to_one_to_drop_reasons() {
    let all = [
        RxError::Ttl,
        RxError::Version,
        RxError::Type,
        RxError::Length,
        RxError::Checksum,
        RxError::Interval,
        RxError::Count,
        RxError::Family,
        RxError::LinkLocal,
        RxError::AuthType,
    ];
    let reasons: Vec<DropReason> = all.iter().map(|e| e.reason()).collect();
    for (i, r) in reasons.iter().enumerate() {
        assert!(!reasons[..i].contains(r), "{r:?} used twice");
        assert_eq!(format!("{:?}", all[i]), format!("{r:?}"));
    }
}

// ---- frames ------------------------------------------------------------------

fn ipv4_frame(msg: &[u8], ttl: u8, options: &[u8], vlans: &[u16], pad: usize) -> Vec<u8> {
    let mut f = vec![
        0x01, 0x00, 0x5e, 0x00, 0x00, 0x12, 0x00, 0x00, 0x5e, 0x00, 0x01, 51,
    ];
    for tag in vlans {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&tag.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00]);
    let ihl = 20 + options.len();
    let total = (ihl + msg.len()) as u16;
    let mut ip = vec![0x40 | (ihl / 4) as u8, 0xc0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, ttl, 112, 0, 0, 192, 0, 2, 1, 224, 0, 0, 18]);
    ip.extend_from_slice(options);
    let c = checksum::finish(checksum::sum(&ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(msg);
    f.extend(std::iter::repeat_n(0u8, pad));
    f
}

/// Ethernet padding after the IP packet, IPv4 options and up to two VLAN
/// tags are handled; the message is cut at the IP total length.
#[test]
fn split_frame_ipv4_options_vlans_padding() {
    let msg = emit4(&advert(Version::V3));
    let router_alert = [0x94, 0x04, 0x00, 0x00];
    for vlans in [&[][..], &[100], &[100, 200]] {
        let f = ipv4_frame(&msg, 255, &router_alert, vlans, 18);
        let (meta, m) = split_frame(&f).unwrap();
        assert_eq!(meta, meta4());
        assert_eq!(m, &msg[..]);
        assert!(Advert::parse(&meta, m).is_ok());
    }
    let f = ipv4_frame(&msg, 255, &[], &[1, 2, 3], 0);
    assert_eq!(split_frame(&f), Err(RxError::Type));
}

/// Truncation anywhere in the headers is a Length drop, never a panic.
#[test]
fn split_frame_truncated() {
    let msg = emit4(&advert(Version::V3));
    let f = ipv4_frame(&msg, 255, &[], &[100], 0);
    for n in 0..f.len() {
        assert!(split_frame(&f[..n]).is_err(), "prefix {n}");
    }
}

/// IPv4 fragments, other protocols and a bad IP header checksum are not
/// adverts.
#[test]
fn split_frame_rejects_fragments_and_other_protocols() {
    let msg = emit4(&advert(Version::V3));
    let mut f = ipv4_frame(&msg, 255, &[], &[], 0);
    f[14 + 6] = 0x20; // MF
    assert_eq!(split_frame(&f), Err(RxError::Length));
    let mut f = ipv4_frame(&msg, 255, &[], &[], 0);
    f[14 + 9] = 17;
    assert_eq!(split_frame(&f), Err(RxError::Type));
    let mut f = ipv4_frame(&msg, 255, &[], &[], 0);
    f[14 + 1] ^= 4;
    assert_eq!(split_frame(&f), Err(RxError::Checksum));
}

/// IPv6 frames: hop limit carried into the meta, payload length respected.
#[test]
fn split_frame_ipv6() {
    let msg = advert6().emit(SRC6, GROUP6, V3Checksum::Rfc5798).unwrap();
    let mut f = vec![0x33, 0x33, 0, 0, 0, 0x12, 0, 0, 0x5e, 0, 2, 51, 0x86, 0xdd];
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    f.extend_from_slice(&[112, 254]);
    if let (IpAddr::V6(s), IpAddr::V6(d)) = (SRC6, GROUP6) {
        f.extend_from_slice(&s.octets());
        f.extend_from_slice(&d.octets());
    }
    f.extend_from_slice(&msg);
    f.extend_from_slice(&[0; 6]);
    let (meta, m) = split_frame(&f).unwrap();
    assert_eq!(
        meta,
        RxMeta {
            ttl: 254,
            ..meta6()
        }
    );
    assert_eq!(m, &msg[..]);
    assert_eq!(Advert::parse(&meta, m), Err(RxError::Ttl));
}

// ---- properties ----------------------------------------------------------------

fn arb_advert_and_meta() -> impl Strategy<Value = (Advert, IpAddr, IpAddr, V3Checksum)> {
    let v4 = (
        any::<bool>(),
        1u8..=255,
        any::<u8>(),
        1u16..=255,
        1u16..=4095,
        prop::collection::vec(any::<[u8; 4]>(), 1..=255),
        any::<[u8; 4]>(),
        any::<bool>(),
    )
        .prop_map(|(v2, vrid, priority, secs, centis, addrs, src, rfc9568)| {
            let (version, interval) = if v2 {
                (Version::V2, Duration::from_secs(u64::from(secs)))
            } else {
                (Version::V3, Duration::from_millis(u64::from(centis) * 10))
            };
            let addrs = addrs
                .into_iter()
                .map(|a| IpAddr::V4(Ipv4Addr::from(a)))
                .collect();
            let form = if rfc9568 {
                V3Checksum::Rfc9568
            } else {
                V3Checksum::Rfc5798
            };
            (
                Advert {
                    version,
                    vrid,
                    priority,
                    interval,
                    addrs,
                },
                IpAddr::V4(Ipv4Addr::from(src)),
                GROUP4,
                form,
            )
        });
    let v6 = (
        1u8..=255,
        any::<u8>(),
        1u16..=4095,
        any::<u64>(),
        prop::collection::vec(any::<[u8; 16]>(), 0..=254),
    )
        .prop_map(|(vrid, priority, centis, iid, rest)| {
            let mut first = [0u8; 16];
            first[0] = 0xfe;
            first[1] = 0x80;
            first[8..].copy_from_slice(&iid.to_be_bytes());
            let addrs = std::iter::once(first)
                .chain(rest)
                .map(|a| IpAddr::V6(Ipv6Addr::from(a)))
                .collect();
            let a = Advert {
                version: Version::V3,
                vrid,
                priority,
                interval: Duration::from_millis(u64::from(centis) * 10),
                addrs,
            };
            (a, SRC6, GROUP6, V3Checksum::Rfc5798)
        });
    prop_oneof![v4, v6]
}

proptest! {
    /// emit then parse is the identity, with the expected checksum form.
    #[test]
    fn emit_parse_round_trip((a, src, dst, form) in arb_advert_and_meta()) {
        let msg = a.emit(src, dst, form).unwrap();
        let meta = RxMeta { src, dst, ttl: 255 };
        let (back, got_form) = Advert::parse(&meta, &msg).unwrap();
        prop_assert_eq!(&back, &a);
        let expected = match (a.version, src, form) {
            (Version::V2, ..) => ChecksumForm::MessageOnly,
            (Version::V3, IpAddr::V6(_), _) => ChecksumForm::PseudoHeader,
            (Version::V3, IpAddr::V4(_), V3Checksum::Rfc5798) => ChecksumForm::PseudoHeader,
            (Version::V3, IpAddr::V4(_), V3Checksum::Rfc9568) => ChecksumForm::MessageOnly,
        };
        // A message-only v3 checksum may also verify with the
        // pseudo-header when the pseudo-header sums to zero (1 in 65535).
        if got_form != expected {
            prop_assert!(Packet::new_checked(&msg[..]).unwrap().verify_pseudo_header_checksum(src, dst));
        }
    }

    /// Any single flipped bit is detected (checksum or a field check).
    #[test]
    fn single_bit_flips_never_parse_to_the_same_advert(
        (a, src, dst, form) in arb_advert_and_meta(), bit in any::<prop::sample::Index>()
    ) {
        let mut msg = a.emit(src, dst, form).unwrap();
        let bit = bit.index(msg.len() * 8);
        msg[bit / 8] ^= 1 << (bit % 8);
        let meta = RxMeta { src, dst, ttl: 255 };
        if let Ok((_, got_form)) = Advert::parse(&meta, &msg) {
            // The only way through: a v3 IPv4 message whose flip happens to
            // verify under the *other* checksum form (pseudo-header sum
            // equal to the flip, about 1 in 65535).
            let cross_form = matches!((a.version, src), (Version::V3, IpAddr::V4(_)))
                && (got_form == ChecksumForm::PseudoHeader) == (form == V3Checksum::Rfc9568);
            prop_assert!(cross_form, "flipped bit {} went unnoticed", bit);
        }
    }

    /// Arbitrary bytes never panic the frame splitter or the parser.
    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = split_frame(&bytes);
        let _ = Advert::parse(&meta4(), &bytes);
        let _ = Advert::parse(&meta6(), &bytes);
    }
}
