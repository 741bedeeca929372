//! The socket receive path: the fallback when XDP is off or unavailable.
//!
//! One AF_PACKET socket, filtered in the kernel by a classic BPF program to
//! IPv4/IPv6 protocol 112, receives adverts on every interface; frames on
//! interfaces without a configured VRID are ignored. Each frame is validated
//! with the protocol codec and the same per-VRID rules as the XDP program
//! (configured version, v2 interval, family, peer allow-list), counted in
//! the same [`Counters`] shape, and every valid advert for a configured VRID
//! becomes an [`Event`] with reason `SOCKET`.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    net::IpAddr,
    os::fd::OwnedFd,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
};

use tokio::io::{Interest, unix::AsyncFd};
use tracing::{info, warn};
use vrrp_common::{
    DropReason, LastSeen, SeenAdvert, Stat, V2_AUTH_PASS, VRID_F_DELIVER_ALL, VRID_F_PEER_FILTER,
    VridConfig, VridKey, event_reason,
};

use super::{
    DataPlaneError,
    clock::{monotonic_now_ns, realtime_now_ns, realtime_to_monotonic},
    config::{DataPlaneConfig, Desired, Family, FamilyTag, addr_bytes, key_tuple},
    counters::{Counters, LastSeenInfo, VipCounters, VridCounters},
    event::Event,
    mismatch::{PeerMismatch, PeerMismatches, warn_mismatch},
    sys,
};
use crate::proto::{
    auth,
    packet::{Advert, interval_to_wire, split_frame},
    time::Instant,
};

/// Largest frame read in one piece: 255 IPv6 addresses plus headers fit.
const FRAME_BUF: usize = 9216;
/// Frames handled per wakeup before yielding to other tasks.
const BATCH: usize = 256;
/// `sll_pkttype` of frames the host sent itself.
const PACKET_OUTGOING: u8 = 4;

/// Configuration and userspace counters of the socket path.
#[derive(Default)]
pub(crate) struct SocketState {
    desired: Desired,
    counters: Counters,
    vrids: HashMap<VridKey, VridCounters>,
    last_seen: HashMap<VridKey, LastSeen>,
    mismatches: PeerMismatches,
}

fn lock(m: &Mutex<SocketState>) -> MutexGuard<'_, SocketState> {
    // Counters stay meaningful even if a holder panicked.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SocketState {
    fn drop_advert(&mut self, key: Option<VridKey>, r: DropReason) {
        self.counters.bump_drop(r);
        if let Some(k) = key {
            self.vrids.entry(k).or_default().drops[r as usize] += 1;
        }
    }

    /// Validates one frame received on `ifindex` at `ts_ns` (monotonic) the
    /// way the XDP program does; returns the event for a valid advert of a
    /// configured VRID.
    // Long because: the XDP program's checks in its order, one step each, to compare side by side.
    pub(crate) fn process(&mut self, frame: &[u8], ifindex: u32, ts_ns: u64) -> Option<Event> {
        if !self.desired.ifindexes.contains(&ifindex) {
            return None;
        }
        self.counters.bump(Stat::VrrpSeen);
        let (meta, msg) = match split_frame(frame) {
            Ok(v) => v,
            Err(e) => {
                self.drop_advert(None, e.reason());
                return None;
            }
        };
        let family = Family::of(meta.src);
        let key = msg
            .get(1)
            .map(|vrid| VridKey::new(ifindex, *vrid, family.tag()));
        let (advert, form) = match Advert::parse(&meta, msg) {
            Ok(v) => v,
            Err(e) => {
                self.drop_advert(key, e.reason());
                return None;
            }
        };
        let key = VridKey::new(ifindex, advert.vrid, family.tag());
        let version = advert.version.number();
        // The raw field again, for the kernel-shaped LAST_SEEN record (the
        // codec decoded it; a parsed interval always has an encoding).
        let interval_raw = interval_to_wire(advert.version, advert.interval).unwrap_or(0);
        let Some(cfg) = self.desired.vrids.get(&key_tuple(&key)).copied() else {
            let other = match family {
                Family::V4 => Family::V6,
                Family::V6 => Family::V4,
            };
            if self
                .desired
                .vrids
                .contains_key(&(ifindex, advert.vrid, other.tag()))
            {
                self.drop_advert(Some(key), DropReason::Family);
            } else {
                self.counters.bump(Stat::AdvertsForeign);
                self.vrids.entry(key).or_default().foreign += 1;
            }
            return None;
        };
        if let Some(r) = self
            .config_check(&cfg, ifindex, family, &meta.src, version, interval_raw)
            .or_else(|| Self::auth_check(&cfg, version, msg))
        {
            self.drop_advert(Some(key), r);
            let unix_ms = realtime_now_ns() / 1_000_000;
            if self.mismatches.note(key, r, meta.src, 1, ts_ns, unix_ms) {
                warn_mismatch(&PeerMismatch {
                    key,
                    reason: r,
                    peer: meta.src,
                    count: 1,
                    last_unix_ms: unix_ms,
                });
            }
            return None;
        }
        self.counters.bump(Stat::AdvertsValid);
        let counters = self.vrids.entry(key).or_default();
        counters.valid += 1;
        if !advert.first_is_link_local() {
            counters.first_not_link_local += 1;
        }
        let src_mac: [u8; 6] = frame
            .get(6..12)
            .and_then(|m| m.try_into().ok())
            .unwrap_or([0; 6]);
        let src_ip = addr_bytes(&meta.src);
        let count = u8::try_from(advert.addrs.len()).unwrap_or(u8::MAX);
        // The bookkeeping the XDP program does, by the same function.
        let recorded = self.last_seen.entry(key).or_default().record(
            &SeenAdvert {
                ts_ns,
                src: SeenAdvert::src_words(&src_ip),
                src_mac,
                priority: advert.priority,
                version,
                interval: interval_raw,
                count,
                checksum_form: form as u8,
            },
            cfg.flags & VRID_F_DELIVER_ALL != 0,
        );
        let reason = event_reason::SOCKET | recorded.reason;
        self.counters.bump(Stat::EventsSent);
        Some(Event {
            ts: Instant::from_nanos(ts_ns),
            ifindex,
            family,
            src: meta.src,
            src_mac,
            version: advert.version,
            vrid: advert.vrid,
            priority: advert.priority,
            interval: advert.interval,
            count,
            addrs: advert.addrs,
            checksum_form: Some(form),
            reason,
            // Every advert is delivered: there is no unseen predecessor.
            prev_ts: None,
        })
    }

    /// RFC 2338 §7.1 for a v2 advert: the configured Auth Type and (type 1)
    /// password, as the XDP program compares them (the kernel-shaped
    /// configuration's words).
    fn auth_check(cfg: &VridConfig, version: u8, msg: &[u8]) -> Option<DropReason> {
        if version != 2 {
            return None;
        }
        let (ty, data) = auth::received(msg)?;
        let ours = (cfg.v2_auth_type == V2_AUTH_PASS).then(|| {
            let [a, b] = cfg.v2_auth_data;
            let mut p = [0u8; 8];
            p[..4].copy_from_slice(&a.to_ne_bytes());
            p[4..].copy_from_slice(&b.to_ne_bytes());
            p
        });
        auth::check((ty, &data), ours.as_ref())
    }

    /// Peers whose adverts for `key` were dropped, by reason.
    pub(crate) fn mismatches(&self, key: VridKey) -> Vec<PeerMismatch> {
        self.mismatches.of(key)
    }

    /// The checks that depend on the configured instance (RFC 9568 §7.1
    /// items 2 and 7, RFC 3768 §7.1 interval equality, unicast allow-list).
    fn config_check(
        &self,
        cfg: &VridConfig,
        ifindex: u32,
        family: Family,
        src: &IpAddr,
        version: u8,
        interval_raw: u16,
    ) -> Option<DropReason> {
        if version != cfg.version {
            return Some(DropReason::Version);
        }
        if version == 2 && interval_raw != cfg.v2_adver_int {
            return Some(DropReason::Interval);
        }
        if cfg.flags & VRID_F_PEER_FILTER != 0
            && !self
                .desired
                .peers
                .contains(&(ifindex, family.tag(), addr_bytes(src)))
        {
            return Some(DropReason::Peer);
        }
        None
    }
}

/// Read access to the socket path's state from another thread.
pub(crate) struct SocketView(Arc<Mutex<SocketState>>);

impl SocketView {
    /// The configured VRIDs, each with its raw `LAST_SEEN` record (as the
    /// XDP program keeps it) if it has seen an advert; the global counters
    /// and the per-VRID ones, all read at one instant.
    pub(crate) fn snapshot(&self) -> SocketSnapshot {
        let st = lock(&self.0);
        SocketSnapshot {
            last_seen: st
                .desired
                .vrids
                .keys()
                .map(|k| super::config::key_from_tuple(*k))
                .filter_map(|k| st.last_seen.get(&k).map(|l| (k, *l)))
                .collect(),
            counters: st.counters,
            vrids: st.vrids.iter().map(|(k, v)| (*k, *v)).collect(),
        }
    }
}

/// See [`SocketView::snapshot`].
pub(crate) struct SocketSnapshot {
    pub(crate) last_seen: Vec<(VridKey, LastSeen)>,
    pub(crate) counters: Counters,
    pub(crate) vrids: HashMap<VridKey, VridCounters>,
}

/// The socket receive path.
pub struct SocketDataPlane {
    state: Arc<Mutex<SocketState>>,
    rx: Option<OwnedFd>,
    membership: OwnedFd,
    joined: BTreeSet<u32>,
}

impl SocketDataPlane {
    /// Opens the AF_PACKET socket and applies `cfg`. Needs CAP_NET_RAW.
    pub fn open(cfg: &DataPlaneConfig) -> Result<Self, DataPlaneError> {
        let io = |what| move |e| DataPlaneError::Io(what, e);
        let rx =
            sys::packet_socket().map_err(io("AF_PACKET socket (needs root or CAP_NET_RAW)"))?;
        // Filter before bind: a socket bound to ETH_P_ALL without a filter
        // would queue every frame on the host in the meantime.
        sys::attach_vrrp_filter(&rx).map_err(io("SO_ATTACH_FILTER"))?;
        if let Err(e) = sys::ignore_outgoing(&rx) {
            // Linux < 4.20: our own adverts are skipped by pkttype instead.
            warn!(error = %e, "PACKET_IGNORE_OUTGOING unavailable");
        }
        sys::enable_timestamps(&rx).map_err(io("SO_TIMESTAMPNS"))?;
        sys::bind_all(&rx).map_err(io("bind AF_PACKET"))?;
        let membership = sys::packet_socket().map_err(io("AF_PACKET socket"))?;
        let mut me = Self {
            state: Arc::new(Mutex::new(SocketState::default())),
            rx: Some(rx),
            membership,
            joined: BTreeSet::new(),
        };
        me.apply(cfg)?;
        Ok(me)
    }

    /// Applies a new configuration (reload). VRIDs that stay keep their
    /// last-seen entry and counters.
    pub fn apply(&mut self, cfg: &DataPlaneConfig) -> Result<(), DataPlaneError> {
        let d = cfg.desired()?;
        for ifindex in d.ifindexes.difference(&self.joined) {
            let ifname = sys::ifname(*ifindex);
            for mac in [sys::MAC_VRRP_V4, sys::MAC_VRRP_V6] {
                sys::add_multicast(&self.membership, *ifindex, mac)
                    .map_err(|e| DataPlaneError::Io("PACKET_ADD_MEMBERSHIP", e))?;
            }
            info!(interface = %ifname, "receiving VRRP adverts through an AF_PACKET socket");
        }
        for ifindex in self.joined.difference(&d.ifindexes) {
            for mac in [sys::MAC_VRRP_V4, sys::MAC_VRRP_V6] {
                let _ = sys::drop_multicast(&self.membership, *ifindex, mac);
            }
        }
        self.joined = d.ifindexes.clone();
        let mut st = lock(&self.state);
        st.last_seen
            .retain(|k, _| d.vrids.contains_key(&key_tuple(k)));
        st.desired = d;
        Ok(())
    }

    /// Interfaces adverts are received on.
    pub fn interfaces(&self) -> Vec<u32> {
        self.joined.iter().copied().collect()
    }

    fn update_vrid(
        &mut self,
        key: VridKey,
        f: impl FnOnce(&mut VridConfig),
    ) -> Result<(), DataPlaneError> {
        let mut st = lock(&self.state);
        let cfg = st
            .desired
            .vrids
            .get_mut(&key_tuple(&key))
            .ok_or(DataPlaneError::UnknownVrid(key))?;
        f(cfg);
        Ok(())
    }

    /// Sets or clears "deliver every advert" (the socket path always
    /// delivers every advert; the flag only shows in the event reason).
    pub fn set_deliver_all(&mut self, key: VridKey, on: bool) -> Result<(), DataPlaneError> {
        self.update_vrid(key, |c| {
            if on {
                c.flags |= VRID_F_DELIVER_ALL;
            } else {
                c.flags &= !VRID_F_DELIVER_ALL;
            }
        })
    }

    /// Records the current effective priority of a VRID.
    pub fn set_local_priority(&mut self, key: VridKey, priority: u8) -> Result<(), DataPlaneError> {
        self.update_vrid(key, |c| c.local_priority = priority)
    }

    /// Global counters.
    pub fn counters(&self) -> Counters {
        lock(&self.state).counters
    }

    /// Counters of one VRID, if it was ever seen.
    pub fn vrid_counters(&self, key: VridKey) -> Option<VridCounters> {
        lock(&self.state).vrids.get(&key).copied()
    }

    /// Counters of every VRID seen.
    pub fn all_vrid_counters(&self) -> Vec<(VridKey, VridCounters)> {
        lock(&self.state)
            .vrids
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }

    /// VIP counters: always zero, the socket path does not see VIP traffic.
    pub fn vip_counters(&self) -> Vec<VipCounters> {
        lock(&self.state)
            .desired
            .vips
            .iter()
            .map(|v| VipCounters::zero(*v))
            .collect()
    }

    /// Peers whose adverts for a configured VRID were dropped, by reason.
    pub fn peer_mismatches(&self, key: VridKey) -> Vec<PeerMismatch> {
        lock(&self.state).mismatches(key)
    }

    /// The newest valid advert of a configured VRID.
    pub fn last_seen(&self, key: VridKey) -> Option<LastSeenInfo> {
        let family = Family::from_tag(key.family)?;
        lock(&self.state)
            .last_seen
            .get(&key)
            .and_then(|r| LastSeenInfo::from_raw(family, r))
    }

    /// A handle on the socket path's records and counters that another
    /// thread can read (the XDP loader, [`super::DataPlane::open_fast`]).
    pub(crate) fn view(&self) -> SocketView {
        SocketView(Arc::clone(&self.state))
    }

    /// Stops receiving: leaves the multicast groups. The socket itself
    /// closes with the event stream.
    pub fn shutdown(&mut self) {
        for ifindex in std::mem::take(&mut self.joined) {
            for mac in [sys::MAC_VRRP_V4, sys::MAC_VRRP_V6] {
                let _ = sys::drop_multicast(&self.membership, ifindex, mac);
            }
        }
    }

    pub(crate) fn take_events(&mut self) -> Result<SocketEvents, DataPlaneError> {
        let rx = self.rx.take().ok_or(DataPlaneError::EventsTaken)?;
        // SAFETY: the OwnedFd is moved into the AsyncFd, which deregisters
        // it before closing it; nothing else holds the descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(rx, Interest::READABLE) }
            .map_err(|e| DataPlaneError::Io("socket registration", e.into_parts().1))?;
        Ok(SocketEvents {
            fd,
            state: Arc::clone(&self.state),
            pending: VecDeque::new(),
            buf: vec![0; FRAME_BUF],
        })
    }
}

/// Reads, validates and decodes frames from the socket.
pub(crate) struct SocketEvents {
    fd: AsyncFd<OwnedFd>,
    state: Arc<Mutex<SocketState>>,
    pending: VecDeque<Event>,
    buf: Vec<u8>,
}

impl SocketEvents {
    /// The next advert. The socket is read before its readiness is known:
    /// the loop drains events before it handles a deadline
    /// ([`crate::daemon`]), and an advert queued since the reactor last
    /// looked must count, or a backup slowed down by a busy CPU (or a storm
    /// of reloads) would declare a live master down. (The XDP path records
    /// adverts in `LAST_SEEN` as they arrive, which the deadline check
    /// reads.)
    pub(crate) fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Event, DataPlaneError>> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Poll::Ready(Ok(ev));
            }
            let guard = match self.fd.poll_read_ready(cx) {
                Poll::Ready(g) => Some(g.map_err(|e| DataPlaneError::Io("socket poll", e))?),
                Poll::Pending => None,
            };
            let fd = guard.as_ref().map_or(self.fd.get_ref(), |g| g.get_inner());
            let drained = read_batch(fd, &mut self.buf, &self.state, &mut self.pending)
                .map_err(|e| DataPlaneError::Io("recvmsg", e))?;
            let waiting = guard.is_none();
            if drained && let Some(mut g) = guard {
                g.clear_ready();
            }
            if self.pending.is_empty() {
                if !drained {
                    // A flood of invalid frames: yield, but come back at once.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                if waiting {
                    // Empty, and the reactor will wake us.
                    return Poll::Pending;
                }
            }
        }
    }
}

/// Reads up to [`BATCH`] frames without blocking, validating each into
/// `pending`; `true` once the socket is empty.
fn read_batch(
    fd: &OwnedFd,
    buf: &mut [u8],
    state: &Mutex<SocketState>,
    pending: &mut VecDeque<Event>,
) -> std::io::Result<bool> {
    let (mono_now, real_now) = (monotonic_now_ns(), realtime_now_ns());
    for _ in 0..BATCH {
        let Some(frame) = sys::recv_frame(fd, buf)? else {
            return Ok(true);
        };
        if frame.pkttype == PACKET_OUTGOING {
            continue;
        }
        let ts = frame
            .ts_real_ns
            .map_or(mono_now, |t| realtime_to_monotonic(t, mono_now, real_now));
        let mut st = lock(state);
        if frame.len > buf.len() {
            if st.desired.ifindexes.contains(&frame.ifindex) {
                st.counters.bump(Stat::VrrpSeen);
                st.drop_advert(None, DropReason::Length);
            }
            continue;
        }
        if let Some(ev) = st.process(&buf[..frame.len], frame.ifindex, ts) {
            pending.push_back(ev);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use std::{net::Ipv4Addr, time::Duration};

    use vrrp_common::{FAMILY_V4, VRID_F_DELIVER_ALL};

    use super::*;
    use crate::{
        dataplane::VridEntry,
        proto::{
            checksum,
            packet::{V3Checksum, Version},
        },
    };

    const IF: u32 = 5;
    const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

    fn frame_v4(src: Ipv4Addr, ttl: u8, msg: &[u8]) -> Vec<u8> {
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, ttl, 112, 0, 0];
        let total = (20 + msg.len()) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&[224, 0, 0, 18]);
        let c = checksum::finish(checksum::sum(&ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut f = sys::MAC_VRRP_V4.to_vec();
        f.extend_from_slice(&SRC_MAC);
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(msg);
        f
    }

    fn advert(version: Version, vrid: u8, priority: u8, interval: Duration) -> Vec<u8> {
        advert_from(SRC, version, vrid, priority, interval)
    }

    fn advert_from(
        src: Ipv4Addr,
        version: Version,
        vrid: u8,
        priority: u8,
        interval: Duration,
    ) -> Vec<u8> {
        Advert {
            version,
            vrid,
            priority,
            interval,
            addrs: vec!["192.0.2.10".parse().unwrap()],
        }
        .emit(
            IpAddr::V4(src),
            "224.0.0.18".parse().unwrap(),
            V3Checksum::Rfc5798,
        )
        .unwrap()
    }

    fn state(entries: Vec<VridEntry>) -> SocketState {
        let cfg = DataPlaneConfig {
            vrids: entries,
            vips: vec![],
        };
        SocketState {
            desired: cfg.desired().unwrap(),
            ..Default::default()
        }
    }

    fn entry(vrid: u8, version: u8) -> VridEntry {
        VridEntry {
            ifindex: IF,
            vrid,
            family: Family::V4,
            version,
            v2_adver_int: 1,
            local_priority: 100,
            deliver_all: false,
            unicast_peers: vec![],
            v2_auth_pass: None,
        }
    }

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    #[test]
    fn valid_advert_becomes_event_and_last_seen() {
        let mut st = state(vec![entry(51, 3)]);
        let f = frame_v4(
            SRC,
            255,
            &advert(Version::V3, 51, 120, Duration::from_millis(100)),
        );
        let ev = st.process(&f, IF, 1_000).expect("event");
        assert_eq!(ev.src, IpAddr::V4(SRC));
        assert_eq!(ev.src_mac, SRC_MAC);
        assert_eq!((ev.vrid, ev.priority), (51, 120));
        assert_eq!(ev.interval, Duration::from_millis(100));
        assert_eq!(ev.reason, event_reason::SOCKET | event_reason::FIRST);
        assert_eq!(ev.ts.as_nanos(), 1_000);
        // The second identical advert is still delivered (socket path), without FIRST.
        let ev2 = st.process(&f, IF, 2_000).expect("event");
        assert_eq!(ev2.reason, event_reason::SOCKET);
        let key = VridKey::new(IF, 51, FAMILY_V4);
        let ls = st.last_seen.get(&key).unwrap();
        assert_eq!((ls.ts_ns, ls.rx_total, ls.priority), (2_000, 2, 120));
        assert_eq!(st.counters.stat(Stat::AdvertsValid), 2);
        assert_eq!(st.counters.stat(Stat::EventsSent), 2);
        assert_eq!(st.vrids[&key].valid, 2);
    }

    #[test]
    fn interarrival_histogram_per_source() {
        let mut st = state(vec![entry(51, 3)]);
        let key = VridKey::new(IF, 51, FAMILY_V4);
        let a = frame_v4(
            SRC,
            255,
            &advert(Version::V3, 51, 120, Duration::from_millis(100)),
        );
        let other = Ipv4Addr::new(192, 0, 2, 2);
        let b = frame_v4(
            other,
            255,
            &advert_from(other, Version::V3, 51, 120, Duration::from_millis(100)),
        );
        const MS: u64 = 1_000_000;
        // The first advert is no observation; then 100 ms, 100 ms, 300 ms.
        for ts in [1_000 * MS, 1_100 * MS, 1_200 * MS, 1_500 * MS] {
            st.process(&a, IF, ts).expect("event");
        }
        // Not forward in time: no observation.
        st.process(&a, IF, 1_500 * MS).expect("event");
        // A new source starts a new series: its first gap (a failover) is
        // not observed, its second (3 s later) is.
        st.process(&b, IF, 2_000 * MS).expect("event");
        st.process(&b, IF, 5_000 * MS).expect("event");
        let ls = LastSeenInfo::from_raw(Family::V4, &st.last_seen[&key]).expect("decodes");
        let mut want = [0u64; vrrp_common::INTERARRIVAL_HIST_LEN];
        want[4] = 2; // <= 0.1 s
        want[6] = 1; // <= 0.5 s
        want[12] = 1; // <= 3 s
        assert_eq!(ls.hist_counts, want);
        assert_eq!(ls.hist_count(), 4);
        assert_eq!(ls.hist_sum_ns, 3_500 * MS);
        assert_eq!(ls.rx_total, 7);
    }

    #[test]
    fn drops_are_counted_by_reason() {
        let mut st = state(vec![entry(51, 3), entry(52, 2)]);
        let key51 = VridKey::new(IF, 51, FAMILY_V4);
        // TTL 254: off-link (RFC 9568 §7.1 item 1).
        let f = frame_v4(
            SRC,
            254,
            &advert(Version::V3, 51, 100, Duration::from_secs(1)),
        );
        assert!(st.process(&f, IF, 1).is_none());
        assert_eq!(st.counters.dropped(DropReason::Ttl), 1);
        assert_eq!(st.vrids[&key51].dropped(DropReason::Ttl), 1);
        // Corrupted checksum.
        let mut msg = advert(Version::V3, 51, 100, Duration::from_secs(1));
        msg[6] ^= 0xff;
        assert!(st.process(&frame_v4(SRC, 255, &msg), IF, 1).is_none());
        assert_eq!(st.counters.dropped(DropReason::Checksum), 1);
        // v2 advert for a VRID configured as v3.
        let f = frame_v4(
            SRC,
            255,
            &advert(Version::V2, 51, 100, Duration::from_secs(1)),
        );
        assert!(st.process(&f, IF, 1).is_none());
        assert_eq!(st.counters.dropped(DropReason::Version), 1);
        // v2 with a different Adver Int (RFC 3768 §7.1).
        let f = frame_v4(
            SRC,
            255,
            &advert(Version::V2, 52, 100, Duration::from_secs(2)),
        );
        assert!(st.process(&f, IF, 1).is_none());
        assert_eq!(st.counters.dropped(DropReason::Interval), 1);
        assert_eq!(st.counters.stat(Stat::AdvertsDropped), 4);
        assert_eq!(st.counters.stat(Stat::VrrpSeen), 4);
        assert!(st.last_seen.is_empty());
    }

    /// RFC 2338 §7.1, as the XDP program checks it: with a password, only
    /// type 1 and the same bytes pass; each mismatch is counted under its
    /// own reason and remembered with the peer's address.
    #[test]
    fn v2_password_checked_and_mismatch_named() {
        let mut e = entry(52, 2);
        e.v2_auth_pass = Some(*b"secret\0\0");
        let mut st = state(vec![e, entry(53, 2)]);
        let key52 = VridKey::new(IF, 52, FAMILY_V4);
        let with = |vrid: u8, pass: &[u8; 8]| {
            let mut m = advert(Version::V2, vrid, 100, Duration::from_secs(1));
            assert!(auth::set_password(&mut m, pass));
            frame_v4(SRC, 255, &m)
        };
        assert!(st.process(&with(52, b"Secret\0\0"), IF, 1).is_none());
        assert_eq!(st.counters.dropped(DropReason::Auth), 1);
        assert_eq!(st.vrids[&key52].dropped(DropReason::Auth), 1);
        let plain = frame_v4(
            SRC,
            255,
            &advert(Version::V2, 52, 100, Duration::from_secs(1)),
        );
        assert!(st.process(&plain, IF, 2).is_none());
        assert_eq!(st.vrids[&key52].dropped(DropReason::AuthType), 1);
        // A password where none is configured.
        assert!(st.process(&with(53, b"secret\0\0"), IF, 3).is_none());
        assert_eq!(st.counters.dropped(DropReason::AuthType), 2);
        let named = st.mismatches(key52);
        assert_eq!(
            named
                .iter()
                .map(|m| (m.reason, m.peer, m.count))
                .collect::<Vec<_>>(),
            vec![
                (DropReason::AuthType, IpAddr::V4(SRC), 1),
                (DropReason::Auth, IpAddr::V4(SRC), 1)
            ]
        );
        assert!(st.process(&with(52, b"secret\0\0"), IF, 4).is_some());
        assert_eq!(st.counters.stat(Stat::AdvertsValid), 1);
    }

    #[test]
    fn foreign_vrid_and_other_interfaces() {
        let mut st = state(vec![entry(51, 3)]);
        let f = frame_v4(
            SRC,
            255,
            &advert(Version::V3, 60, 100, Duration::from_secs(1)),
        );
        assert!(st.process(&f, IF, 1).is_none());
        assert_eq!(st.counters.stat(Stat::AdvertsForeign), 1);
        assert_eq!(st.vrids[&VridKey::new(IF, 60, FAMILY_V4)].foreign, 1);
        // Not an interface we listen on: not even counted.
        assert!(st.process(&f, IF + 1, 1).is_none());
        assert_eq!(st.counters.stat(Stat::VrrpSeen), 1);
    }

    #[test]
    fn peer_filter_and_reason_bits() {
        let mut e = entry(51, 3);
        e.unicast_peers = vec!["192.0.2.2".parse().unwrap()];
        e.deliver_all = true;
        let mut st = state(vec![e]);
        let f = frame_v4(
            SRC,
            255,
            &advert(Version::V3, 51, 100, Duration::from_secs(1)),
        );
        assert!(st.process(&f, IF, 1).is_none());
        assert_eq!(st.counters.dropped(DropReason::Peer), 1);
        let peer = Ipv4Addr::new(192, 0, 2, 2);
        let f = frame_v4(
            peer,
            255,
            &advert_from(peer, Version::V3, 51, 100, Duration::from_secs(1)),
        );
        let ev = st.process(&f, IF, 1).expect("peer accepted");
        assert_eq!(
            ev.reason & event_reason::DELIVER_ALL,
            event_reason::DELIVER_ALL
        );
        let f = frame_v4(
            peer,
            255,
            &advert_from(peer, Version::V3, 51, 0, Duration::from_secs(2)),
        );
        let ev = st.process(&f, IF, 2).expect("event");
        let want = event_reason::SOCKET
            | event_reason::DELIVER_ALL
            | event_reason::PRIORITY
            | event_reason::PRIORITY_ZERO
            | event_reason::INTERVAL;
        assert_eq!(ev.reason, want);
        assert_ne!(VRID_F_DELIVER_ALL, 0);
    }
}
