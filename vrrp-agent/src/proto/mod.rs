//! The VRRP protocol core: wire codec and state machine. Pure and
//! deterministic: no sockets, no clocks, no tokio. Inputs are
//! `handle_*(now, ..)` calls, outputs are polled ([`VirtualRouter::poll_action`],
//! [`VirtualRouter::poll_timeout`]).
//!
//! - [`packet`]: the advert on the wire (RFC 3768 §5, RFC 9568 §5) and its
//!   receive checks (RFC 9568 §7.1).
//! - [`checksum`]: RFC 1071 and the pseudo-headers.
//! - [`auth`]: VRRPv2 simple text password (RFC 2338 §5.3.6).
//! - [`announce`]: gratuitous ARP / unsolicited NA frames.
//! - [`router`]: the election state machine (RFC 3768 §6, RFC 9568 §6).
//! - [`time`]: nanosecond instants; all timers are kept in ns.

pub mod announce;
pub mod auth;
pub mod checksum;
pub mod packet;
pub mod router;
pub mod time;

pub use announce::{gratuitous_arp, unsolicited_na, virtual_mac};
pub use packet::{
    Advert, ChecksumForm, EmitError, Family, Packet, RxError, RxMeta, V3Checksum, Version,
    split_frame,
};
pub use router::{Action, RouterConfig, RxAdvert, State, VirtualRouter};
pub use time::Instant;
