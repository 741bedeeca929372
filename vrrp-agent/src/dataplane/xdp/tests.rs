use super::{
    load::retry_on_eagain,
    write::{assign_vrid_slots, vip_index, vip_table, vrid_table},
    *,
};
use std::collections::BTreeMap;
use vrrp_common::{FAMILY_V4, FAMILY_V6, VIP_F_COLLISION, VridConfig};

/// An interrupted verification (EAGAIN) is tried again; any other
/// error, or EAGAIN on the last attempt, is returned.
#[test]
fn program_load_is_retried_on_eagain_only() {
    let err = std::io::Error::from_raw_os_error;
    let errno = |e: &std::io::Error| e.raw_os_error();
    let mut calls = 0;
    let r = retry_on_eagain(5, errno, || {
        calls += 1;
        if calls < 3 {
            Err(err(libc::EAGAIN))
        } else {
            Ok(())
        }
    });
    assert!(r.is_ok());
    assert_eq!(calls, 3);
    let mut calls = 0;
    let r = retry_on_eagain(5, errno, || {
        calls += 1;
        Err(err(libc::EINVAL))
    });
    assert!(r.is_err());
    assert_eq!(calls, 1, "other errors are final");
    let mut calls = 0;
    let r = retry_on_eagain(2, errno, || {
        calls += 1;
        Err(err(libc::EAGAIN))
    });
    assert!(r.is_err());
    assert_eq!(calls, 2, "bounded");
}

#[test]
fn vrid_table_holds_the_lowest_interface_per_vrid_and_family() {
    let cfg = |slot| VridConfig {
        version: 3,
        slot,
        ..Default::default()
    };
    let vrids: BTreeMap<(u32, u8, u8), VridConfig> = [
        ((3, 9, FAMILY_V4), cfg(0)),
        ((2, 9, FAMILY_V4), cfg(1)),
        ((3, 9, FAMILY_V6), cfg(2)),
        ((2, 10, FAMILY_V4), cfg(3)),
    ]
    .into_iter()
    .collect();
    let t = vrid_table(&vrids);
    let at = |vrid, family| t[&vrrp_common::vrid_table_index(vrid, family)];
    assert_eq!(t.len(), 3);
    assert_eq!(
        (at(9, FAMILY_V4).ifindex, at(9, FAMILY_V4).cfg),
        (2, cfg(1))
    );
    assert_eq!(
        (at(9, FAMILY_V6).ifindex, at(9, FAMILY_V6).cfg),
        (3, cfg(2))
    );
    assert_eq!(
        (at(10, FAMILY_V4).ifindex, at(10, FAMILY_V4).cfg),
        (2, cfg(3))
    );
}

#[test]
fn vrid_slots_are_kept_and_not_reused_at_once() {
    let cfg = |slot| VridConfig {
        version: 3,
        slot,
        ..VridConfig::default()
    };
    let mut a: BTreeMap<(u32, u8, u8), VridConfig> =
        [((1, 1, 4), cfg(0)), ((1, 2, 4), cfg(0))].into();
    assert_eq!(assign_vrid_slots(&BTreeMap::new(), &mut a).unwrap(), [0, 1]);
    assert_eq!((a[&(1, 1, 4)].slot, a[&(1, 2, 4)].slot), (0, 1));
    // VRID 1 removed, VRID 3 added: 3 does not get 1's slot yet.
    let mut b: BTreeMap<(u32, u8, u8), VridConfig> =
        [((1, 2, 4), cfg(0)), ((1, 3, 4), cfg(0))].into();
    assert_eq!(assign_vrid_slots(&a, &mut b).unwrap(), [2]);
    assert_eq!((b[&(1, 2, 4)].slot, b[&(1, 3, 4)].slot), (1, 2));
    // Full: every slot taken.
    let mut full: BTreeMap<(u32, u8, u8), VridConfig> = (0..=vrrp_common::MAX_VRIDS)
        .map(|i| ((i, 1, 4), cfg(0)))
        .collect();
    assert!(assign_vrid_slots(&BTreeMap::new(), &mut full).is_err());
}

#[test]
fn vip_table_holds_lone_vips_and_marks_collisions() {
    let a: IpAddr = "192.0.2.10".parse().unwrap();
    let b: IpAddr = "2001:db8::10".parse().unwrap();
    // A VIP sharing a's index: search the documentation range.
    let c: IpAddr = (0..=255u8)
        .flat_map(|x| (0..=255u8).map(move |y| IpAddr::from([198, 51, x, y])))
        .chain((0..=255u8).flat_map(|x| (0..=255u8).map(move |y| IpAddr::from([203, 0, x, y]))))
        .find(|v| vip_index(v) == vip_index(&a))
        .expect("a colliding address in 131072 candidates");
    let slots: BTreeMap<IpAddr, u32> = [(a, 0), (b, 1)].into();
    let t = vip_table(slots.iter());
    assert_eq!(t.len(), 2);
    let ea = t[&vip_index(&a)];
    assert_eq!((ea.family, ea.slot, ea.flags), (FAMILY_V4, 0, 0));
    assert_eq!(&ea.addr[..4], &[192, 0, 2, 10]);
    assert_eq!(&ea.addr[4..], &[0; 12]);
    let eb = t[&vip_index(&b)];
    assert_eq!(
        (eb.family, eb.slot, eb.addr),
        (
            FAMILY_V6,
            1,
            match b {
                IpAddr::V6(x) => x.octets(),
                IpAddr::V4(_) => unreachable!(),
            }
        )
    );

    let slots: BTreeMap<IpAddr, u32> = [(a, 0), (b, 1), (c, 2)].into();
    let t = vip_table(slots.iter());
    assert_eq!(t.len(), 2);
    assert_eq!(t[&vip_index(&a)].flags, VIP_F_COLLISION);
}
