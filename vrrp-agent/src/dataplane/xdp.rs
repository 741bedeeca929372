//! The XDP receive path: load the program, fill its maps, attach it, and
//! read its ring buffer and counters.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    net::IpAddr,
    os::fd::OwnedFd,
    task::{Context, Poll, ready},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{
        Array, HashMap, Map, MapData, MapError, PerCpuArray, PerCpuHashMap, PerCpuValues, RingBuf,
    },
    programs::{ProgramError, Xdp, XdpMode as AyaXdpMode, xdp::XdpLinkId},
};
use tokio::io::{Interest, unix::AsyncFd};
use tracing::{info, warn};
use vrrp_common::{
    DROP_REASONS, DropPeer, DropReason, FAMILY_V4, FAMILY_V6, LastSeen, MAX_VIPS, STATS_LEN,
    VIP_F_COLLISION, VipEntry, VipStats, VridConfig, VridEntry, VridKey, VridStats, XDP_PROGRAM,
    drop_peer_index, maps, vip_index_v4, vip_index_v6,
};

use super::{
    ActiveMode, DataPlaneError, XdpMode,
    clock::{monotonic_now_ns, realtime_now_ns},
    config::{
        DataPlaneConfig, Desired, Family, FamilyTag, addr_from_bytes, key_from_tuple, key_tuple,
        peer_key,
    },
    counters::{Counters, LastSeenInfo, VipCounters, VridCounters},
    event::{Event, decode},
    mismatch::{PeerMismatch, PeerMismatches, warn_mismatch},
    sys,
};

use super::objects::VRRP as OBJECT;

/// Whether this binary carries the XDP program at all.
pub fn xdp_built_in() -> bool {
    !OBJECT.is_empty()
}

/// Every map the agent touches; checked at load so a program/agent mismatch
/// fails at start-up, not at the first reload.
const REQUIRED_MAPS: [&str; 13] = [
    maps::VRIDS,
    maps::VRID_TABLE,
    maps::LAST_SEEN,
    maps::VRID_STATS,
    maps::PEERS,
    maps::VIPS_V4,
    maps::VIPS_V6,
    maps::VIP_TABLE,
    maps::VIP_STATS,
    maps::STATS,
    maps::DROPS,
    maps::DROP_PEERS,
    maps::EVENTS,
];

/// The XDP program loaded into the kernel, its maps, and its attachments.
/// Dropping it detaches the program from every interface.
pub struct XdpDataPlane {
    ebpf: Ebpf,
    mode: XdpMode,
    links: BTreeMap<u32, (XdpLinkId, ActiveMode)>,
    applied: Desired,
    vip_slots: BTreeMap<IpAddr, u32>,
    /// The non-empty `VIP_TABLE` entries as last written.
    vip_table: BTreeMap<u32, VipEntry>,
    /// The non-empty `VRID_TABLE` entries as last written.
    vrid_table: BTreeMap<u32, VridEntry>,
    /// Holds the VRRP multicast MACs in each attached NIC's receive filter.
    membership: OwnedFd,
    events_taken: bool,
    /// `LAST_SEEN`, taken out of `ebpf` at load: read on every
    /// Master_Down check, so without a by-name map lookup each time.
    last_seen: Array<MapData, LastSeen>,
    /// Rate limit of the mismatch warnings.
    mismatches: PeerMismatches,
    /// `DROP_PEERS` counts at the last look, per (VRID, reason).
    mismatch_counts: std::collections::HashMap<(VridKey, u8), u64>,
    /// When `DROP_PEERS` was last looked at (monotonic ns; 0: never).
    mismatch_scan_ns: u64,
}

/// The drop reasons `DROP_PEERS` records (the checks against the
/// configuration).
const NAMED_REASONS: [DropReason; 5] = [
    DropReason::Version,
    DropReason::Interval,
    DropReason::AuthType,
    DropReason::Auth,
    DropReason::Peer,
];

/// Least time between two looks at `DROP_PEERS` for warnings.
const SCAN_EVERY_NS: u64 = 5_000_000_000;

fn map_err(map: &'static str) -> impl Fn(MapError) -> DataPlaneError {
    move |source| DataPlaneError::Map { map, source }
}

fn ebpf_map_mut<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut Map, DataPlaneError> {
    ebpf.map_mut(name).ok_or(DataPlaneError::MissingMap(name))
}

/// A missing key is an absent entry, not an error.
fn optional<T>(r: Result<T, MapError>) -> Result<Option<T>, MapError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(MapError::KeyNotFound) => Ok(None),
        // aya reports a delete of an absent key as the raw ENOENT.
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// How often the program load is tried before giving up on EAGAIN.
const LOAD_ATTEMPTS: usize = 5;

/// Runs `load` until it does not fail with EAGAIN, at most `attempts`
/// times. The verifier gives up with EAGAIN when a signal arrives while it
/// works (a SIGHUP, or any signal with a handler); on a loaded machine the
/// verification of our program takes seconds, and one such signal would
/// otherwise leave the daemon on the socket data plane for good. libbpf
/// retries the same way.
fn retry_on_eagain<E>(
    attempts: usize,
    errno: impl Fn(&E) -> Option<i32>,
    mut load: impl FnMut() -> Result<(), E>,
) -> Result<(), E> {
    let mut tried = 1;
    loop {
        match load() {
            Err(e) if errno(&e) == Some(libc::EAGAIN) && tried < attempts => {
                warn!(
                    attempt = tried,
                    "the verifier was interrupted; loading the XDP program again"
                );
                tried += 1;
            }
            r => return r,
        }
    }
}

/// The errno of a failed program load.
fn load_errno(e: &ProgramError) -> Option<i32> {
    match e {
        ProgramError::LoadError { io_error, .. } => io_error.raw_os_error(),
        _ => None,
    }
}

fn vip_index(vip: &IpAddr) -> u32 {
    match vip {
        IpAddr::V4(a) => vip_index_v4(a.octets()),
        IpAddr::V6(a) => vip_index_v6(a.octets()),
    }
}

/// The non-empty `VIP_TABLE` entries for VIPs and their slots: the VIP
/// itself where it is alone at its index, a collision marker where several
/// share one (the program then asks `VIPS_V4`/`VIPS_V6`).
fn vip_table<'a>(slots: impl Iterator<Item = (&'a IpAddr, &'a u32)>) -> BTreeMap<u32, VipEntry> {
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
fn vrid_table(vrids: &BTreeMap<(u32, u8, u8), VridConfig>) -> BTreeMap<u32, VridEntry> {
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
fn assign_vrid_slots(
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
    /// Loads the embedded program and checks its maps. Nothing is attached
    /// yet; call [`XdpDataPlane::apply`].
    pub fn load(mode: XdpMode) -> Result<Self, DataPlaneError> {
        if !xdp_built_in() {
            return Err(DataPlaneError::NotBuiltIn);
        }
        let mut ebpf = EbpfLoader::new()
            .load(OBJECT)
            .map_err(|e| DataPlaneError::Load(Box::new(e)))?;
        for name in REQUIRED_MAPS {
            if ebpf.map(name).is_none() {
                return Err(DataPlaneError::MissingMap(name));
            }
        }
        let prog: &mut Xdp = ebpf
            .program_mut(XDP_PROGRAM)
            .ok_or(DataPlaneError::MissingProgram)?
            .try_into()
            .map_err(|e| DataPlaneError::Program {
                ifname: String::new(),
                source: e,
            })?;
        retry_on_eagain(LOAD_ATTEMPTS, load_errno, || prog.load()).map_err(|e| {
            DataPlaneError::Program {
                ifname: String::new(),
                source: e,
            }
        })?;
        let membership =
            sys::packet_socket().map_err(|e| DataPlaneError::Io("AF_PACKET socket", e))?;
        let last_seen = ebpf
            .take_map(maps::LAST_SEEN)
            .ok_or(DataPlaneError::MissingMap(maps::LAST_SEEN))
            .and_then(|m| Array::try_from(m).map_err(map_err(maps::LAST_SEEN)))?;
        Ok(Self {
            ebpf,
            mode,
            links: BTreeMap::new(),
            applied: Desired::default(),
            vip_slots: BTreeMap::new(),
            vip_table: BTreeMap::new(),
            vrid_table: BTreeMap::new(),
            membership,
            events_taken: false,
            last_seen,
            mismatches: PeerMismatches::default(),
            mismatch_counts: std::collections::HashMap::new(),
            mismatch_scan_ns: 0,
        })
    }

    fn map(&self, name: &'static str) -> Result<&Map, DataPlaneError> {
        self.ebpf.map(name).ok_or(DataPlaneError::MissingMap(name))
    }

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

    /// Attaches the program to every configured interface it is not
    /// attached to yet.
    pub fn attach_all(&mut self) -> Result<(), DataPlaneError> {
        let todo: Vec<u32> = self
            .applied
            .ifindexes
            .iter()
            .filter(|i| !self.links.contains_key(i))
            .copied()
            .collect();
        for ifindex in todo {
            self.attach(ifindex)?;
        }
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

    fn program(&mut self) -> Result<&mut Xdp, DataPlaneError> {
        self.ebpf
            .program_mut(XDP_PROGRAM)
            .ok_or(DataPlaneError::MissingProgram)?
            .try_into()
            .map_err(|e| DataPlaneError::Program {
                ifname: String::new(),
                source: e,
            })
    }

    fn attach(&mut self, ifindex: u32) -> Result<(), DataPlaneError> {
        let ifname = sys::ifname(ifindex);
        let mode = self.mode;
        let prog = self.program()?;
        let (link, active) = match mode {
            XdpMode::Driver => (
                prog.attach_to_if_index(ifindex, AyaXdpMode::Driver),
                ActiveMode::Driver,
            ),
            XdpMode::Skb => (
                prog.attach_to_if_index(ifindex, AyaXdpMode::Skb),
                ActiveMode::Skb,
            ),
            XdpMode::Auto | XdpMode::Off => {
                // Native first (it runs before the skb is built); drivers
                // without XDP support, or veth above ~3.5 KB MTU, refuse it.
                match prog.attach_to_if_index(ifindex, AyaXdpMode::Driver) {
                    Ok(l) => (Ok(l), ActiveMode::Driver),
                    Err(err) => {
                        warn!(interface = %ifname, error = %err, "native XDP attach failed; trying generic (skb) mode");
                        (
                            prog.attach_to_if_index(ifindex, AyaXdpMode::Skb),
                            ActiveMode::Skb,
                        )
                    }
                }
            }
        };
        let link = link.map_err(|source| DataPlaneError::Program {
            ifname: ifname.clone(),
            source,
        })?;
        for mac in [sys::MAC_VRRP_V4, sys::MAC_VRRP_V6] {
            if let Err(err) = sys::add_multicast(&self.membership, ifindex, mac) {
                warn!(interface = %ifname, error = %err, "cannot join the VRRP multicast MAC; adverts may be filtered by the NIC");
            }
        }
        info!(interface = %ifname, mode = active.as_str(), "XDP program attached");
        self.links.insert(ifindex, (link, active));
        Ok(())
    }

    fn detach(&mut self, ifindex: u32) {
        let Some((link, _)) = self.links.remove(&ifindex) else {
            return;
        };
        let ifname = sys::ifname(ifindex);
        for mac in [sys::MAC_VRRP_V4, sys::MAC_VRRP_V6] {
            let _ = sys::drop_multicast(&self.membership, ifindex, mac);
        }
        match self.program().and_then(|p| {
            p.detach(link).map_err(|source| DataPlaneError::Program {
                ifname: ifname.clone(),
                source,
            })
        }) {
            Ok(()) => info!(interface = %ifname, "XDP program detached"),
            Err(err) => warn!(interface = %ifname, error = %err, "XDP detach failed"),
        }
    }

    /// Detaches from every interface. Also done on drop.
    pub fn shutdown(&mut self) {
        let ifs: Vec<u32> = self.links.keys().copied().collect();
        for ifindex in ifs {
            self.detach(ifindex);
        }
    }

    /// The mode of the first attached interface (the requested one while
    /// nothing is attached).
    pub fn mode(&self) -> ActiveMode {
        match (self.links.values().next(), self.mode) {
            (Some((_, m)), _) => *m,
            (None, XdpMode::Skb) => ActiveMode::Skb,
            (None, _) => ActiveMode::Driver,
        }
    }

    /// Attached interfaces and the mode each one got.
    pub fn attachments(&self) -> Vec<(u32, ActiveMode)> {
        self.links.iter().map(|(i, (_, m))| (*i, *m)).collect()
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

    /// Takes the ring buffer and returns the event stream. Only once; must
    /// be called inside a tokio runtime.
    pub(crate) fn take_events(&mut self) -> Result<RingEvents, DataPlaneError> {
        if self.events_taken {
            return Err(DataPlaneError::EventsTaken);
        }
        let e = map_err(maps::EVENTS);
        let map = self
            .ebpf
            .take_map(maps::EVENTS)
            .ok_or(DataPlaneError::MissingMap(maps::EVENTS))?;
        let ring = RingBuf::try_from(map).map_err(&e)?;
        // SAFETY: the ring buffer owns its fd and is moved into the AsyncFd,
        // which deregisters it before dropping it, so the fd stays valid and
        // is not closed behind tokio's back while registered.
        let fd = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|err| DataPlaneError::Io("ring buffer registration", err.into_parts().1))?;
        self.events_taken = true;
        Ok(RingEvents {
            fd,
            pending: VecDeque::new(),
            undecodable: 0,
        })
    }

    /// Global counters, summed over CPUs.
    pub fn counters(&self) -> Result<Counters, DataPlaneError> {
        let mut c = Counters::default();
        let e = map_err(maps::STATS);
        let stats: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.map(maps::STATS)?).map_err(&e)?;
        for i in 0..STATS_LEN {
            c.stats[i as usize] = stats.get(&i, 0).map_err(&e)?.iter().sum();
        }
        let e = map_err(maps::DROPS);
        let drops: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.map(maps::DROPS)?).map_err(&e)?;
        for i in 0..DROP_REASONS {
            c.drops[i] = drops.get(&(i as u32), 0).map_err(&e)?.iter().sum();
        }
        Ok(c)
    }

    fn vrid_stats_map(
        &self,
    ) -> Result<PerCpuHashMap<&MapData, VridKey, VridStats>, DataPlaneError> {
        PerCpuHashMap::try_from(self.map(maps::VRID_STATS)?).map_err(map_err(maps::VRID_STATS))
    }

    /// Counters of one VRID (configured or foreign), if it was ever seen.
    ///
    /// `valid` comes from `LAST_SEEN.rx_total` (the program does not count
    /// valid adverts in `VRID_STATS`, see [`VridStats::valid`]).
    pub fn vrid_counters(&self, key: VridKey) -> Result<Option<VridCounters>, DataPlaneError> {
        let m = self.vrid_stats_map()?;
        let vals = optional(m.get(&key, 0)).map_err(map_err(maps::VRID_STATS))?;
        let valid = self.rx_total(key)?;
        if vals.is_none() && valid.is_none() {
            return Ok(None);
        }
        let mut c = VridCounters::default();
        if let Some(v) = vals {
            v.iter().for_each(|s| c.add(s));
        }
        c.valid += valid.unwrap_or(0);
        Ok(Some(c))
    }

    /// `LAST_SEEN.rx_total` of a VRID, if it is configured and has seen one.
    fn rx_total(&self, key: VridKey) -> Result<Option<u64>, DataPlaneError> {
        Ok(self.last_seen_raw(key)?.map(|l| l.rx_total))
    }

    /// The `LAST_SEEN` entry of a configured VRID, `None` while empty.
    fn last_seen_raw(&self, key: VridKey) -> Result<Option<LastSeen>, DataPlaneError> {
        let Some(cfg) = self.applied.vrids.get(&key_tuple(&key)) else {
            return Ok(None);
        };
        let raw = self
            .last_seen
            .get(&u32::from(cfg.slot), 0)
            .map_err(map_err(maps::LAST_SEEN))?;
        Ok((raw.rx_total != 0).then_some(raw))
    }

    /// Counters of every VRID seen on the attached interfaces.
    pub fn all_vrid_counters(&self) -> Result<Vec<(VridKey, VridCounters)>, DataPlaneError> {
        let m = self.vrid_stats_map()?;
        let mut out = Vec::new();
        for item in m.iter() {
            // An LRU entry can vanish between key and value lookup: skip it.
            let Ok((k, v)) = item else { continue };
            let mut c = VridCounters::default();
            v.iter().for_each(|s| c.add(s));
            out.push((k, c));
        }
        // Valid adverts are counted in LAST_SEEN, which may hold VRIDs
        // without any VRID_STATS entry (no drops, never foreign).
        for t in self.applied.vrids.keys() {
            let k = key_from_tuple(*t);
            let Some(l) = self.last_seen_raw(k)? else {
                continue;
            };
            match out.iter_mut().find(|(o, _)| *o == k) {
                Some((_, c)) => c.valid += l.rx_total,
                None => out.push((
                    k,
                    VridCounters {
                        valid: l.rx_total,
                        ..VridCounters::default()
                    },
                )),
            }
        }
        Ok(out)
    }

    /// Traffic counters of every configured VIP.
    pub fn vip_counters(&self) -> Result<Vec<VipCounters>, DataPlaneError> {
        let e = map_err(maps::VIP_STATS);
        let m: PerCpuArray<_, VipStats> =
            PerCpuArray::try_from(self.map(maps::VIP_STATS)?).map_err(&e)?;
        let mut out = Vec::with_capacity(self.vip_slots.len());
        for (vip, slot) in &self.vip_slots {
            let mut c = VipCounters::zero(*vip);
            m.get(slot, 0).map_err(&e)?.iter().for_each(|s| c.add(s));
            out.push(c);
        }
        Ok(out)
    }

    /// Peers whose adverts for a configured VRID were dropped by a check
    /// against the configuration (`DROP_PEERS`): per reason, the last
    /// sender, with the reason's count since the slot was given to the VRID.
    pub fn peer_mismatches(&self, key: VridKey) -> Result<Vec<PeerMismatch>, DataPlaneError> {
        let Some(cfg) = self.applied.vrids.get(&key_tuple(&key)) else {
            return Ok(Vec::new());
        };
        let e = map_err(maps::DROP_PEERS);
        let m: Array<_, DropPeer> = Array::try_from(self.map(maps::DROP_PEERS)?).map_err(&e)?;
        let (mono, real) = (monotonic_now_ns(), realtime_now_ns());
        let mut out = Vec::new();
        for reason in NAMED_REASONS {
            let d = m.get(&drop_peer_index(cfg.slot, reason), 0).map_err(&e)?;
            if d.count == 0 || d.key != key {
                continue;
            }
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&d.src[0].to_ne_bytes());
            bytes[8..].copy_from_slice(&d.src[1].to_ne_bytes());
            let Some(peer) = addr_from_bytes(key.family, &bytes) else {
                continue;
            };
            let unix_ns = real.saturating_sub(mono.saturating_sub(d.ts_ns));
            out.push(PeerMismatch {
                key,
                reason,
                peer,
                count: d.count,
                last_unix_ms: unix_ns / 1_000_000,
            });
        }
        Ok(out)
    }

    /// Warns (rate-limited, see [`PeerMismatches`]) about peers whose
    /// adverts the program dropped since the last look; looks at most every
    /// [`SCAN_EVERY_NS`].
    pub fn warn_mismatches(&mut self) {
        let now = monotonic_now_ns();
        if self.mismatch_scan_ns != 0 && now.saturating_sub(self.mismatch_scan_ns) < SCAN_EVERY_NS {
            return;
        }
        self.mismatch_scan_ns = now;
        let keys: Vec<VridKey> = self
            .applied
            .vrids
            .keys()
            .map(|t| key_from_tuple(*t))
            .collect();
        for key in keys {
            let Ok(found) = self.peer_mismatches(key) else {
                continue;
            };
            for m in found {
                let seen = self
                    .mismatch_counts
                    .entry((key, m.reason as u8))
                    .or_insert(0);
                let new = m.count.saturating_sub(*seen);
                *seen = m.count;
                if new > 0
                    && self
                        .mismatches
                        .note(key, m.reason, m.peer, new, now, m.last_unix_ms)
                {
                    warn_mismatch(&m);
                }
            }
        }
    }

    /// The newest valid advert the program saw for a configured VRID.
    pub fn last_seen(&self, key: VridKey) -> Result<Option<LastSeenInfo>, DataPlaneError> {
        let raw = self.last_seen_raw(key)?;
        let Some(family) = Family::from_tag(key.family) else {
            return Ok(None);
        };
        Ok(raw.and_then(|r| LastSeenInfo::from_raw(family, &r)))
    }
}

impl Drop for XdpDataPlane {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Reads [`Event`]s from the `EVENTS` ring buffer.
pub(crate) struct RingEvents {
    fd: AsyncFd<RingBuf<MapData>>,
    pending: VecDeque<Event>,
    undecodable: u64,
}

impl RingEvents {
    pub(crate) fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Event, DataPlaneError>> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Poll::Ready(Ok(ev));
            }
            let mut guard = ready!(self.fd.poll_read_ready_mut(cx))
                .map_err(|e| DataPlaneError::Io("ring buffer poll", e))?;
            let ring = guard.get_inner_mut();
            // Drain completely before clearing readiness: the ring buffer
            // notifies on the edge, a record left behind would wait for the
            // next advert.
            while let Some(item) = ring.next() {
                match decode(&item) {
                    Ok(ev) => self.pending.push_back(ev),
                    Err(err) => {
                        self.undecodable += 1;
                        if self.undecodable.is_power_of_two() {
                            warn!(error = %err, total = self.undecodable, "undecodable ring buffer record");
                        }
                    }
                }
            }
            guard.clear_ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
