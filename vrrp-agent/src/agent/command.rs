//! What the agent asks the shell to do, and the inputs it takes from it.

use std::{ffi::OsString, fmt, net::IpAddr, time::Duration};

use crate::{
    config::VirtualIp,
    proto::{Advert, Family, Instant, RxAdvert, State, V3Checksum},
};

/// A stable handle of one instance, valid from [`super::Agent::add_instance`]
/// until its [`Command::Forget`]. The shell keys its I/O resources (advert
/// socket, announcement task, data-plane key) by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(pub(crate) u64);

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What the shell resolved about an instance's interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub ifindex: u32,
    /// Operationally up.
    pub up: bool,
    /// Advert source: the primary IPv4 address, or the IPv6 link-local
    /// address (RFC 9568 §5.1.1.1, §5.1.2.1); `None` while the interface
    /// has none (no IPv4 address yet, link-local address tentative).
    pub source: Option<IpAddr>,
}

/// One advert from the data plane, as the agent needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertIn {
    /// Interface it arrived on.
    pub ifindex: u32,
    /// Virtual router id.
    pub vrid: u8,
    /// Kernel receive time.
    pub ts: Instant,
    /// Receive time of the advert this one replaced as the VRID's newest,
    /// possibly never delivered (the XDP path suppresses repeats).
    pub prev_ts: Option<Instant>,
    /// Its content.
    pub advert: RxAdvert,
}

/// The newest advert the data plane saw for a VRID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeenAdvert {
    /// Kernel receive time.
    pub ts: Instant,
    /// Its content.
    pub advert: RxAdvert,
}

/// Read access to the data plane's `LAST_SEEN` record: the newest valid
/// advert of every configured VRID, kept even for adverts that raised no
/// event. The shell implements it over the data plane; tests fake it.
pub trait LastSeen {
    /// The newest advert for VRID `vrid` of `family` on `ifindex`, if any.
    fn last_seen(&self, ifindex: u32, vrid: u8, family: Family) -> Option<SeenAdvert>;
}

/// Something the shell must do, in the order polled. Each command carries
/// what it needs, so it can be carried out after its instance is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Send `advert` (already built, priority 0 on resign) to every
    /// destination.
    SendAdvert {
        /// The instance.
        id: InstanceId,
        /// The advert.
        advert: Advert,
        /// The VRRP group, or the unicast peers.
        dsts: Vec<IpAddr>,
        /// Checksum form of v3 IPv4 adverts.
        checksum: V3Checksum,
    },
    /// The protocol state changed (for the log; the counters are kept here).
    StateChanged {
        /// The instance.
        id: InstanceId,
        /// Previous state.
        from: State,
        /// New state.
        to: State,
        /// Effective priority.
        priority: u8,
        /// The master followed now, if known.
        master: Option<IpAddr>,
    },
    /// Record the effective priority in the data plane.
    SetLocalPriority {
        /// The instance.
        id: InstanceId,
        /// The priority.
        priority: u8,
    },
    /// Run a notify command (asynchronously, after the ones queued before
    /// on the same queue).
    Notify {
        /// The queue: the instance's name, or `group <name>`.
        queue: String,
        /// The new state, for the log.
        state: String,
        /// Program and arguments.
        argv: Vec<OsString>,
    },
    /// Tracking changed an instance's effective priority, FAULT cause or
    /// INIT hold (for the log).
    Tracking {
        /// The instance.
        id: InstanceId,
        /// The effective priority.
        effective_priority: u8,
        /// Why tracking holds it in FAULT.
        fault: Option<String>,
        /// A weight-0 check has no result yet.
        pending: bool,
        /// Every track with an effect.
        reasons: Vec<String>,
    },
    /// Add the VIPs, sending each one's first gratuitous ARP / unsolicited
    /// NA as soon as netlink has added it (never before: clients would move
    /// to a host that drops their packets).
    AddVips {
        /// The instance.
        id: InstanceId,
        /// The addresses.
        vips: Vec<VirtualIp>,
    },
    /// Run the GARP/NA burst in the background.
    Announce {
        /// The instance.
        id: InstanceId,
        /// The addresses.
        vips: Vec<VirtualIp>,
        /// Rounds to send in all.
        repeat: u32,
        /// Spacing of the rounds.
        interval: Duration,
        /// [`Command::AddVips`] just sent round one: start at round two.
        first_round_sent: bool,
    },
    /// Remove these VIPs (and stop a running announcement).
    RemoveVips {
        /// The instance.
        id: InstanceId,
        /// The addresses.
        vips: Vec<VirtualIp>,
    },
    /// Add back a VIP someone else removed while we are MASTER.
    RestoreVip {
        /// The instance.
        id: InstanceId,
        /// The address.
        vip: VirtualIp,
    },
    /// Set or clear the data plane's "deliver every advert" flag; after
    /// setting it, call [`super::Agent::handle_deliver_all_set`].
    SetDeliverAll {
        /// The instance.
        id: InstanceId,
        /// The flag.
        on: bool,
    },
    /// The set of instances changed: apply [`super::Agent::instances`] to
    /// the data plane.
    ApplyDataPlane,
    /// The instance is gone: release its I/O resources.
    Forget {
        /// The instance.
        id: InstanceId,
    },
}
