//! The XDP receive path: load the program, fill its maps, attach it, and
//! read its ring buffer and counters.
//!
//! Split by what each part touches: `load` brings the program into the
//! kernel and attaches it (with the EAGAIN retry), `write` fills the
//! configuration maps (`VRIDS`, `VRID_TABLE`, `VIP_TABLE`, the VIP hashes,
//! `PEERS`, the `LAST_SEEN` slots), `read` reads the ring buffer, the
//! counters, `LAST_SEEN` and the mismatched peers.

mod load;
mod read;
#[cfg(test)]
mod tests;
mod write;

use std::{collections::BTreeMap, net::IpAddr, os::fd::OwnedFd};

use aya::{
    Ebpf,
    maps::{Array, Map, MapData, MapError},
    programs::xdp::XdpLinkId,
};
use vrrp_common::{LastSeen, VipEntry, VridEntry, VridKey, maps};

use super::{ActiveMode, DataPlaneError, XdpMode, config::Desired, mismatch::PeerMismatches};

use super::objects::VRRP as OBJECT;

pub(crate) use read::RingEvents;

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

impl XdpDataPlane {
    fn map(&self, name: &'static str) -> Result<&Map, DataPlaneError> {
        self.ebpf.map(name).ok_or(DataPlaneError::MissingMap(name))
    }
}

impl Drop for XdpDataPlane {
    fn drop(&mut self) {
        self.shutdown();
    }
}
