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
mod handover;
pub mod mismatch;
mod socket;
mod stream;
mod sys;
mod xdp;

use std::{fmt, io};

pub use clock::{age, monotonic_now_ns, now};
pub use config::{DataPlaneConfig, Family, FamilyTag, VridEntry, vrid_key};
pub use counters::{Counters, LastSeenInfo, VipCounters, VridCounters};
pub use event::{DecodeError, Event, decode};
pub use handover::{PendingXdp, PreparedXdp};
pub use mismatch::PeerMismatch;
pub use socket::SocketDataPlane;
pub use stream::EventStream;
use stream::Inner;
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
        Ok(EventStream::new(match &mut self.path {
            Path::Xdp(x) => Inner::Ring(x.take_events()?),
            Path::Socket(s) => Inner::Socket(s.take_events()?),
        }))
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
