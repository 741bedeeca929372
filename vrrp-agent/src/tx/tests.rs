use std::time::Duration;

use super::*;
use crate::proto::{Advert, V3Checksum, auth, packet::VRRP_GROUP_V4};

fn advert(priority: u8) -> Advert {
    Advert {
        version: crate::proto::Version::V3,
        vrid: 7,
        priority,
        interval: Duration::from_millis(100),
        addrs: vec!["192.0.2.10".parse().unwrap()],
    }
}

/// The cache gives exactly what `emit` builds, for every change of
/// its inputs: a stale advert on the wire would carry an old priority
/// or VIP list.
#[test]
fn cached_advert_is_rebuilt_when_any_input_changes() {
    let src: IpAddr = "192.0.2.1".parse().unwrap();
    let other_src: IpAddr = "192.0.2.2".parse().unwrap();
    let group: IpAddr = VRRP_GROUP_V4.into();
    let peer: IpAddr = "192.0.2.3".parse().unwrap();
    let mut more_vips = advert(100);
    more_vips.addrs.push("192.0.2.11".parse().unwrap());
    let mut cache = AdvertCache::default();
    let cases = [
        (advert(100), src, group, V3Checksum::default()),
        (advert(100), src, group, V3Checksum::default()),
        (advert(0), src, group, V3Checksum::default()),
        (advert(100), src, group, V3Checksum::default()),
        (advert(100), src, peer, V3Checksum::default()),
        (more_vips, src, group, V3Checksum::default()),
        (advert(100), other_src, group, V3Checksum::default()),
        (advert(100), src, group, V3Checksum::Rfc9568),
    ];
    for (a, s, d, c) in cases {
        let want = a.emit(s, d, c).unwrap();
        assert_eq!(
            cache.get(&a, s, d, c, None).unwrap(),
            want.as_slice(),
            "{a:?} {s} {d} {c:?}"
        );
    }
    // A password (VRRPv2) is part of the key too: set, changed, removed.
    let mut v2 = advert(100);
    v2.version = crate::proto::Version::V2;
    v2.interval = std::time::Duration::from_secs(1);
    let c = V3Checksum::default();
    for pass in [None, Some(*b"secret\0\0"), Some(*b"other\0\0\0"), None] {
        let mut want = v2.emit(src, group, c).unwrap();
        if let Some(p) = &pass {
            assert!(auth::set_password(&mut want, p));
        }
        assert_eq!(
            cache.get(&v2, src, group, c, pass.as_ref()).unwrap(),
            want.as_slice(),
            "{pass:?}"
        );
    }
}

/// The DSCP goes in the upper six bits; the ECN bits stay clear.
#[test]
fn dscp_maps_to_the_tos_byte() {
    assert_eq!(dscp_to_tos(DEFAULT_ADVERT_DSCP), 0xc0, "CS6");
    assert_eq!(dscp_to_tos(46), 0xb8, "EF");
    assert_eq!(dscp_to_tos(0), 0);
    assert_eq!(dscp_to_tos(63), 0xfc);
}
