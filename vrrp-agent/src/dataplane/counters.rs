//! Counter snapshots, summed over CPUs, in the same shape for both paths.

use std::net::IpAddr;

use vrrp_common::{
    DROP_REASONS, DropReason, INTERARRIVAL_HIST_LEN, LastSeen, STATS_LEN, Stat, VipStats, VridStats,
};

use super::{
    config::{Family, FamilyTag, addr_from_bytes},
    event::checksum_form_from_u8,
};
use crate::proto::{RxAdvert, Version, packet::interval_from_wire, time::Instant};

/// Global counters: [`Stat`] values and drops by [`DropReason`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Indexed by [`Stat`].
    pub stats: [u64; STATS_LEN as usize],
    /// Indexed by [`DropReason`].
    pub drops: [u64; DROP_REASONS],
}

impl Counters {
    /// One global counter.
    pub fn stat(&self, s: Stat) -> u64 {
        self.stats[s as usize]
    }

    /// Drops for one reason.
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    pub(crate) fn bump(&mut self, s: Stat) {
        self.stats[s as usize] += 1;
    }

    pub(crate) fn bump_drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
        self.bump(Stat::AdvertsDropped);
    }
}

/// Per-VRID counters (configured or foreign VRIDs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VridCounters {
    /// Valid adverts for a VRID configured on the interface.
    pub valid: u64,
    /// Valid adverts for a VRID not configured on the interface.
    pub foreign: u64,
    /// Dropped adverts, indexed by [`DropReason`].
    pub drops: [u64; DROP_REASONS],
    /// Accepted IPv6 adverts whose first address is not link-local.
    pub first_not_link_local: u64,
}

impl VridCounters {
    /// Drops for one reason.
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    pub(crate) fn add(&mut self, s: &VridStats) {
        self.valid += s.valid;
        self.foreign += s.foreign;
        self.first_not_link_local += s.first_not_link_local;
        for (a, b) in self.drops.iter_mut().zip(s.drops.iter()) {
            *a += b;
        }
    }
}

/// Traffic counters of one virtual IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipCounters {
    /// The virtual IP.
    pub vip: IpAddr,
    /// Packets whose destination is the VIP.
    pub rx_packets: u64,
    /// Their bytes (whole frames).
    pub rx_bytes: u64,
    /// ARP requests / neighbour solicitations for the VIP.
    pub resolutions: u64,
}

impl VipCounters {
    pub(crate) fn zero(vip: IpAddr) -> Self {
        Self {
            vip,
            rx_packets: 0,
            rx_bytes: 0,
            resolutions: 0,
        }
    }

    pub(crate) fn add(&mut self, s: &VipStats) {
        self.rx_packets += s.rx_packets;
        self.rx_bytes += s.rx_bytes;
        self.resolutions += s.resolutions;
    }
}

/// The newest valid advert the data plane saw for a configured VRID. At a
/// Master_Down deadline the daemon compares `ts` with the last event it
/// handled: adverts identical to the previous one only refresh this entry
/// and raise no event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastSeenInfo {
    /// Receive time (`CLOCK_MONOTONIC`).
    pub ts: Instant,
    /// Valid adverts for this VRID, ever.
    pub rx_total: u64,
    /// Sender address.
    pub src: IpAddr,
    /// Sender MAC.
    pub src_mac: [u8; 6],
    /// Advertised priority.
    pub priority: u8,
    /// Advertised version.
    pub version: Version,
    /// Advertised interval (decoded once, by the codec's rule).
    pub interval: std::time::Duration,
    /// Count IPvX Addr.
    pub count: u8,
    /// The checksum form that verified.
    pub checksum_form: Option<vrrp_common::ChecksumForm>,
    /// Inter-arrival histogram of this VRID's adverts, kept by the data
    /// plane from the kernel receive timestamps of every advert (see
    /// [`LastSeen::hist`]): observations per bucket (upper bounds
    /// [`vrrp_common::INTERARRIVAL_BOUNDS_NS`], then `+Inf`), not cumulative.
    /// The kernel's 32-bit counters wrap.
    pub hist_counts: [u64; INTERARRIVAL_HIST_LEN],
    /// Sum of the observed inter-arrival times in ns.
    pub hist_sum_ns: u64,
}

impl LastSeenInfo {
    /// Decodes the kernel entry of a VRID of family `family`.
    pub(crate) fn from_raw(family: Family, raw: &LastSeen) -> Option<Self> {
        let version = Version::from_number(raw.version)?;
        Some(Self {
            ts: Instant::from_nanos(raw.ts_ns),
            rx_total: raw.rx_total,
            src: addr_from_bytes(family.tag(), &raw.src_ip)?,
            src_mac: raw.src_mac,
            priority: raw.priority,
            version,
            interval: interval_from_wire(version, raw.interval),
            count: raw.count,
            checksum_form: checksum_form_from_u8(raw.checksum_form),
            hist_counts: raw.hist.map(u64::from),
            hist_sum_ns: raw.hist_sum_ns,
        })
    }

    /// Observations in the inter-arrival histogram.
    pub fn hist_count(&self) -> u64 {
        self.hist_counts.iter().sum()
    }

    /// What the protocol core needs from this advert, to deliver it at a
    /// Master_Down deadline.
    pub fn rx_advert(&self) -> RxAdvert {
        RxAdvert {
            src: self.src,
            priority: self.priority,
            interval: self.interval,
            version: self.version,
        }
    }
}
