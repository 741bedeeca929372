//! Frame dissection on the receive side: an Ethernet frame (up to two VLAN
//! tags, IPv4 or IPv6) cut down to the IP context and the VRRP message
//! that [`Advert::parse`](super::Advert::parse) checks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vrrp_common::IPPROTO_VRRP;

use super::{RxError, RxMeta};
use crate::proto::checksum;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q C-tag, 802.1ad S-tag and the pre-standard QinQ tag.
const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88a8, 0x9100];
const ETH_HEADER_LEN: usize = 14;
const VLAN_TAG_LEN: usize = 4;
const MAX_VLAN_TAGS: usize = 2;
const IPV4_MIN_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Whole Ethernet frame -> (meta, VRRP message slice), for tests and the
/// socket path: up to 2 VLAN tags, IPv4 with options, IPv6 without extension
/// headers. The message is cut at the IP length; link-layer padding after
/// it is ignored. The IPv4 header checksum is verified.
///
/// Not an IPv4/IPv6 packet of protocol 112 (or more than two VLAN tags, or
/// an IPv6 extension header): [`RxError::Type`]. Truncated headers, lengths
/// beyond the frame, and IPv4 fragments (adverts are never fragmented and
/// are not reassembled): [`RxError::Length`].
pub fn split_frame(frame: &[u8]) -> Result<(RxMeta, &[u8]), RxError> {
    let mut ethertype = be16(frame, 12).ok_or(RxError::Length)?;
    let mut at = ETH_HEADER_LEN;
    let mut tags = 0;
    while ETHERTYPE_VLAN.contains(&ethertype) {
        if tags == MAX_VLAN_TAGS {
            return Err(RxError::Type);
        }
        ethertype = be16(frame, at + 2).ok_or(RxError::Length)?;
        at += VLAN_TAG_LEN;
        tags += 1;
    }
    let ip = frame.get(at..).ok_or(RxError::Length)?;
    match ethertype {
        ETHERTYPE_IPV4 => split_ipv4(ip),
        ETHERTYPE_IPV6 => split_ipv6(ip),
        _ => Err(RxError::Type),
    }
}

fn split_ipv4(ip: &[u8]) -> Result<(RxMeta, &[u8]), RxError> {
    if ip.len() < IPV4_MIN_HEADER_LEN {
        return Err(RxError::Length);
    }
    if ip[0] >> 4 != 4 {
        return Err(RxError::Type);
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ihl < IPV4_MIN_HEADER_LEN || total < ihl || total > ip.len() {
        return Err(RxError::Length);
    }
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    // More-fragments flag or a non-zero offset.
    if frag & 0x3fff != 0 {
        return Err(RxError::Length);
    }
    if ip[9] != IPPROTO_VRRP {
        return Err(RxError::Type);
    }
    if checksum::finish(checksum::sum(&ip[..ihl])) != 0 {
        return Err(RxError::Checksum);
    }
    let meta = RxMeta {
        src: IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])),
        dst: IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
        ttl: ip[8],
    };
    Ok((meta, &ip[ihl..total]))
}

fn split_ipv6(ip: &[u8]) -> Result<(RxMeta, &[u8]), RxError> {
    if ip.len() < IPV6_HEADER_LEN {
        return Err(RxError::Length);
    }
    if ip[0] >> 4 != 6 {
        return Err(RxError::Type);
    }
    let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    if IPV6_HEADER_LEN + payload > ip.len() {
        return Err(RxError::Length);
    }
    if ip[6] != IPPROTO_VRRP {
        return Err(RxError::Type);
    }
    let mut src = [0u8; 16];
    src.copy_from_slice(&ip[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&ip[24..40]);
    let meta = RxMeta {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        ttl: ip[7],
    };
    Ok((meta, &ip[IPV6_HEADER_LEN..IPV6_HEADER_LEN + payload]))
}
