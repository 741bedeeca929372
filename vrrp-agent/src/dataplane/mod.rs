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
use tracing::warn;
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
pub enum DataPlane {
    /// The XDP program.
    Xdp(Box<XdpDataPlane>),
    /// The socket fallback.
    Socket(SocketDataPlane),
}

impl DataPlane {
    /// Opens the data plane for `cfg` in `mode` and attaches it.
    ///
    /// `Driver`/`Skb` fail if XDP cannot be loaded or attached; `Auto` falls
    /// back to the socket path with a warning; `Off` opens the socket path.
    /// Must run inside the network namespace of the interfaces.
    pub fn open(cfg: &DataPlaneConfig, mode: XdpMode) -> Result<Self, DataPlaneError> {
        if mode == XdpMode::Off {
            return Ok(DataPlane::Socket(SocketDataPlane::open(cfg)?));
        }
        let xdp = XdpDataPlane::load(mode).and_then(|mut x| {
            x.apply(cfg)?;
            Ok(x)
        });
        match (xdp, mode) {
            (Ok(x), _) => Ok(DataPlane::Xdp(Box::new(x))),
            (Err(err), XdpMode::Auto) => {
                warn!(error = %err, "XDP unavailable; receiving adverts through sockets");
                Ok(DataPlane::Socket(SocketDataPlane::open(cfg)?))
            }
            (Err(err), _) => Err(err),
        }
    }

    /// Applies a new configuration (reload).
    pub fn apply(&mut self, cfg: &DataPlaneConfig) -> Result<(), DataPlaneError> {
        match self {
            DataPlane::Xdp(x) => x.apply(cfg),
            DataPlane::Socket(s) => s.apply(cfg),
        }
    }

    /// The path in use on each interface.
    pub fn attachments(&self) -> Vec<(u32, ActiveMode)> {
        match self {
            DataPlane::Xdp(x) => x.attachments(),
            DataPlane::Socket(s) => s
                .interfaces()
                .into_iter()
                .map(|i| (i, ActiveMode::Socket))
                .collect(),
        }
    }

    /// The overall mode: the XDP mode of the first interface, or socket.
    pub fn mode(&self) -> ActiveMode {
        match self {
            DataPlane::Xdp(x) => x.mode(),
            DataPlane::Socket(_) => ActiveMode::Socket,
        }
    }

    /// The event stream. Call once, inside a tokio runtime.
    pub fn events(&mut self) -> Result<EventStream, DataPlaneError> {
        Ok(EventStream {
            inner: match self {
                DataPlane::Xdp(x) => Inner::Ring(x.take_events()?),
                DataPlane::Socket(s) => Inner::Socket(s.take_events()?),
            },
            not_link_local: Default::default(),
        })
    }

    /// Sets or clears "deliver every advert" for one VRID.
    pub fn set_deliver_all(&mut self, key: VridKey, on: bool) -> Result<(), DataPlaneError> {
        match self {
            DataPlane::Xdp(x) => x.set_deliver_all(key, on),
            DataPlane::Socket(s) => s.set_deliver_all(key, on),
        }
    }

    /// Records the current effective priority of one VRID.
    pub fn set_local_priority(&mut self, key: VridKey, priority: u8) -> Result<(), DataPlaneError> {
        match self {
            DataPlane::Xdp(x) => x.set_local_priority(key, priority),
            DataPlane::Socket(s) => s.set_local_priority(key, priority),
        }
    }

    /// Global counters.
    pub fn counters(&self) -> Result<Counters, DataPlaneError> {
        match self {
            DataPlane::Xdp(x) => x.counters(),
            DataPlane::Socket(s) => Ok(s.counters()),
        }
    }

    /// Counters of one VRID, if it was ever seen.
    pub fn vrid_counters(&self, key: VridKey) -> Result<Option<VridCounters>, DataPlaneError> {
        match self {
            DataPlane::Xdp(x) => x.vrid_counters(key),
            DataPlane::Socket(s) => Ok(s.vrid_counters(key)),
        }
    }

    /// Counters of every VRID seen on the attached interfaces, configured
    /// or foreign.
    pub fn all_vrid_counters(&self) -> Result<Vec<(VridKey, VridCounters)>, DataPlaneError> {
        match self {
            DataPlane::Xdp(x) => x.all_vrid_counters(),
            DataPlane::Socket(s) => Ok(s.all_vrid_counters()),
        }
    }

    /// VIP traffic counters (zero on the socket path, which sees no VIP traffic).
    pub fn vip_counters(&self) -> Result<Vec<VipCounters>, DataPlaneError> {
        match self {
            DataPlane::Xdp(x) => x.vip_counters(),
            DataPlane::Socket(s) => Ok(s.vip_counters()),
        }
    }

    /// The newest valid advert for a configured VRID (for the Master_Down
    /// deadline check).
    pub fn last_seen(&self, key: VridKey) -> Result<Option<LastSeenInfo>, DataPlaneError> {
        match self {
            DataPlane::Xdp(x) => x.last_seen(key),
            DataPlane::Socket(s) => Ok(s.last_seen(key)),
        }
    }

    /// Peers whose adverts for a configured VRID are dropped, by reason
    /// (see [`mismatch`]).
    pub fn peer_mismatches(&self, key: VridKey) -> Result<Vec<PeerMismatch>, DataPlaneError> {
        match self {
            DataPlane::Xdp(x) => x.peer_mismatches(key),
            DataPlane::Socket(s) => Ok(s.peer_mismatches(key)),
        }
    }

    /// Warns about peers whose adverts are dropped (rate-limited; the XDP
    /// path looks at its map every few seconds, the socket path warns as it
    /// drops). Cheap to call often.
    pub fn warn_mismatches(&mut self) {
        if let DataPlane::Xdp(x) = self {
            x.warn_mismatches();
        }
    }

    /// Detaches and closes everything (also done on drop).
    pub fn shutdown(&mut self) {
        match self {
            DataPlane::Xdp(x) => x.shutdown(),
            DataPlane::Socket(s) => s.shutdown(),
        }
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
