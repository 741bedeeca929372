//! What the agent tells the data plane: configured VRIDs, unicast peers and
//! virtual IPs. The same input drives the XDP maps and the socket path.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use vrrp_common::{
    FAMILY_V4, FAMILY_V6, MAX_PEERS, MAX_VIPS, MAX_VRIDS, PeerKey, V2_AUTH_DATA_LEN, V2_AUTH_NONE,
    V2_AUTH_PASS, VRID_F_DELIVER_ALL, VRID_F_PEER_FILTER, VridConfig, VridKey, v2_auth_words,
};

use super::DataPlaneError;

pub use crate::proto::Family;

/// The family tag of the kernel ABI (`vrrp_common` keys, events and
/// records) for the protocol's [`Family`]: the conversion lives here, on
/// the data plane's side, so the protocol core knows nothing of the ABI.
pub trait FamilyTag: Sized {
    /// The `vrrp_common` tag.
    fn tag(self) -> u8;
    /// The family of a `vrrp_common` tag, if valid.
    fn from_tag(tag: u8) -> Option<Self>;
}

impl FamilyTag for Family {
    fn tag(self) -> u8 {
        match self {
            Family::V4 => FAMILY_V4,
            Family::V6 => FAMILY_V6,
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            FAMILY_V4 => Some(Family::V4),
            FAMILY_V6 => Some(Family::V6),
            _ => None,
        }
    }
}

/// The map key of VRID `vrid` of `family` on interface `ifindex`.
pub fn vrid_key(ifindex: u32, vrid: u8, family: Family) -> VridKey {
    VridKey::new(ifindex, vrid, family.tag())
}

/// One configured VRRP instance as the data plane sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VridEntry {
    /// Interface the instance runs on.
    pub ifindex: u32,
    /// Virtual router id, 1..=255.
    pub vrid: u8,
    /// Address family of the instance.
    pub family: Family,
    /// VRRP version, 2 or 3; adverts of the other version are dropped.
    pub version: u8,
    /// v2 only: Adver Int in seconds; differing v2 adverts are dropped
    /// (RFC 3768 §7.1). Ignored for v3.
    pub v2_adver_int: u16,
    /// Current effective priority (informational for the kernel).
    pub local_priority: u8,
    /// Deliver every valid advert as an event (MASTER, or right after a
    /// state change), not only the ones that change something. Runtime
    /// changes go through `set_deliver_all`; a later `apply` (reload) writes
    /// this value again, so pass the current one.
    pub deliver_all: bool,
    /// Unicast peers; when non-empty only these sources are accepted.
    pub unicast_peers: Vec<IpAddr>,
    /// v2 only: the simple text password (Auth Type 1, RFC 2338 §5.3.6)
    /// adverts must carry, zero-padded to 8 bytes; `None`: Auth Type 0.
    pub v2_auth_pass: Option<[u8; V2_AUTH_DATA_LEN]>,
}

impl VridEntry {
    /// The map key of this instance.
    pub fn key(&self) -> VridKey {
        vrid_key(self.ifindex, self.vrid, self.family)
    }

    /// The kernel's view of this instance.
    pub fn vrid_config(&self) -> VridConfig {
        let mut flags = 0;
        if self.deliver_all {
            flags |= VRID_F_DELIVER_ALL;
        }
        if !self.unicast_peers.is_empty() {
            flags |= VRID_F_PEER_FILTER;
        }
        VridConfig {
            version: self.version,
            flags,
            local_priority: self.local_priority,
            v2_adver_int: if self.version == 2 {
                self.v2_adver_int
            } else {
                0
            },
            v2_auth_type: match self.v2_auth_pass {
                Some(_) if self.version == 2 => V2_AUTH_PASS,
                _ => V2_AUTH_NONE,
            },
            v2_auth_data: match self.v2_auth_pass {
                Some(p) if self.version == 2 => v2_auth_words(&p),
                _ => [0; 2],
            },
            ..VridConfig::default()
        }
    }
}

/// Everything the data plane is told by the agent. Applying a new one
/// replaces the previous one (reload).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataPlaneConfig {
    /// The configured instances, at most one per (interface, VRID, family).
    pub vrids: Vec<VridEntry>,
    /// Virtual IPs whose traffic is counted (both families).
    pub vips: Vec<IpAddr>,
}

/// A validated [`DataPlaneConfig`] in the shape of the kernel maps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Desired {
    pub vrids: BTreeMap<(u32, u8, u8), VridConfig>,
    pub peers: BTreeSet<(u32, u8, [u8; 16])>,
    pub vips: BTreeSet<IpAddr>,
    pub ifindexes: BTreeSet<u32>,
}

/// 16-byte address field of the shared types (IPv4 in the first 4 bytes).
pub(crate) fn addr_bytes(addr: &IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match addr {
        IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => out = a.octets(),
    }
    out
}

/// Inverse of [`addr_bytes`] for a family tag.
pub(crate) fn addr_from_bytes(family: u8, b: &[u8; 16]) -> Option<IpAddr> {
    match family {
        FAMILY_V4 => Some(IpAddr::from([b[0], b[1], b[2], b[3]])),
        FAMILY_V6 => Some(IpAddr::from(*b)),
        _ => None,
    }
}

pub(crate) fn key_tuple(k: &VridKey) -> (u32, u8, u8) {
    (k.ifindex, k.vrid, k.family)
}

pub(crate) fn key_from_tuple(t: (u32, u8, u8)) -> VridKey {
    VridKey::new(t.0, t.1, t.2)
}

pub(crate) fn peer_key(t: &(u32, u8, [u8; 16])) -> PeerKey {
    PeerKey {
        ifindex: t.0,
        family: t.1,
        _pad: [0; 3],
        addr: t.2,
    }
}

impl DataPlaneConfig {
    /// Checks the limits of the shared maps and the per-entry rules, and
    /// flattens the configuration into map-shaped sets.
    pub(crate) fn desired(&self) -> Result<Desired, DataPlaneError> {
        let bad = |what: String| Err(DataPlaneError::Config(what));
        let mut d = Desired::default();
        for e in &self.vrids {
            if e.vrid == 0 {
                return bad(format!(
                    "ifindex {}: VRID 0 is not valid (1..=255)",
                    e.ifindex
                ));
            }
            if e.ifindex == 0 {
                return bad(format!("VRID {}: interface index 0", e.vrid));
            }
            match (e.version, e.family) {
                (3, _) | (2, Family::V4) => {}
                (2, Family::V6) => {
                    return bad(format!("VRID {}: VRRPv2 has no IPv6 (RFC 3768)", e.vrid));
                }
                (v, _) => return bad(format!("VRID {}: version {v} is not 2 or 3", e.vrid)),
            }
            if d.vrids
                .insert(key_tuple(&e.key()), e.vrid_config())
                .is_some()
            {
                return bad(format!(
                    "ifindex {} VRID {} {:?} configured twice",
                    e.ifindex, e.vrid, e.family
                ));
            }
            for p in &e.unicast_peers {
                if Family::of(*p) != e.family {
                    return bad(format!("VRID {}: peer {p} is not {:?}", e.vrid, e.family));
                }
                d.peers.insert((e.ifindex, e.family.tag(), addr_bytes(p)));
            }
            d.ifindexes.insert(e.ifindex);
        }
        d.vips = self.vips.iter().copied().collect();
        if d.vrids.len() > MAX_VRIDS as usize {
            return bad(format!(
                "{} VRIDs configured, at most {MAX_VRIDS}",
                d.vrids.len()
            ));
        }
        if d.peers.len() > MAX_PEERS as usize {
            return bad(format!(
                "{} unicast peers, at most {MAX_PEERS}",
                d.peers.len()
            ));
        }
        if d.vips.len() > MAX_VIPS as usize {
            return bad(format!("{} virtual IPs, at most {MAX_VIPS}", d.vips.len()));
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(vrid: u8, version: u8, family: Family) -> VridEntry {
        VridEntry {
            ifindex: 3,
            vrid,
            family,
            version,
            v2_adver_int: 1,
            local_priority: 100,
            deliver_all: false,
            unicast_peers: vec![],
            v2_auth_pass: None,
        }
    }

    #[test]
    fn flags_follow_entry() {
        let mut e = entry(51, 3, Family::V4);
        assert_eq!(e.vrid_config().flags, 0);
        assert_eq!(
            e.vrid_config().v2_adver_int,
            0,
            "v3 never carries a v2 interval"
        );
        e.deliver_all = true;
        e.unicast_peers = vec!["192.0.2.2".parse().unwrap()];
        assert_eq!(
            e.vrid_config().flags,
            VRID_F_DELIVER_ALL | VRID_F_PEER_FILTER
        );
    }

    #[test]
    fn v2_password_reaches_the_kernel_view_only_for_v2() {
        let mut e = entry(51, 2, Family::V4);
        e.v2_auth_pass = Some(*b"secret\0\0");
        let c = e.vrid_config();
        assert_eq!(c.v2_auth_type, V2_AUTH_PASS);
        assert_eq!(c.v2_auth_data, v2_auth_words(b"secret\0\0"));
        e.version = 3;
        let c = e.vrid_config();
        assert_eq!((c.v2_auth_type, c.v2_auth_data), (V2_AUTH_NONE, [0; 2]));
    }

    #[test]
    fn rejects_bad_entries() {
        let cfg = |e: VridEntry| {
            DataPlaneConfig {
                vrids: vec![e],
                vips: vec![],
            }
            .desired()
        };
        assert!(cfg(entry(0, 3, Family::V4)).is_err());
        assert!(cfg(entry(1, 2, Family::V6)).is_err());
        assert!(cfg(entry(1, 4, Family::V4)).is_err());
        let mut e = entry(1, 3, Family::V6);
        e.unicast_peers = vec!["192.0.2.2".parse().unwrap()];
        assert!(cfg(e).is_err());
        let dup = DataPlaneConfig {
            vrids: vec![entry(1, 3, Family::V4), entry(1, 3, Family::V4)],
            vips: vec![],
        };
        assert!(dup.desired().is_err());
        // Same VRID in both families is two instances (RFC 5798 §5.2.3).
        let both = DataPlaneConfig {
            vrids: vec![entry(1, 3, Family::V4), entry(1, 3, Family::V6)],
            vips: vec![],
        };
        assert_eq!(both.desired().unwrap().vrids.len(), 2);
    }

    #[test]
    fn address_bytes_round_trip() {
        for a in ["192.0.2.7", "2001:db8::7"] {
            let ip: IpAddr = a.parse().unwrap();
            let tag = Family::of(ip).tag();
            assert_eq!(addr_from_bytes(tag, &addr_bytes(&ip)), Some(ip));
        }
    }
}
