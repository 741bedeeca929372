//! Writing the configuration into the program's maps: the VRIDs and their
//! direct table, the `LAST_SEEN` slots, the peer allow-list, the VIPs and
//! their direct table.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use aya::maps::{Array, HashMap, PerCpuArray, PerCpuValues};
use vrrp_common::{
    FAMILY_V4, FAMILY_V6, LastSeen, MAX_VIPS, VIP_F_COLLISION, VipEntry, VipStats, VridConfig,
    VridEntry, VridKey, maps, vip_index_v4, vip_index_v6,
};

use crate::dataplane::{
    DataPlaneError,
    config::{DataPlaneConfig, key_from_tuple, key_tuple, peer_key},
};

use super::{XdpDataPlane, ebpf_map_mut, map_err, optional};

pub(super) fn vip_index(vip: &IpAddr) -> u32 {
    match vip {
        IpAddr::V4(a) => vip_index_v4(a.octets()),
        IpAddr::V6(a) => vip_index_v6(a.octets()),
    }
}

/// The non-empty `VIP_TABLE` entries for VIPs and their slots: the VIP
/// itself where it is alone at its index, a collision marker where several
/// share one (the program then asks `VIPS_V4`/`VIPS_V6`).
pub(super) fn vip_table<'a>(
    slots: impl Iterator<Item = (&'a IpAddr, &'a u32)>,
) -> BTreeMap<u32, VipEntry> {
    let mut table: BTreeMap<u32, VipEntry> = BTreeMap::new();
    for (vip, slot) in slots {
        let (addr, family) = match vip {
            IpAddr::V4(a) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&a.octets());
                (b, FAMILY_V4)
            }
            IpAddr::V6(a) => (a.octets(), FAMILY_V6),
        };
        table
            .entry(vip_index(vip))
            .and_modify(|e| {
                *e = VipEntry {
                    flags: VIP_F_COLLISION,
                    ..VipEntry::default()
                }
            })
            .or_insert(VipEntry {
                addr,
                slot: *slot,
                family,
                flags: 0,
                _pad: [0; 2],
            });
    }
    table
}

/// The non-empty `VRID_TABLE` entries for the configured VRIDs: per VRID
/// and family, the one on the lowest interface index (the others are found
/// through `VRIDS`; see [`VridEntry`]).
pub(super) fn vrid_table(vrids: &BTreeMap<(u32, u8, u8), VridConfig>) -> BTreeMap<u32, VridEntry> {
    let mut table = BTreeMap::new();
    for (&(ifindex, vrid, family), cfg) in vrids {
        table
            .entry(vrrp_common::vrid_table_index(vrid, family))
            .or_insert(VridEntry {
                cfg: *cfg,
                ifindex,
                _pad: 0,
            });
    }
    table
}

/// Gives every VRID of `new` its `LAST_SEEN` slot ([`VridConfig::slot`]):
/// the one it has in `old`, else preferably one that was free before this
/// apply (the program may still be finishing a packet of a VRID removed just
/// now, and would write into its old slot). Returns the newly given slots.
pub(super) fn assign_vrid_slots(
    old: &BTreeMap<(u32, u8, u8), VridConfig>,
    new: &mut BTreeMap<(u32, u8, u8), VridConfig>,
) -> Result<Vec<u16>, DataPlaneError> {
    let used: BTreeSet<u16> = old.values().map(|c| c.slot).collect();
    let mut kept = BTreeSet::new();
    for (k, v) in new.iter_mut() {
        if let Some(o) = old.get(k) {
            v.slot = o.slot;
            kept.insert(o.slot);
        }
    }
    let max = u16::try_from(vrrp_common::MAX_VRIDS).unwrap_or(u16::MAX);
    let freed: Vec<u16> = used.difference(&kept).copied().collect();
    let mut free = (0..max).filter(|s| !used.contains(s)).chain(freed);
    let mut fresh = Vec::new();
    for (k, v) in new.iter_mut() {
        if !old.contains_key(k) {
            v.slot = free.next().ok_or_else(|| {
                DataPlaneError::Config(format!("more than {} VRIDs", vrrp_common::MAX_VRIDS))
            })?;
            fresh.push(v.slot);
        }
    }
    Ok(fresh)
}

impl XdpDataPlane {
    /// Makes the maps and attachments match `cfg`: inserts new entries,
    /// removes stale ones, attaches to new interfaces and detaches from
    /// interfaces no longer used. Entries that did not change keep their
    /// kernel state (`LAST_SEEN`, counters).
    pub fn apply(&mut self, cfg: &DataPlaneConfig) -> Result<(), DataPlaneError> {
        self.apply_maps(cfg)?;
        self.attach_all()
    }

    /// The map half of [`XdpDataPlane::apply`]: makes the maps match `cfg`
    /// but attaches to no new interface (one no longer used is detached).
    /// Lets a caller seed `LAST_SEEN` ([`XdpDataPlane::seed_last_seen`])
    /// before the program runs, then [`XdpDataPlane::attach_all`].
    pub fn apply_maps(&mut self, cfg: &DataPlaneConfig) -> Result<(), DataPlaneError> {
        let mut d = cfg.desired()?;
        let fresh = assign_vrid_slots(&self.applied.vrids, &mut d.vrids)?;
        {
            // A new VRID starts with an empty LAST_SEEN entry (FIRST), before
            // its VRIDS entry points the program at it.
            let e = map_err(maps::LAST_SEEN);
            for (k, v) in d.vrids.iter().filter(|(_, v)| fresh.contains(&v.slot)) {
                self.last_seen
                    .set(u32::from(v.slot), LastSeen::owned_by(key_from_tuple(*k)), 0)
                    .map_err(&e)?;
            }
        }
        // Peers before flags, so a VRID that gains a peer filter never sees
        // an empty allow-list; stale peers go last for the same reason.
        {
            let e = map_err(maps::PEERS);
            let mut m: HashMap<_, vrrp_common::PeerKey, u8> =
                HashMap::try_from(ebpf_map_mut(&mut self.ebpf, maps::PEERS)?).map_err(&e)?;
            for p in d.peers.difference(&self.applied.peers) {
                m.insert(peer_key(p), 1, 0).map_err(&e)?;
            }
        }
        {
            let e = map_err(maps::VRIDS);
            let mut m: HashMap<_, VridKey, VridConfig> =
                HashMap::try_from(ebpf_map_mut(&mut self.ebpf, maps::VRIDS)?).map_err(&e)?;
            for (k, v) in &d.vrids {
                if self.applied.vrids.get(k) != Some(v) {
                    m.insert(key_from_tuple(*k), v, 0).map_err(&e)?;
                }
            }
            for k in self
                .applied
                .vrids
                .keys()
                .filter(|k| !d.vrids.contains_key(k))
            {
                optional(m.remove(&key_from_tuple(*k))).map_err(&e)?;
            }
        }
        self.write_vrid_table(vrid_table(&d.vrids))?;
        {
            // Removed VRIDs leave no stale entry behind.
            let e = map_err(maps::LAST_SEEN);
            for (_, c) in self
                .applied
                .vrids
                .iter()
                .filter(|(k, _)| !d.vrids.contains_key(k))
            {
                self.last_seen
                    .set(u32::from(c.slot), LastSeen::default(), 0)
                    .map_err(&e)?;
            }
        }
        {
            let e = map_err(maps::PEERS);
            let mut m: HashMap<_, vrrp_common::PeerKey, u8> =
                HashMap::try_from(ebpf_map_mut(&mut self.ebpf, maps::PEERS)?).map_err(&e)?;
            for p in self.applied.peers.difference(&d.peers) {
                optional(m.remove(&peer_key(p))).map_err(&e)?;
            }
        }
        self.apply_vips(&d.vips)?;
        let old_ifs: BTreeSet<u32> = self.links.keys().copied().collect();
        for ifindex in old_ifs.difference(&d.ifindexes) {
            self.detach(*ifindex);
        }
        self.applied = d;
        Ok(())
    }

    /// Writes `record` as the `LAST_SEEN` entry of a configured VRID (its
    /// owner fields set to `key`): carries over what the socket path saw
    /// when the program takes over, so `rx_total`, the inter-arrival
    /// histogram and the Master_Down catch-up continue. Call before the
    /// program is attached to the VRID's interface (the program writes the
    /// entry too). `false` if the VRID is not configured.
    pub fn seed_last_seen(
        &mut self,
        key: VridKey,
        record: &LastSeen,
    ) -> Result<bool, DataPlaneError> {
        let Some(cfg) = self.applied.vrids.get(&key_tuple(&key)) else {
            return Ok(false);
        };
        let slot = u32::from(cfg.slot);
        let owned = LastSeen::owned_by(key);
        let entry = LastSeen {
            owner_ifindex: owned.owner_ifindex,
            owner_vrid: owned.owner_vrid,
            owner_family: owned.owner_family,
            _pad1: [0; 2],
            ..*record
        };
        self.last_seen
            .set(slot, entry, 0)
            .map_err(map_err(maps::LAST_SEEN))?;
        Ok(true)
    }

    fn apply_vips(&mut self, vips: &BTreeSet<IpAddr>) -> Result<(), DataPlaneError> {
        // Keep the slot of every VIP that stays, so its counters survive a
        // reload; new VIPs take the lowest free slots, zeroed first.
        let mut slots: BTreeMap<IpAddr, u32> = vips
            .iter()
            .filter_map(|v| self.vip_slots.get(v).map(|s| (*v, *s)))
            .collect();
        let used: BTreeSet<u32> = slots.values().copied().collect();
        let mut free = (0..MAX_VIPS).filter(|s| !used.contains(s));
        let mut fresh = Vec::new();
        for vip in vips {
            if !slots.contains_key(vip) {
                let slot = free.next().ok_or_else(|| {
                    DataPlaneError::Config(format!("more than {MAX_VIPS} virtual IPs"))
                })?;
                slots.insert(*vip, slot);
                fresh.push(slot);
            }
        }
        if !fresh.is_empty() {
            let e = map_err(maps::VIP_STATS);
            let cpus = aya::util::nr_cpus().map_err(|(what, err)| DataPlaneError::Io(what, err))?;
            let mut m: PerCpuArray<_, VipStats> =
                PerCpuArray::try_from(ebpf_map_mut(&mut self.ebpf, maps::VIP_STATS)?)
                    .map_err(&e)?;
            for slot in fresh {
                let zero = PerCpuValues::try_from(vec![VipStats::default(); cpus])
                    .map_err(|err| DataPlaneError::Io("per-CPU values", err))?;
                m.set(slot, zero, 0).map_err(&e)?;
            }
        }
        {
            let e = map_err(maps::VIPS_V4);
            let mut m: HashMap<_, u32, u32> =
                HashMap::try_from(ebpf_map_mut(&mut self.ebpf, maps::VIPS_V4)?).map_err(&e)?;
            for (vip, slot) in &slots {
                if let IpAddr::V4(a) = vip {
                    m.insert(u32::from_ne_bytes(a.octets()), slot, 0)
                        .map_err(&e)?;
                }
            }
            for vip in self.vip_slots.keys().filter(|v| !slots.contains_key(v)) {
                if let IpAddr::V4(a) = vip {
                    optional(m.remove(&u32::from_ne_bytes(a.octets()))).map_err(&e)?;
                }
            }
        }
        {
            let e = map_err(maps::VIPS_V6);
            let mut m: HashMap<_, [u8; 16], u32> =
                HashMap::try_from(ebpf_map_mut(&mut self.ebpf, maps::VIPS_V6)?).map_err(&e)?;
            for (vip, slot) in &slots {
                if let IpAddr::V6(a) = vip {
                    m.insert(a.octets(), slot, 0).map_err(&e)?;
                }
            }
            for vip in self.vip_slots.keys().filter(|v| !slots.contains_key(v)) {
                if let IpAddr::V6(a) = vip {
                    optional(m.remove(&a.octets())).map_err(&e)?;
                }
            }
        }
        {
            // After the hash maps, so a collision entry never points the
            // program at a missing key.
            let table = vip_table(slots.iter());
            let e = map_err(maps::VIP_TABLE);
            let mut m: Array<_, VipEntry> =
                Array::try_from(ebpf_map_mut(&mut self.ebpf, maps::VIP_TABLE)?).map_err(&e)?;
            for (i, entry) in &table {
                if self.vip_table.get(i) != Some(entry) {
                    m.set(*i, entry, 0).map_err(&e)?;
                }
            }
            for i in self.vip_table.keys().filter(|i| !table.contains_key(i)) {
                m.set(*i, VipEntry::default(), 0).map_err(&e)?;
            }
            self.vip_table = table;
        }
        self.vip_slots = slots;
        Ok(())
    }

    fn update_vrid(
        &mut self,
        key: VridKey,
        f: impl FnOnce(&mut VridConfig),
    ) -> Result<(), DataPlaneError> {
        let t = key_tuple(&key);
        let mut cfg = *self
            .applied
            .vrids
            .get(&t)
            .ok_or(DataPlaneError::UnknownVrid(key))?;
        f(&mut cfg);
        let e = map_err(maps::VRIDS);
        let mut m: HashMap<_, VridKey, VridConfig> =
            HashMap::try_from(ebpf_map_mut(&mut self.ebpf, maps::VRIDS)?).map_err(&e)?;
        m.insert(key, cfg, 0).map_err(&e)?;
        self.applied.vrids.insert(t, cfg);
        self.write_vrid_table(vrid_table(&self.applied.vrids))
    }

    /// Writes the `VRID_TABLE` entries that differ from `table`, clears
    /// those no longer in it.
    fn write_vrid_table(&mut self, table: BTreeMap<u32, VridEntry>) -> Result<(), DataPlaneError> {
        let e = map_err(maps::VRID_TABLE);
        let mut m: Array<_, VridEntry> =
            Array::try_from(ebpf_map_mut(&mut self.ebpf, maps::VRID_TABLE)?).map_err(&e)?;
        for (i, entry) in &table {
            if self.vrid_table.get(i) != Some(entry) {
                m.set(*i, entry, 0).map_err(&e)?;
            }
        }
        for i in self.vrid_table.keys().filter(|i| !table.contains_key(i)) {
            m.set(*i, VridEntry::default(), 0).map_err(&e)?;
        }
        self.vrid_table = table;
        Ok(())
    }

    /// Sets or clears `VRID_F_DELIVER_ALL` of one configured VRID.
    pub fn set_deliver_all(&mut self, key: VridKey, on: bool) -> Result<(), DataPlaneError> {
        self.update_vrid(key, |c| {
            if on {
                c.flags |= vrrp_common::VRID_F_DELIVER_ALL;
            } else {
                c.flags &= !vrrp_common::VRID_F_DELIVER_ALL;
            }
        })
    }

    /// Records the instance's current effective priority.
    pub fn set_local_priority(&mut self, key: VridKey, priority: u8) -> Result<(), DataPlaneError> {
        self.update_vrid(key, |c| c.local_priority = priority)
    }

    /// The kernel's configuration entry of a VRID (as last written).
    pub fn vrid_config(&self, key: VridKey) -> Result<Option<VridConfig>, DataPlaneError> {
        let e = map_err(maps::VRIDS);
        let m: HashMap<_, VridKey, VridConfig> =
            HashMap::try_from(self.map(maps::VRIDS)?).map_err(&e)?;
        optional(m.get(&key, 0)).map_err(&e)
    }
}
