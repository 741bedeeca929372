//! Reading what the program reports: the `EVENTS` ring buffer, the
//! counters, `LAST_SEEN`, and the peers whose adverts were dropped by a
//! check against the configuration.

use std::{
    collections::VecDeque,
    task::{Context, Poll, ready},
};

use aya::maps::{Array, MapData, PerCpuArray, PerCpuHashMap, RingBuf};
use tokio::io::{Interest, unix::AsyncFd};
use tracing::warn;
use vrrp_common::{
    DROP_REASONS, DropPeer, DropReason, LastSeen, STATS_LEN, VipStats, VridKey, VridStats,
    drop_peer_index, maps,
};

use crate::dataplane::{
    DataPlaneError,
    clock::{monotonic_now_ns, realtime_now_ns},
    config::{Family, FamilyTag, addr_from_bytes, key_from_tuple, key_tuple},
    counters::{Counters, LastSeenInfo, VipCounters, VridCounters},
    event::{Event, decode},
    mismatch::{PeerMismatch, warn_mismatch},
};

use super::{XdpDataPlane, map_err, optional};

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

impl XdpDataPlane {
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
    ///
    /// [`PeerMismatches`]: crate::dataplane::mismatch::PeerMismatches
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
