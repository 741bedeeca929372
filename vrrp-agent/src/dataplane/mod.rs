//! The agent side of the data plane: how adverts get from the wire to the
//! protocol core, and how the kernel's counters get back out.
//!
//! Two receive paths produce the same [`Event`]s and [`Counters`]:
//!
//! - [`XdpDataPlane`]: the XDP program (crate `vrrp-ebpf`) validates adverts
//!   in the driver, stamps them with `bpf_ktime_get_ns`, keeps `LAST_SEEN`
//!   per VRID and wakes the agent through the `EVENTS` ring buffer only when
//!   something changed (or `VRID_F_DELIVER_ALL` is set).
//! - [`SocketDataPlane`]: the fallback when XDP is off or unavailable. One
//!   AF_PACKET socket with a classic BPF filter receives every advert,
//!   validates it with the protocol codec and delivers each one (reason
//!   `SOCKET`), counting drops per [`vrrp_common::DropReason`] in userspace.
//!
//! [`DataPlane`] wraps either, so the daemon does not care which one runs.

mod clock;
mod config;
mod counters;
mod event;
pub mod mismatch;
mod socket;
mod sys;
mod xdp;

use std::{
    fmt, io,
    task::{Context, Poll},
};

pub use clock::{age, monotonic_now_ns, now};
pub use config::{DataPlaneConfig, Family, FamilyTag, VridEntry, vrid_key};
pub use counters::{Counters, LastSeenInfo, VipCounters, VridCounters};
pub use event::{DecodeError, Event, decode};
pub use mismatch::PeerMismatch;
pub use socket::SocketDataPlane;
pub use sys::{ifindex, ifname};
use tracing::{debug, info, warn};
pub use vrrp_common::VridKey;
pub use xdp::{XdpDataPlane, xdp_built_in};

/// Errors of the data plane.
#[derive(Debug, thiserror::Error)]
pub enum DataPlaneError {
    /// The binary was built with `AYA_BUILD_SKIP=1`.
    #[error(
        "built without XDP support (AYA_BUILD_SKIP): rebuild with the eBPF toolchain \
         (`cargo xtask setup`) or use xdp = \"off\""
    )]
    NotBuiltIn,
    /// The kernel refused the object (no CAP_BPF, verifier, old kernel).
    #[error(
        "loading the XDP object failed (needs root or CAP_BPF+CAP_NET_ADMIN, Linux >= 5.8): {0}"
    )]
    Load(#[source] Box<aya::EbpfError>),
    /// The object lacks a map the agent needs (program/agent mismatch).
    #[error("the XDP object has no map {0}: program and agent are out of sync")]
    MissingMap(&'static str),
    /// The object lacks the XDP program.
    #[error("the XDP object has no program {}", vrrp_common::XDP_PROGRAM)]
    MissingProgram,
    /// Loading or attaching the program failed.
    #[error("XDP program on {ifname:?}: {source}")]
    Program {
        /// Interface, empty for errors before attaching.
        ifname: String,
        /// The cause.
        #[source]
        source: aya::programs::ProgramError,
    },
    /// A map operation failed.
    #[error("map {map}: {source}")]
    Map {
        /// The map name.
        map: &'static str,
        /// The cause.
        #[source]
        source: aya::maps::MapError,
    },
    /// The configuration breaks a data-plane limit or rule.
    #[error("data plane configuration: {0}")]
    Config(String),
    /// A runtime update names a VRID that is not configured.
    #[error("VRID {} on ifindex {} (family {}) is not configured", .0.vrid, .0.ifindex, .0.family)]
    UnknownVrid(VridKey),
    /// [`DataPlane::events`] was already called.
    #[error("the event stream was already taken")]
    EventsTaken,
    /// A socket or system call failed.
    #[error("{0}: {1}")]
    Io(&'static str, #[source] io::Error),
}

/// The `xdp` setting of the configuration (`global.xdp`, `run --xdp`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpMode {
    /// Native mode, else generic (skb) mode, else the socket path with a
    /// warning.
    #[default]
    Auto,
    /// Native mode or fail.
    Driver,
    /// Generic (skb) mode or fail.
    Skb,
    /// No XDP: the socket path.
    Off,
}

impl std::str::FromStr for XdpMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(XdpMode::Auto),
            "driver" => Ok(XdpMode::Driver),
            "skb" => Ok(XdpMode::Skb),
            "off" => Ok(XdpMode::Off),
            _ => Err(format!("xdp mode {s:?}: expected auto, driver, skb or off")),
        }
    }
}

/// The receive path actually running (for status and logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActiveMode {
    /// Native XDP in the driver.
    Driver,
    /// Generic XDP (after the skb is built).
    Skb,
    /// The AF_PACKET socket path.
    Socket,
}

impl ActiveMode {
    /// `"driver"`, `"skb"` or `"socket"`, as in status JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActiveMode::Driver => "driver",
            ActiveMode::Skb => "skb",
            ActiveMode::Socket => "socket",
        }
    }
}

impl fmt::Display for ActiveMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Either receive path behind one interface.
///
/// In `auto` mode the daemon starts on the socket path and hands over to
/// XDP once the program is loaded ([`DataPlane::open_fast`],
/// [`DataPlane::switch_to_xdp`]); counters then continue from the socket
/// path's (never backwards).
pub struct DataPlane {
    path: Path,
    /// What the socket path counted before XDP took over: added to the
    /// program's counters. Per-VRID `valid` is not here: it lives in
    /// `LAST_SEEN`, which is carried over.
    base: Base,
}

enum Path {
    Xdp(Box<XdpDataPlane>),
    Socket(SocketDataPlane),
}

#[derive(Default)]
struct Base {
    counters: Counters,
    vrids: std::collections::HashMap<VridKey, VridCounters>,
}

impl Base {
    fn add(&self, key: VridKey, mut c: VridCounters) -> VridCounters {
        if let Some(b) = self.vrids.get(&key) {
            add_vrid(&mut c, b);
        }
        c
    }
}

fn add_vrid(c: &mut VridCounters, b: &VridCounters) {
    c.valid += b.valid;
    c.foreign += b.foreign;
    c.first_not_link_local += b.first_not_link_local;
    for (d, x) in c.drops.iter_mut().zip(b.drops) {
        *d += x;
    }
}

/// The XDP program being loaded, verified and attached in the background
/// (see [`DataPlane::open_fast`]).
pub struct PendingXdp {
    rx: tokio::sync::oneshot::Receiver<Result<PreparedXdp, DataPlaneError>>,
}

impl PendingXdp {
    /// The program, attached, its maps filled for the configuration given
    /// to [`DataPlane::open_fast`] and seeded from the socket path.
    /// Cancel-safe.
    pub async fn ready(&mut self) -> Result<PreparedXdp, DataPlaneError> {
        (&mut self.rx).await.unwrap_or(Err(DataPlaneError::Io(
            "XDP loader thread",
            io::Error::other("exited without an answer"),
        )))
    }
}

/// An attached XDP program ready to take over from the socket path
/// ([`DataPlane::switch_to_xdp`]); dropping it detaches it.
pub struct PreparedXdp {
    x: XdpDataPlane,
    /// The configuration its maps were filled for.
    cfg: DataPlaneConfig,
    /// The socket path's counters when the program took over its records.
    base: Base,
}

/// Loads the program, fills its maps for `cfg`, carries over the socket
/// path's `LAST_SEEN` records (newest advert, `rx_total`, inter-arrival
/// histogram) and attaches it. The socket path keeps running meanwhile.
fn prepare_xdp(
    cfg: &DataPlaneConfig,
    view: &socket::SocketView,
) -> Result<PreparedXdp, DataPlaneError> {
    let mut x = XdpDataPlane::load(XdpMode::Auto)?;
    x.apply_maps(cfg)?;
    let snap = view.snapshot();
    let mut base = Base {
        counters: snap.counters,
        vrids: snap.vrids,
    };
    for (key, rec) in &snap.last_seen {
        if x.seed_last_seen(*key, rec)?
            && let Some(c) = base.vrids.get_mut(key)
        {
            // Counted by LAST_SEEN.rx_total from now on.
            c.valid = 0;
        }
    }
    x.attach_all()?;
    Ok(PreparedXdp {
        x,
        cfg: cfg.clone(),
        base,
    })
}

impl DataPlane {
    fn socket(s: SocketDataPlane) -> Self {
        DataPlane {
            path: Path::Socket(s),
            base: Base::default(),
        }
    }

    /// Opens the data plane for `cfg` in `mode` and attaches it.
    ///
    /// `Driver`/`Skb` fail if XDP cannot be loaded or attached; `Auto` falls
    /// back to the socket path with a warning; `Off` opens the socket path.
    /// Must run inside the network namespace of the interfaces.
    pub fn open(cfg: &DataPlaneConfig, mode: XdpMode) -> Result<Self, DataPlaneError> {
        if mode == XdpMode::Off {
            return Ok(DataPlane::socket(SocketDataPlane::open(cfg)?));
        }
        let xdp = XdpDataPlane::load(mode).and_then(|mut x| {
            x.apply(cfg)?;
            Ok(x)
        });
        match (xdp, mode) {
            (Ok(x), _) => Ok(DataPlane {
                path: Path::Xdp(Box::new(x)),
                base: Base::default(),
            }),
            (Err(err), XdpMode::Auto) => {
                warn!(error = %err, "XDP unavailable; receiving adverts through sockets");
                Ok(DataPlane::socket(SocketDataPlane::open(cfg)?))
            }
            (Err(err), _) => Err(err),
        }
    }

    /// Like [`DataPlane::open`], but in `Auto` mode without waiting for
    /// the XDP program: loading and verifying it takes hundreds of
    /// milliseconds, the socket path a few. Opens the socket path at once
    /// and loads the program on a thread; hand the [`PendingXdp`]'s result
    /// to [`DataPlane::switch_to_xdp`]. `Driver`/`Skb` load synchronously
    /// (their errors must fail start-up) and `Off` never loads it: both
    /// return no [`PendingXdp`]. Needs a tokio runtime.
    pub fn open_fast(
        cfg: &DataPlaneConfig,
        mode: XdpMode,
    ) -> Result<(Self, Option<PendingXdp>), DataPlaneError> {
        if mode != XdpMode::Auto || !xdp_built_in() {
            return Ok((DataPlane::open(cfg, mode)?, None));
        }
        let socket = SocketDataPlane::open(cfg)?;
        let view = socket.view();
        let socket = DataPlane::socket(socket);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let cfg = cfg.clone();
        std::thread::Builder::new()
            .name("xdp-load".into())
            .spawn(move || {
                lower_priority();
                let t = std::time::Instant::now();
                let r = prepare_xdp(&cfg, &view);
                debug!(
                    ms = t.elapsed().as_secs_f64() * 1e3,
                    ok = r.is_ok(),
                    "XDP program loaded and attached"
                );
                // The daemon may have stopped: then the program is dropped.
                let _ = tx.send(r);
            })
            .map_err(|e| DataPlaneError::Io("XDP loader thread", e))?;
        Ok((socket, Some(PendingXdp { rx })))
    }

    /// Hands over from the socket path to the prepared program `p`, which
    /// then serves `cfg` (the configuration now, which may differ from the
    /// one it was loaded for). Returns the ring buffer's event stream.
    ///
    /// No advert is lost: the program was attached with each VRID's
    /// `LAST_SEEN` record carried over ([`PendingXdp`]), and the socket
    /// keeps receiving until the caller drops the socket path's
    /// [`EventStream`] after draining it: the program passes adverts on,
    /// so the socket sees every advert up to then (an advert of the overlap
    /// arrives twice, which the agent tolerates). The socket path's
    /// counters at the carry-over become the base of the program's, so no
    /// counter goes backwards; what the socket path counted later, during
    /// the overlap, is not added (a counter may miss the adverts of the
    /// overlap, never count one twice). The effective local priority of
    /// each VRID is the caller's to set again
    /// ([`DataPlane::set_local_priority`]). Quick: the slow parts
    /// (verifier, attach) are done.
    ///
    /// On error the socket path stays in place (and `p` is detached).
    pub fn switch_to_xdp(
        &mut self,
        p: PreparedXdp,
        cfg: &DataPlaneConfig,
    ) -> Result<EventStream, DataPlaneError> {
        if !matches!(self.path, Path::Socket(_)) {
            return Err(DataPlaneError::Config(
                "XDP hand-over: the data plane is not on the socket path".into(),
            ));
        }
        let PreparedXdp {
            mut x,
            cfg: loaded_for,
            mut base,
        } = p;
        // Map writes cost the loop time: only after a reload.
        if *cfg != loaded_for {
            x.apply(cfg)?;
        }
        let events = EventStream {
            inner: Inner::Ring(x.take_events()?),
            not_link_local: Default::default(),
        };
        let old = std::mem::replace(&mut self.path, Path::Xdp(Box::new(x)));
        if let Path::Socket(mut s) = old {
            s.shutdown();
        }
        add_counters(&mut base.counters, &self.base.counters);
        for (k, c) in &self.base.vrids {
            add_vrid(base.vrids.entry(*k).or_default(), c);
        }
        self.base = base;
        info!(mode = %self.mode(), "data plane handed over from sockets to XDP");
        Ok(events)
    }

    /// Applies a new configuration (reload).
    pub fn apply(&mut self, cfg: &DataPlaneConfig) -> Result<(), DataPlaneError> {
        match &mut self.path {
            Path::Xdp(x) => x.apply(cfg),
            Path::Socket(s) => s.apply(cfg),
        }
    }

    /// The path in use on each interface.
    pub fn attachments(&self) -> Vec<(u32, ActiveMode)> {
        match &self.path {
            Path::Xdp(x) => x.attachments(),
            Path::Socket(s) => s
                .interfaces()
                .into_iter()
                .map(|i| (i, ActiveMode::Socket))
                .collect(),
        }
    }

    /// The overall mode: the XDP mode of the first interface, or socket.
    pub fn mode(&self) -> ActiveMode {
        match &self.path {
            Path::Xdp(x) => x.mode(),
            Path::Socket(_) => ActiveMode::Socket,
        }
    }

    /// The event stream. Call once, inside a tokio runtime.
    pub fn events(&mut self) -> Result<EventStream, DataPlaneError> {
        Ok(EventStream {
            inner: match &mut self.path {
                Path::Xdp(x) => Inner::Ring(x.take_events()?),
                Path::Socket(s) => Inner::Socket(s.take_events()?),
            },
            not_link_local: Default::default(),
        })
    }

    /// Sets or clears "deliver every advert" for one VRID.
    pub fn set_deliver_all(&mut self, key: VridKey, on: bool) -> Result<(), DataPlaneError> {
        match &mut self.path {
            Path::Xdp(x) => x.set_deliver_all(key, on),
            Path::Socket(s) => s.set_deliver_all(key, on),
        }
    }

    /// Records the current effective priority of one VRID.
    pub fn set_local_priority(&mut self, key: VridKey, priority: u8) -> Result<(), DataPlaneError> {
        match &mut self.path {
            Path::Xdp(x) => x.set_local_priority(key, priority),
            Path::Socket(s) => s.set_local_priority(key, priority),
        }
    }

    /// Global counters.
    pub fn counters(&self) -> Result<Counters, DataPlaneError> {
        let mut c = match &self.path {
            Path::Xdp(x) => x.counters()?,
            Path::Socket(s) => s.counters(),
        };
        add_counters(&mut c, &self.base.counters);
        Ok(c)
    }

    /// Counters of one VRID, if it was ever seen.
    pub fn vrid_counters(&self, key: VridKey) -> Result<Option<VridCounters>, DataPlaneError> {
        let c = match &self.path {
            Path::Xdp(x) => x.vrid_counters(key)?,
            Path::Socket(s) => s.vrid_counters(key),
        };
        Ok(match c {
            Some(c) => Some(self.base.add(key, c)),
            None => self.base.vrids.get(&key).copied(),
        })
    }

    /// Counters of every VRID seen on the attached interfaces, configured
    /// or foreign.
    pub fn all_vrid_counters(&self) -> Result<Vec<(VridKey, VridCounters)>, DataPlaneError> {
        let mut all = match &self.path {
            Path::Xdp(x) => x.all_vrid_counters()?,
            Path::Socket(s) => s.all_vrid_counters(),
        };
        for (k, c) in &mut all {
            *c = self.base.add(*k, *c);
        }
        for (k, b) in &self.base.vrids {
            if !all.iter().any(|(o, _)| o == k) {
                all.push((*k, *b));
            }
        }
        Ok(all)
    }

    /// VIP traffic counters (zero on the socket path, which sees no VIP traffic).
    pub fn vip_counters(&self) -> Result<Vec<VipCounters>, DataPlaneError> {
        match &self.path {
            Path::Xdp(x) => x.vip_counters(),
            Path::Socket(s) => Ok(s.vip_counters()),
        }
    }

    /// The newest valid advert for a configured VRID (for the Master_Down
    /// deadline check).
    pub fn last_seen(&self, key: VridKey) -> Result<Option<LastSeenInfo>, DataPlaneError> {
        match &self.path {
            Path::Xdp(x) => x.last_seen(key),
            Path::Socket(s) => Ok(s.last_seen(key)),
        }
    }

    /// Peers whose adverts for a configured VRID are dropped, by reason
    /// (see [`mismatch`]).
    pub fn peer_mismatches(&self, key: VridKey) -> Result<Vec<PeerMismatch>, DataPlaneError> {
        match &self.path {
            Path::Xdp(x) => x.peer_mismatches(key),
            Path::Socket(s) => Ok(s.peer_mismatches(key)),
        }
    }

    /// Warns about peers whose adverts are dropped (rate-limited; the XDP
    /// path looks at its map every few seconds, the socket path warns as it
    /// drops). Cheap to call often.
    pub fn warn_mismatches(&mut self) {
        if let Path::Xdp(x) = &mut self.path {
            x.warn_mismatches();
        }
    }

    /// Detaches and closes everything (also done on drop).
    pub fn shutdown(&mut self) {
        match &mut self.path {
            Path::Xdp(x) => x.shutdown(),
            Path::Socket(s) => s.shutdown(),
        }
    }
}

/// Makes the calling thread yield the CPU to the daemon's (nice 19): the
/// election runs on the socket path while the program is relocated and
/// verified, which is seconds of CPU on a busy machine, and a starved
/// election misses adverts (a false Master_Down at 10 ms adverts).
fn lower_priority() {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    // SAFETY: plain syscall on this thread's id; no memory is passed.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid.cast_unsigned(), 19) };
    if r != 0 {
        debug!(error = %io::Error::last_os_error(), "cannot lower the XDP loader's priority");
    }
}

fn add_counters(c: &mut Counters, b: &Counters) {
    for (x, y) in c.stats.iter_mut().zip(b.stats) {
        *x += y;
    }
    for (x, y) in c.drops.iter_mut().zip(b.drops) {
        *x += y;
    }
}

/// The XDP objects embedded at build time by `build.rs` (both empty when
/// built with `AYA_BUILD_SKIP=1`).
pub mod objects {
    /// The data-plane program (`vrrp_xdp`).
    pub static VRRP: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vrrp"));
    /// An empty XDP_PASS program built the same way (`vrrp_baseline`): the
    /// benchmark's baseline. A few hundred bytes.
    pub static BASELINE: &[u8] =
        aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vrrp-baseline"));
}

enum Inner {
    Ring(xdp::RingEvents),
    Socket(socket::SocketEvents),
}

/// The stream of [`Event`]s from either path.
pub struct EventStream {
    inner: Inner,
    /// Peers already warned about for a first IPv6 address that is not
    /// link-local (warned once each; bounded by [`mismatch::MAX_ENTRIES`]).
    not_link_local: std::collections::HashSet<(u32, u8, std::net::IpAddr)>,
}

impl EventStream {
    /// Polls for the next event.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event, DataPlaneError>> {
        let r = match &mut self.inner {
            Inner::Ring(r) => r.poll_recv(cx),
            Inner::Socket(s) => s.poll_recv(cx),
        };
        if let Poll::Ready(Ok(ev)) = &r {
            self.warn_not_link_local(ev);
        }
        r
    }

    /// Warns once per peer about adverts accepted without a link-local
    /// first IPv6 address (every new sender wakes the agent, so each is
    /// seen here at least once).
    fn warn_not_link_local(&mut self, ev: &Event) {
        let Some(std::net::IpAddr::V6(first)) = ev.addrs.first() else {
            return;
        };
        if first.segments()[0] & 0xffc0 == 0xfe80
            || self.not_link_local.len() >= mismatch::MAX_ENTRIES
            || !self.not_link_local.insert((ev.ifindex, ev.vrid, ev.src))
        {
            return;
        }
        warn!(
            vrid = ev.vrid,
            ifindex = ev.ifindex,
            peer = %ev.src,
            "adverts from {} for VRID {} list {first} first, not a link-local address \
             (RFC 9568 §5.2.9; keepalived runs such configs with a warning): accepted and \
             counted as rx_first_not_link_local; warned once per peer",
            ev.src,
            ev.vrid
        );
    }

    /// The next event. Cancel-safe: an event is only removed when returned.
    pub async fn recv(&mut self) -> Result<Event, DataPlaneError> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl futures::Stream for EventStream {
    type Item = Result<Event, DataPlaneError>;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use vrrp_common::{DropReason, Stat};

    use super::*;

    /// After the hand-over the program's counters start from zero; the
    /// socket path's are added, so status never goes backwards.
    #[test]
    fn counters_continue_from_the_socket_path() {
        let mut socket = Counters::default();
        socket.bump(Stat::AdvertsValid);
        socket.bump_drop(DropReason::Version);
        let mut xdp = Counters::default();
        xdp.bump(Stat::AdvertsValid);
        add_counters(&mut xdp, &socket);
        assert_eq!(xdp.stat(Stat::AdvertsValid), 2);
        assert_eq!(xdp.dropped(DropReason::Version), 1);
        assert_eq!(xdp.stat(Stat::AdvertsDropped), 1);

        let key = VridKey::new(3, 51, vrrp_common::FAMILY_V4);
        let mut before = VridCounters {
            foreign: 2,
            ..VridCounters::default()
        };
        before.drops[DropReason::Ttl as usize] = 4;
        let base = Base {
            counters: socket,
            vrids: [(key, before)].into_iter().collect(),
        };
        let after = base.add(
            key,
            VridCounters {
                valid: 7,
                foreign: 1,
                ..VridCounters::default()
            },
        );
        assert_eq!((after.valid, after.foreign), (7, 3));
        assert_eq!(after.dropped(DropReason::Ttl), 4);
        let other = VridKey::new(3, 52, vrrp_common::FAMILY_V4);
        assert_eq!(
            base.add(other, VridCounters::default()),
            VridCounters::default()
        );
    }
}
