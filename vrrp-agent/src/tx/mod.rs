//! Transmit side: advertisements on a raw IP socket, gratuitous ARP /
//! unsolicited NA frames on a packet socket.
//!
//! Source MAC: RFC 9568 §7.3 says adverts and announcements come from the
//! virtual MAC 00-00-5E-00-01-{VRID}. keepalived without `use_vmac` sends from
//! the interface's own MAC and announces the VIPs with it; we do the same, so
//! a mixed keepalived / vrrp-agent pair behaves identically and no VMAC
//! interface is needed. The kernel therefore fills in the Ethernet header of
//! adverts (raw IP socket), and announcement frames carry the interface MAC.
//!
//! DSCP: adverts are network control traffic and are marked CS6 by default
//! (DSCP 48, TOS / Traffic Class byte 0xc0), as keepalived marks them, so a
//! congested queue that honours DSCP does not hold a healthy master's adverts
//! behind bulk traffic until its backups take over. GARP / NA frames are
//! layer 2 and carry no DSCP.
//!
//! Group membership: the data plane receives adverts below IP (XDP, or a
//! packet socket with a link-layer membership), which never makes the kernel
//! send an IGMP / MLD report. A switch or Linux bridge that snoops MLD (the
//! bridge default) with a querier present then does not forward ff02::12 to
//! our port and every router believes itself alone; for IGMP the same holds
//! on switches that snoop the link-local 224.0.0.x range (a Linux bridge
//! floods it). So each [`AdvertSender`] also holds the membership of
//! 224.0.0.18 or ff02::12 on its interface: the kernel sends the reports,
//! answers queries, and re-reports after a link flap (the membership belongs
//! to the interface, which keeps it across down/up). One UDP socket per
//! (network namespace, interface, family) joins, shared by the senders
//! there and closed (leaving the group) with the last of them, so 255 VRIDs
//! on a link cost one descriptor, not 255. A UDP socket that is bound to no
//! port receives nothing, so the membership costs no per-advert copy to
//! user space, and the raw advert socket is kept out of group delivery with
//! `IP*_MULTICAST_ALL` off.
//!
//! `advert` holds the advert sockets and the group memberships, `batch`
//! the batched sending and the cache of advert bytes, `frame` the
//! GARP / NA frame sender.

mod advert;
mod batch;
mod frame;
#[cfg(test)]
mod tests;

use std::{io, net::IpAddr};

pub use advert::AdvertSender;
pub use batch::{AdvertCache, Outgoing, send_batch};
pub use frame::{FrameSender, announce_frames};

/// TX socket failures.
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    /// Creating or configuring a socket failed.
    #[error("cannot set up {what} socket on {ifname}: {source}")]
    Setup {
        /// Which socket.
        what: &'static str,
        /// Interface.
        ifname: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Sending failed.
    #[error("send to {dst} failed: {source}")]
    Send {
        /// Destination (address or interface).
        dst: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The destination is of the other address family.
    #[error("cannot send to {dst}: the socket is {family}")]
    Family {
        /// Destination.
        dst: IpAddr,
        /// The socket's family.
        family: &'static str,
    },
}

/// DSCP of adverts unless configured otherwise: CS6, network control (RFC 4594).
pub const DEFAULT_ADVERT_DSCP: u8 = 48;

/// The IPv4 TOS / IPv6 Traffic Class byte for `dscp`: the DSCP in the upper
/// six bits, ECN (the lower two) left to the network. `dscp` above 63 is cut
/// to its six bits (the config rejects it before).
pub fn dscp_to_tos(dscp: u8) -> u8 {
    (dscp & 0x3f) << 2
}
