//! The types at the core's edges: its [`State`], its [`RouterConfig`], the
//! [`RxAdvert`] it is fed and the [`Action`]s it emits.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::proto::packet::{Advert, Family, RxMeta, Version};

/// Protocol state of a virtual router.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum State {
    /// Configured, not started (RFC 9568 "Initialize").
    #[default]
    Init,
    /// Monitoring the master.
    Backup,
    /// Forwarding for the virtual addresses (RFC 9568 "Active").
    Master,
    /// The interface is down: no adverts, no VIPs.
    Fault,
    /// Stopped after a graceful shutdown.
    Stop,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
            State::Stop => "STOP",
        })
    }
}

/// The settings of one virtual router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    /// Virtual Router ID, 1..=255.
    pub vrid: u8,
    /// VRRP version spoken and accepted.
    pub version: Version,
    /// Address family of the virtual addresses.
    pub family: Family,
    /// 1..=255, 255 = address owner.
    pub priority: u8,
    /// Advertisement_Interval: v2 whole seconds, v3 10 ms steps.
    pub advert_interval: Duration,
    /// Preempt_Mode: a higher-priority Backup takes over from a lower Master.
    pub preempt: bool,
    /// Wait this long before preempting a lower-priority master (see the
    /// module documentation).
    pub preempt_delay: Duration,
    /// Accept_Mode (v3): a non-owner Master accepts packets to the VIPs.
    pub accept_mode: bool,
    /// Our advert source address; used for the tie-break.
    pub primary_addr: IpAddr,
}

/// What the core needs from a received advert (built from an `Advert` +
/// `RxMeta` here, or by the data plane from the kernel's records).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxAdvert {
    /// The sender's primary address (IP source).
    pub src: IpAddr,
    /// Advertised priority.
    pub priority: u8,
    /// Advertised interval (v2 Adver Int / v3 Max Adver Int).
    pub interval: Duration,
    /// Advert version.
    pub version: Version,
}

impl RxAdvert {
    /// From an advert parsed by the socket path.
    pub fn from_parsed(meta: &RxMeta, advert: &Advert) -> Self {
        Self {
            src: meta.src,
            priority: advert.priority,
            interval: advert.interval,
            version: advert.version,
        }
    }
}

/// Something the daemon must do, in the order polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send one advert now with this priority (0 on resign).
    SendAdvert {
        /// Priority field of the advert.
        priority: u8,
    },
    /// Send the GARP/NA burst for all VIPs.
    Announce,
    /// Configure the VIPs (and the VMAC) on the interface.
    AddVips,
    /// Remove the VIPs from the interface.
    RemoveVips,
    /// The protocol state changed.
    StateChange {
        /// Previous state.
        from: State,
        /// New state.
        to: State,
    },
}
