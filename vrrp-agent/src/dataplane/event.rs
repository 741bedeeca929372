//! The typed advert event both receive paths produce.

use std::{mem::size_of, net::IpAddr, time::Duration};

use vrrp_common::{AdvertEvent, ChecksumForm, FAMILY_V4, FAMILY_V6, VridKey};

use super::config::{Family, FamilyTag, addr_from_bytes, vrid_key};
use crate::proto::{RxAdvert, Version, packet::interval_from_wire, time::Instant};

/// One valid VRRP advertisement, as delivered to the daemon by either the
/// XDP ring buffer or the socket fallback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Receive time on `CLOCK_MONOTONIC` (XDP: `bpf_ktime_get_ns`; socket:
    /// the kernel's `SO_TIMESTAMPNS`, mapped from `CLOCK_REALTIME`).
    pub ts: Instant,
    /// Interface it arrived on.
    pub ifindex: u32,
    /// Address family of the IP header.
    pub family: Family,
    /// Sender IP address.
    pub src: IpAddr,
    /// Sender MAC address.
    pub src_mac: [u8; 6],
    /// VRRP version.
    pub version: Version,
    /// Virtual router id.
    pub vrid: u8,
    /// Advertised priority (0 = the master resigns).
    pub priority: u8,
    /// Advertised interval, decoded once from the wire field (v2 seconds,
    /// v3 centiseconds) by the codec's [`interval_from_wire`].
    pub interval: Duration,
    /// Count IPvX Addr as on the wire.
    pub count: u8,
    /// The advertised addresses; the XDP path copies at most
    /// [`vrrp_common::EVENT_ADDR_BYTES`] bytes of them, so this may hold
    /// fewer than `count`.
    pub addrs: Vec<IpAddr>,
    /// The checksum form that verified, if known.
    pub checksum_form: Option<ChecksumForm>,
    /// Why the agent was woken: [`vrrp_common::event_reason`] bits.
    pub reason: u8,
    /// Receive time of the advert this one replaced as the VRID's newest
    /// (`None` for the first, and on the socket path, which delivers every
    /// advert). The XDP path suppresses adverts identical to their
    /// predecessor, so this may be an advert the agent never saw: it must
    /// account for it (same content as the last one it saw, this time)
    /// before handling this event.
    pub prev_ts: Option<Instant>,
}

impl Event {
    /// The map key of the VRID this advert belongs to.
    pub fn key(&self) -> VridKey {
        vrid_key(self.ifindex, self.vrid, self.family)
    }

    /// What the protocol core needs from this advert.
    pub fn rx_advert(&self) -> RxAdvert {
        RxAdvert {
            src: self.src,
            priority: self.priority,
            interval: self.interval,
            version: self.version,
        }
    }

    /// Whether the event came from the socket fallback.
    pub const fn from_socket(&self) -> bool {
        self.reason & vrrp_common::event_reason::SOCKET != 0
    }
}

pub(crate) fn checksum_form_from_u8(v: u8) -> Option<ChecksumForm> {
    match v {
        1 => Some(ChecksumForm::MessageOnly),
        2 => Some(ChecksumForm::PseudoHeader),
        _ => None,
    }
}

/// Why a ring-buffer record could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The record is shorter than an [`AdvertEvent`].
    #[error("ring buffer record of {0} bytes, expected {len}", len = size_of::<AdvertEvent>())]
    Short(usize),
    /// The family tag is neither 4 nor 6.
    #[error("ring buffer record with unknown address family {0}")]
    Family(u8),
    /// The version is neither 2 nor 3.
    #[error("ring buffer record with unknown VRRP version {0}")]
    Version(u8),
}

/// Decodes one ring-buffer record. The bytes come from the kernel but are
/// checked anyway: a program/agent mismatch must not become garbage events.
pub fn decode(record: &[u8]) -> Result<Event, DecodeError> {
    if record.len() < size_of::<AdvertEvent>() {
        return Err(DecodeError::Short(record.len()));
    }
    // SAFETY: the length was checked above, AdvertEvent is plain-old-data
    // (repr(C), integers and byte arrays only), and read_unaligned copes
    // with the ring buffer's 8-byte record alignment being irrelevant.
    let raw: AdvertEvent = unsafe { core::ptr::read_unaligned(record.as_ptr().cast()) };
    let family = Family::from_tag(raw.family).ok_or(DecodeError::Family(raw.family))?;
    let src = addr_from_bytes(raw.family, &raw.src_ip).ok_or(DecodeError::Family(raw.family))?;
    let width = if raw.family == FAMILY_V4 { 4 } else { 16 };
    let copied = usize::from(raw.addrs_copied).min(raw.addrs.len() / width);
    let addrs = raw.addrs[..copied * width]
        .chunks_exact(width)
        .filter_map(|c| match raw.family {
            FAMILY_V4 => Some(IpAddr::from([c[0], c[1], c[2], c[3]])),
            FAMILY_V6 => <[u8; 16]>::try_from(c).ok().map(IpAddr::from),
            _ => None,
        })
        .collect();
    let version = Version::from_number(raw.version).ok_or(DecodeError::Version(raw.version))?;
    Ok(Event {
        ts: Instant::from_nanos(raw.ts_ns),
        ifindex: raw.ifindex,
        family,
        src,
        src_mac: raw.src_mac,
        version,
        vrid: raw.vrid,
        priority: raw.priority,
        interval: interval_from_wire(version, raw.interval),
        count: raw.count,
        addrs,
        checksum_form: checksum_form_from_u8(raw.checksum_form),
        reason: raw.reason,
        prev_ts: (raw.prev_ts_ns != 0).then(|| Instant::from_nanos(raw.prev_ts_ns)),
    })
}

#[cfg(test)]
mod tests {
    use vrrp_common::{EVENT_ADDR_BYTES, event_reason};

    use super::*;

    fn raw_v4() -> AdvertEvent {
        let mut addrs = [0u8; EVENT_ADDR_BYTES];
        addrs[..8].copy_from_slice(&[192, 0, 2, 10, 192, 0, 2, 11]);
        let mut src_ip = [0u8; 16];
        src_ip[..4].copy_from_slice(&[192, 0, 2, 1]);
        AdvertEvent {
            ts_ns: 42,
            ifindex: 7,
            family: FAMILY_V4,
            version: 3,
            vrid: 51,
            priority: 100,
            count: 2,
            checksum_form: 2,
            addrs_copied: 2,
            reason: event_reason::FIRST,
            interval: 100,
            src_mac: [2, 0, 0, 0, 0, 1],
            src_ip,
            _pad: [0; 4],
            prev_ts_ns: 0,
            addrs,
        }
    }

    fn bytes(e: &AdvertEvent) -> Vec<u8> {
        // SAFETY: AdvertEvent is repr(C) plain data without implicit padding.
        unsafe {
            core::slice::from_raw_parts(
                (e as *const AdvertEvent).cast::<u8>(),
                size_of::<AdvertEvent>(),
            )
        }
        .to_vec()
    }

    #[test]
    fn decodes_v4_record() {
        let ev = decode(&bytes(&raw_v4())).unwrap();
        assert_eq!(ev.src, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(ev.addrs.len(), 2);
        assert_eq!(ev.addrs[1], "192.0.2.11".parse::<IpAddr>().unwrap());
        assert_eq!(ev.interval, Duration::from_secs(1));
        assert_eq!(ev.checksum_form, Some(ChecksumForm::PseudoHeader));
        assert_eq!(ev.key(), VridKey::new(7, 51, FAMILY_V4));
        assert!(!ev.from_socket());
        let rx = ev.rx_advert();
        assert_eq!(
            (rx.src, rx.priority, rx.version),
            (ev.src, 100, Version::V3)
        );
        assert_eq!(rx.interval, Duration::from_secs(1));
        assert_eq!(ev.prev_ts, None);
        let mut r = raw_v4();
        r.prev_ts_ns = 40;
        assert_eq!(
            decode(&bytes(&r)).unwrap().prev_ts,
            Some(Instant::from_nanos(40))
        );
    }

    #[test]
    fn clamps_addrs_copied_and_rejects_garbage() {
        let mut r = raw_v4();
        r.addrs_copied = 200;
        assert_eq!(
            decode(&bytes(&r)).unwrap().addrs.len(),
            EVENT_ADDR_BYTES / 4
        );
        r.family = 9;
        assert_eq!(decode(&bytes(&r)), Err(DecodeError::Family(9)));
        let mut r = raw_v4();
        r.version = 4;
        assert_eq!(decode(&bytes(&r)), Err(DecodeError::Version(4)));
        assert_eq!(decode(&[0u8; 3]), Err(DecodeError::Short(3)));
    }

    /// The kernel's newest-advert record converts with the codec's units
    /// (v3 centiseconds, v2 seconds) and the IPv4 address in the first
    /// four bytes; an unknown version is no advert.
    #[test]
    fn last_seen_record_decodes_with_the_codec_units() {
        use super::super::counters::LastSeenInfo;
        let mut ls = vrrp_common::LastSeen {
            priority: 150,
            version: 3,
            interval: 50,
            ..Default::default()
        };
        ls.src_ip[..4].copy_from_slice(&[192, 0, 2, 50]);
        let rx = LastSeenInfo::from_raw(Family::V4, &ls).unwrap().rx_advert();
        assert_eq!(
            rx,
            RxAdvert {
                src: "192.0.2.50".parse().unwrap(),
                priority: 150,
                interval: Duration::from_millis(500),
                version: Version::V3,
            }
        );
        ls.version = 2;
        ls.interval = 2;
        let v2 = LastSeenInfo::from_raw(Family::V4, &ls).unwrap();
        assert_eq!(v2.interval, Duration::from_secs(2));
        ls.version = 4;
        assert_eq!(LastSeenInfo::from_raw(Family::V4, &ls), None);
    }
}
