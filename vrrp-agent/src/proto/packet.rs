//! The VRRP advertisement on the wire: VRRPv2 (RFC 3768 §5) and VRRPv3
//! (RFC 9568 §5, formerly RFC 5798), IPv4 and IPv6.
//!
//! Two layers, as in smoltcp: [`Packet`] is a zero-copy view with checked
//! length and non-panicking field accessors; [`Advert`] is the semantic form
//! the election uses, with the interval already converted to a [`Duration`].
//! Seconds (v2) and centiseconds (v3) exist only in this file.
//!
//! # Length and trailing bytes
//!
//! A VRRP message must be *exactly* `8 + count * address_length` bytes long,
//! plus 8 bytes of authentication data for v2 (RFC 9568 §7.1 item 4;
//! RFC 3768 §5.3.10). keepalived 2.2.7 sends exactly that (see
//! `tests/fixtures/README.md`), so a longer message is a
//! [`RxError::Length`] drop rather than silently ignored bytes: extra bytes
//! would be covered by the checksum and could hide a count that disagrees
//! with the address list. Bytes after the end of the *IP packet* (Ethernet
//! padding of short frames) are not part of the message: [`split_frame`]
//! cuts the message at the IP length and ignores them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

pub use vrrp_common::ChecksumForm;
use vrrp_common::DropReason;

mod frame;
mod view;

pub use frame::split_frame;
pub use view::Packet;

/// Length of the fixed VRRP header, both versions.
pub const HEADER_LEN: usize = 8;
/// Length of the VRRPv2 authentication data that follows the addresses.
pub const V2_AUTH_DATA_LEN: usize = 8;
/// Type field of an ADVERTISEMENT, the only type defined (RFC 9568 §5.2.2).
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// TTL / Hop Limit every advert is sent with and must arrive with
/// (RFC 9568 §5.1.1.3, §7.1 item 1).
pub const VRRP_TTL: u8 = 255;
/// IPv4 multicast destination of adverts (RFC 9568 §5.1.1.2).
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast destination of adverts (RFC 9568 §5.1.2.2).
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Largest v3 Max Adver Int: 12 bits of centiseconds (RFC 9568 §5.2.7).
pub const V3_MAX_ADVER_INT_CS: u16 = 0x0fff;

const CENTISECOND: Duration = Duration::from_millis(10);

/// VRRP protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// VRRPv2, RFC 3768: IPv4 only, interval in seconds.
    V2,
    /// VRRPv3, RFC 5798 / RFC 9568: IPv4 and IPv6, interval in centiseconds.
    V3,
}

impl Version {
    /// The number in the Version field.
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// The version for a Version field value, `None` unless 2 or 3.
    pub const fn from_number(n: u8) -> Option<Version> {
        match n {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }
}

/// Address family of a virtual router.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4: 4-byte addresses.
    V4,
    /// IPv6: 16-byte addresses.
    V6,
}

impl Family {
    /// Bytes per address in the advert.
    pub const fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    /// The family of `addr`.
    pub const fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// How a VRRPv3 IPv4 advert's checksum is computed on transmit
/// (SPEC `v3_checksum`). Receive accepts both. v2 and IPv6 ignore it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum V3Checksum {
    /// Message plus the IPv4 pseudo-header (RFC 5798 §5.2.8): what
    /// keepalived (without `v3_checksum_as_v2`) and FRR send by default.
    #[default]
    Rfc5798,
    /// Message only (RFC 9568 §5.2.8), as Cisco and Juniper compute it.
    Rfc9568,
}

/// A received advert failed one of the RFC 9568 §7.1 checks. Each variant
/// maps to one [`DropReason`] so the socket path and the XDP program count
/// drops alike.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxError {
    /// TTL / Hop Limit is not 255 (§7.1 item 1).
    #[error("TTL/hop limit is not 255 (advert from off-link or forwarded)")]
    Ttl,
    /// Version is neither 2 nor 3 (item 2).
    #[error("VRRP version is neither 2 nor 3")]
    Version,
    /// Type is not ADVERTISEMENT (item 3). [`split_frame`] also reports
    /// frames that are not IP protocol 112 this way: they are not adverts.
    #[error("not a VRRP ADVERTISEMENT (type, EtherType or IP protocol)")]
    Type,
    /// Shorter than the fixed header, or not exactly the length the count
    /// implies (item 4); also truncated or fragmented IP headers.
    #[error("length does not match the address count")]
    Length,
    /// The checksum verifies in no accepted form (item 5).
    #[error("checksum does not verify")]
    Checksum,
    /// Interval field is zero (item 8, RFC 9568 erratum 8301).
    #[error("advertisement interval is zero")]
    Interval,
    /// Count IPvX Addr is zero (item 8, erratum 8299).
    #[error("address count is zero")]
    Count,
    /// IP source and destination families differ, or VRRPv2 over IPv6.
    #[error("address family does not match the IP header or the version")]
    Family,
    /// The first IPv6 address is not link-local (item 8, erratum 8300).
    #[error("first IPv6 address is not link-local")]
    LinkLocal,
    /// VRRPv2 Auth Type is neither 0 (RFC 3768) nor 1 (RFC 2338 simple
    /// password).
    #[error("VRRPv2 authentication type is neither 0 nor 1")]
    AuthType,
}

impl RxError {
    /// The drop counter this error is counted under.
    pub fn reason(self) -> DropReason {
        match self {
            RxError::Ttl => DropReason::Ttl,
            RxError::Version => DropReason::Version,
            RxError::Type => DropReason::Type,
            RxError::Length => DropReason::Length,
            RxError::Checksum => DropReason::Checksum,
            RxError::Interval => DropReason::Interval,
            RxError::Count => DropReason::Count,
            RxError::Family => DropReason::Family,
            RxError::LinkLocal => DropReason::LinkLocal,
            RxError::AuthType => DropReason::AuthType,
        }
    }
}

/// An [`Advert`] cannot be put on the wire as it is.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitError {
    /// Source, destination and addresses are not all of one family, or v2
    /// with IPv6.
    #[error("advert addresses, source and destination must share one family (VRRPv2 is IPv4 only)")]
    Family,
    /// No addresses, or more than 255.
    #[error("an advert carries 1..=255 addresses")]
    Count,
    /// The interval has no wire form: v2 needs whole seconds 1..=255, v3
    /// 10 ms steps from 10 ms to 40.95 s.
    #[error("interval not representable (v2: 1..=255 s; v3: 10 ms..40.95 s in 10 ms steps)")]
    Interval,
    /// VRID 0 does not exist (RFC 9568 §5.2.3).
    #[error("VRID must be 1..=255")]
    Vrid,
}

/// Semantic advert. `interval` is converted from v2 seconds / v3
/// centiseconds here and nowhere else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    /// Protocol version.
    pub version: Version,
    /// Virtual Router ID.
    pub vrid: u8,
    /// Priority: 255 owner, 1..=254 backup, 0 resigning master.
    pub priority: u8,
    /// v2 Adver Int / v3 Max Adver Int.
    pub interval: Duration,
    /// The virtual addresses, all of the IP header's family.
    pub addrs: Vec<IpAddr>,
}

/// Receive-side IP context of an advert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxMeta {
    /// IP source: the sender's primary address.
    pub src: IpAddr,
    /// IP destination: the VRRP group or a unicast peer address.
    pub dst: IpAddr,
    /// TTL / Hop Limit as received.
    pub ttl: u8,
}

/// True for fe80::/10.
fn is_link_local_v6(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

impl Advert {
    /// Every RFC 9568 §7.1 check that needs no election state; returns the
    /// checksum form that verified.
    ///
    /// Checks in order: TTL, version, type, family (source and destination
    /// agree; v2 is IPv4 only), exact length, checksum, v2 auth type,
    /// interval non-zero, count non-zero.
    /// Left to the caller: whether the VRID is configured, whether the
    /// version matches the configured one, and the v2 interval-equality
    /// check (the [`VirtualRouter`](super::VirtualRouter) discards those).
    ///
    /// v3 IPv4 is accepted with either checksum form; RFC 5798 (with the
    /// pseudo-header) is tried first since keepalived and FRR send it.
    /// v2 Auth Type 0 and 1 pass; whether it and the authentication data
    /// match the configuration is [`super::auth::check`]'s call.
    pub fn parse(meta: &RxMeta, vrrp_msg: &[u8]) -> Result<(Advert, ChecksumForm), RxError> {
        if meta.ttl != VRRP_TTL {
            return Err(RxError::Ttl);
        }
        let packet = Packet::new_checked(vrrp_msg)?;
        let version = Version::from_number(packet.version()).ok_or(RxError::Version)?;
        if packet.msg_type() != TYPE_ADVERTISEMENT {
            return Err(RxError::Type);
        }
        let family = Family::of(meta.src);
        if family != Family::of(meta.dst) || (version == Version::V2 && family == Family::V6) {
            return Err(RxError::Family);
        }
        if packet.len() != packet.expected_len(family) {
            return Err(RxError::Length);
        }
        let form = match (version, family) {
            (Version::V2, _) => packet
                .verify_message_checksum()
                .then_some(ChecksumForm::MessageOnly),
            (Version::V3, Family::V6) => packet
                .verify_pseudo_header_checksum(meta.src, meta.dst)
                .then_some(ChecksumForm::PseudoHeader),
            (Version::V3, Family::V4) => {
                if packet.verify_pseudo_header_checksum(meta.src, meta.dst) {
                    Some(ChecksumForm::PseudoHeader)
                } else if packet.verify_message_checksum() {
                    Some(ChecksumForm::MessageOnly)
                } else {
                    None
                }
            }
        }
        .ok_or(RxError::Checksum)?;
        let raw_interval = match version {
            Version::V2 => {
                // 0, or 1 (simple password, RFC 2338; `auth` checks it
                // against the configuration).
                if packet.v2_auth_type() > vrrp_common::V2_AUTH_PASS {
                    return Err(RxError::AuthType);
                }
                u16::from(packet.v2_adver_int())
            }
            Version::V3 => packet.v3_max_adver_int(),
        };
        let interval = interval_from_wire(version, raw_interval);
        if interval.is_zero() {
            return Err(RxError::Interval);
        }
        if packet.count() == 0 {
            return Err(RxError::Count);
        }
        let addr_bytes = &packet.body()[..usize::from(packet.count()) * family.addr_len()];
        let addrs: Vec<IpAddr> = match family {
            Family::V4 => addr_bytes
                .chunks_exact(4)
                .map(|c| IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])))
                .collect(),
            Family::V6 => addr_bytes
                .chunks_exact(16)
                .map(|c| {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(c);
                    IpAddr::V6(Ipv6Addr::from(o))
                })
                .collect(),
        };
        // RFC 9568 §5.2.9's link-local first address is not required on
        // receive (see `Advert::first_is_link_local`): keepalived runs
        // configs without one, and dropping them splits a mixed pair.
        let advert = Advert {
            version,
            vrid: packet.vrid(),
            priority: packet.priority(),
            interval,
            addrs,
        };
        Ok((advert, form))
    }

    /// Whether the first address is link-local, as RFC 9568 §5.2.9 wants
    /// of IPv6 adverts (always `true` for IPv4). We send it so; we accept
    /// adverts without it and let the data plane count them.
    pub fn first_is_link_local(&self) -> bool {
        match self.addrs.first() {
            Some(IpAddr::V6(a)) => is_link_local_v6(a),
            _ => true,
        }
    }

    /// Bytes of the VRRP message (checksum filled in), to be sent from
    /// `src` to `dst` with TTL 255. `v3_checksum` picks the VRRPv3 IPv4
    /// checksum form; IPv6 always includes the pseudo-header and v2 never
    /// does. v3 reserved bits and v2 authentication data are zero.
    pub fn emit(
        &self,
        src: IpAddr,
        dst: IpAddr,
        v3_checksum: V3Checksum,
    ) -> Result<Vec<u8>, EmitError> {
        let family = Family::of(src);
        if family != Family::of(dst)
            || self.addrs.iter().any(|a| Family::of(*a) != family)
            || (self.version == Version::V2 && family == Family::V6)
        {
            return Err(EmitError::Family);
        }
        let count = u8::try_from(self.addrs.len()).map_err(|_| EmitError::Count)?;
        if count == 0 {
            return Err(EmitError::Count);
        }
        if self.vrid == 0 {
            return Err(EmitError::Vrid);
        }
        // A global first IPv6 address (not RFC 9568 §5.2.9) is sent as
        // configured: `check` warns; it is how a pair with a keepalived
        // peer listing only global VIPs agrees (keepalived compares the
        // address count and every address).
        let trailer = match self.version {
            Version::V2 => V2_AUTH_DATA_LEN,
            Version::V3 => 0,
        };
        let len = HEADER_LEN + usize::from(count) * family.addr_len() + trailer;
        let mut packet = Packet::new_unchecked(vec![0u8; len]);
        packet.set_version_type(self.version.number(), TYPE_ADVERTISEMENT);
        packet.set_vrid(self.vrid);
        packet.set_priority(self.priority);
        packet.set_count(count);
        match self.version {
            Version::V2 => {
                packet.set_v2_auth_type(0);
                packet
                    .set_v2_adver_int(v2_interval_secs(self.interval).ok_or(EmitError::Interval)?);
            }
            Version::V3 => {
                packet.set_v3_max_adver_int(
                    v3_interval_centis(self.interval).ok_or(EmitError::Interval)?,
                );
            }
        }
        let mut at = 0;
        for addr in &self.addrs {
            let body = packet.body_mut();
            match addr {
                IpAddr::V4(a) => body[at..at + 4].copy_from_slice(&a.octets()),
                IpAddr::V6(a) => body[at..at + 16].copy_from_slice(&a.octets()),
            }
            at += family.addr_len();
        }
        let pseudo_header = match (self.version, family, v3_checksum) {
            (Version::V2, ..) | (Version::V3, Family::V4, V3Checksum::Rfc9568) => None,
            (Version::V3, Family::V6, _) | (Version::V3, Family::V4, V3Checksum::Rfc5798) => {
                Some((src, dst))
            }
        };
        packet.fill_checksum(pseudo_header);
        Ok(packet.into_inner())
    }
}

/// The v2 Adver Int for `interval`: whole seconds 1..=255.
pub fn v2_interval_secs(interval: Duration) -> Option<u8> {
    if interval.subsec_nanos() != 0 {
        return None;
    }
    u8::try_from(interval.as_secs()).ok().filter(|s| *s != 0)
}

/// The v3 Max Adver Int for `interval`: centiseconds 1..=4095.
pub fn v3_interval_centis(interval: Duration) -> Option<u16> {
    let ns = interval.as_nanos();
    let cs_ns = CENTISECOND.as_nanos();
    if !ns.is_multiple_of(cs_ns) {
        return None;
    }
    u16::try_from(ns / cs_ns)
        .ok()
        .filter(|cs| (1..=V3_MAX_ADVER_INT_CS).contains(cs))
}

/// The raw wire field for `interval` in `version` (v2 seconds, v3
/// centiseconds), `None` if it has no exact encoding.
pub fn interval_to_wire(version: Version, interval: Duration) -> Option<u16> {
    match version {
        Version::V2 => v2_interval_secs(interval).map(u16::from),
        Version::V3 => v3_interval_centis(interval),
    }
}

/// The interval a raw wire field stands for (v2 seconds, v3 centiseconds):
/// the one decoder of the interval, used by the codec and by the data plane
/// for the kernel's records.
pub fn interval_from_wire(version: Version, raw: u16) -> Duration {
    match version {
        Version::V2 => Duration::from_secs(u64::from(raw)),
        Version::V3 => CENTISECOND * u32::from(raw & V3_MAX_ADVER_INT_CS),
    }
}
