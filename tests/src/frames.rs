//! Frame builders for the XDP tests: Ethernet (with VLAN tags), IPv4 (with
//! options), IPv6, VRRP v2/v3 adverts, ARP, ICMPv6 neighbour solicitations,
//! UDP.
//!
//! Written from the RFCs, independently of the XDP program (and of the
//! agent's codec), so that a checksum bug on one side is not mirrored here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// 802.1Q customer tag.
pub const TPID_8021Q: u16 = 0x8100;
/// 802.1ad service tag.
pub const TPID_8021AD: u16 = 0x88a8;
/// IPv4 ethertype.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// IPv6 ethertype.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// ARP ethertype.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// VRRP's IP protocol number.
pub const PROTO_VRRP: u8 = 112;
/// UDP's IP protocol number.
pub const PROTO_UDP: u8 = 17;
/// ICMPv6's next-header number.
pub const PROTO_ICMPV6: u8 = 58;

/// RFC 1071 Internet checksum over the concatenation of `parts` (each part
/// must have even length except the last).
pub fn inet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let bytes: Vec<u8> = parts.concat();
    for pair in bytes.chunks(2) {
        let hi = pair[0] as u32;
        let lo = pair.get(1).copied().unwrap_or(0) as u32;
        sum += (hi << 8) | lo;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Ethernet II frame, with `vlans` tags (TPID, VID) outermost first.
pub fn ethernet(
    dst: [u8; 6],
    src: [u8; 6],
    vlans: &[(u16, u16)],
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(22 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for &(tpid, vid) in vlans {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 packet with a correct header checksum. `options` must be a multiple
/// of 4 bytes (at most 40).
pub fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    proto: u8,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    assert!(
        options.len().is_multiple_of(4) && options.len() <= 40,
        "bad IPv4 options length"
    );
    let hlen = 20 + options.len();
    let total = (hlen + payload.len()) as u16;
    let mut h = Vec::with_capacity(hlen + payload.len());
    h.push(0x40 | (hlen / 4) as u8);
    h.push(0xc0); // DSCP CS6, as VRRP senders use
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0x40, 0x00]); // id, DF
    h.push(ttl);
    h.push(proto);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(options);
    let c = inet_checksum(&[&h]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// IPv6 packet (no extension headers).
pub fn ipv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    next_header: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut h = Vec::with_capacity(40 + payload.len());
    h.extend_from_slice(&[0x6c, 0, 0, 0]); // version 6, traffic class CS6
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.push(next_header);
    h.push(hop_limit);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(payload);
    h
}

/// IPv4 pseudo-header for an upper-layer length (RFC 768 / RFC 5798 §5.2.8).
fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(12);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.push(0);
    p.push(proto);
    p.extend_from_slice(&(len as u16).to_be_bytes());
    p
}

/// IPv6 pseudo-header (RFC 8200 §8.1).
fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(40);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&(len as u32).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, next_header]);
    p
}

/// Which checksum an advert carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// Over the message only (v2; v3 IPv4 per RFC 9568).
    MessageOnly,
    /// Over the IP pseudo-header and the message (v3 IPv4 per RFC 5798; v3 IPv6).
    PseudoHeader,
    /// The correct value for the natural form, plus one: never verifies.
    Corrupt,
}

/// A VRRP advertisement, field by field, so tests can break any one of them.
#[derive(Clone, Debug)]
pub struct Advert {
    /// Version nibble.
    pub version: u8,
    /// Type nibble (1 = ADVERTISEMENT).
    pub kind: u8,
    /// Virtual router id.
    pub vrid: u8,
    /// Priority.
    pub priority: u8,
    /// Count field; `None` writes the number of `addrs`.
    pub count: Option<u8>,
    /// v2 Auth Type.
    pub auth_type: u8,
    /// v2 Authentication Data (after the addresses).
    pub auth_data: [u8; 8],
    /// v2 Adver Int (seconds, 8 bits) or v3 Max Adver Int (centiseconds, 12 bits).
    pub interval: u16,
    /// Addresses, each 4 or 16 bytes on the wire.
    pub addrs: Vec<IpAddr>,
    /// Checksum to write.
    pub checksum: Checksum,
    /// Extra bytes appended after the message (inside the IP payload).
    pub trailer: Vec<u8>,
}

impl Advert {
    /// VRRPv2 advert (Adver Int 1 s, message-only checksum).
    pub fn v2(vrid: u8, priority: u8, addrs: &[Ipv4Addr]) -> Self {
        Self {
            version: 2,
            kind: 1,
            vrid,
            priority,
            count: None,
            auth_type: 0,
            auth_data: [0; 8],
            interval: 1,
            addrs: addrs.iter().map(|a| IpAddr::V4(*a)).collect(),
            checksum: Checksum::MessageOnly,
            trailer: Vec::new(),
        }
    }

    /// VRRPv3 advert (100 cs); IPv4 uses the RFC 5798 pseudo-header form
    /// unless changed, IPv6 always does.
    pub fn v3(vrid: u8, priority: u8, addrs: &[IpAddr]) -> Self {
        Self {
            version: 3,
            kind: 1,
            vrid,
            priority,
            count: None,
            auth_type: 0,
            auth_data: [0; 8],
            interval: 100,
            addrs: addrs.to_vec(),
            checksum: Checksum::PseudoHeader,
            trailer: Vec::new(),
        }
    }

    /// The VRRP message as sent from `src` to `dst` (for the pseudo-header).
    pub fn message(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let mut m = vec![
            (self.version << 4) | (self.kind & 0x0f),
            self.vrid,
            self.priority,
            self.count.unwrap_or(self.addrs.len() as u8),
        ];
        if self.version == 2 {
            m.push(self.auth_type);
            m.push(self.interval as u8);
        } else {
            m.extend_from_slice(&(self.interval & 0x0fff).to_be_bytes());
        }
        m.extend_from_slice(&[0, 0]);
        for a in &self.addrs {
            match a {
                IpAddr::V4(a) => m.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => m.extend_from_slice(&a.octets()),
            }
        }
        if self.version == 2 {
            m.extend_from_slice(&self.auth_data);
        }
        let pseudo = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => pseudo_v4(s, d, PROTO_VRRP, m.len()),
            (IpAddr::V6(s), IpAddr::V6(d)) => pseudo_v6(s, d, PROTO_VRRP, m.len()),
            _ => panic!("mixed address families"),
        };
        let c = match self.checksum {
            Checksum::MessageOnly => inet_checksum(&[&m]),
            Checksum::PseudoHeader => inet_checksum(&[&pseudo, &m]),
            Checksum::Corrupt => {
                let natural = if self.version == 2 {
                    inet_checksum(&[&m])
                } else {
                    inet_checksum(&[&pseudo, &m])
                };
                natural.wrapping_add(1)
            }
        };
        m[6..8].copy_from_slice(&c.to_be_bytes());
        m.extend_from_slice(&self.trailer);
        m
    }
}

/// The virtual MAC of a VRID (RFC 9568 §7.3).
pub fn vmac(family_v6: bool, vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, if family_v6 { 2 } else { 1 }, vrid]
}

/// IPv4 multicast group of VRRP.
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP.
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// Ethernet + IP envelope of an advert.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// VLAN tags, outermost first.
    pub vlans: Vec<(u16, u16)>,
    /// Source address (its family picks IPv4 or IPv6).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// TTL / hop limit.
    pub ttl: u8,
    /// IPv4 options (multiple of 4 bytes).
    pub ip_options: Vec<u8>,
    /// Ethernet padding after the IP datagram.
    pub padding: usize,
}

impl Envelope {
    /// 192.0.2.1 -> 224.0.0.18, TTL 255, from the VRID's virtual MAC.
    pub fn v4(vrid: u8) -> Self {
        Self {
            src_mac: vmac(false, vrid),
            vlans: Vec::new(),
            src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            dst: IpAddr::V4(VRRP_GROUP_V4),
            ttl: 255,
            ip_options: Vec::new(),
            padding: 0,
        }
    }

    /// fe80::1 -> ff02::12, hop limit 255, from the VRID's virtual MAC.
    pub fn v6(vrid: u8) -> Self {
        Self {
            src_mac: vmac(true, vrid),
            vlans: Vec::new(),
            src: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
            dst: IpAddr::V6(VRRP_GROUP_V6),
            ttl: 255,
            ip_options: Vec::new(),
            padding: 0,
        }
    }

    /// The whole frame carrying `advert`.
    pub fn frame(&self, advert: &Advert) -> Vec<u8> {
        let msg = advert.message(self.src, self.dst);
        let (ethertype, ip, dst_mac) = match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => (
                ETHERTYPE_IPV4,
                ipv4(s, d, self.ttl, PROTO_VRRP, &self.ip_options, &msg),
                [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12],
            ),
            (IpAddr::V6(s), IpAddr::V6(d)) => (
                ETHERTYPE_IPV6,
                ipv6(s, d, self.ttl, PROTO_VRRP, &msg),
                [0x33, 0x33, 0x00, 0x00, 0x00, 0x12],
            ),
            _ => panic!("mixed address families"),
        };
        let mut f = ethernet(dst_mac, self.src_mac, &self.vlans, ethertype, &ip);
        f.resize(f.len() + self.padding, 0);
        f
    }
}

/// A MAC for ordinary hosts in tests.
pub const HOST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
/// Another host MAC.
pub const ROUTER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

/// UDP datagram (checksum zero: allowed for IPv4, irrelevant to XDP here).
pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// Ethernet frame with a UDP packet from `src` to `dst` (either family).
pub fn udp_frame(src: IpAddr, dst: IpAddr, payload_len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
    let dgram = udp(40000, 5001, &payload);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ethernet(
            ROUTER_MAC,
            HOST_MAC,
            &[],
            ETHERTYPE_IPV4,
            &ipv4(s, d, 64, PROTO_UDP, &[], &dgram),
        ),
        (IpAddr::V6(s), IpAddr::V6(d)) => ethernet(
            ROUTER_MAC,
            HOST_MAC,
            &[],
            ETHERTYPE_IPV6,
            &ipv6(s, d, 64, PROTO_UDP, &dgram),
        ),
        _ => panic!("mixed address families"),
    }
}

/// ARP packet (Ethernet/IPv4, RFC 826) in a broadcast frame; `oper` 1 =
/// request, 2 = reply.
pub fn arp_frame(oper: u16, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut a = Vec::with_capacity(28);
    a.extend_from_slice(&1u16.to_be_bytes());
    a.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    a.push(6);
    a.push(4);
    a.extend_from_slice(&oper.to_be_bytes());
    a.extend_from_slice(&HOST_MAC);
    a.extend_from_slice(&sender.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target.octets());
    let mut f = ethernet([0xff; 6], HOST_MAC, &[], ETHERTYPE_ARP, &a);
    f.resize(60, 0); // minimum Ethernet frame without FCS
    f
}

/// Solicited-node multicast address of `a` (RFC 4291 §2.7.1).
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | o[13] as u16,
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// ICMPv6 neighbour solicitation for `target` (RFC 4861 §4.3) sent to its
/// solicited-node group, with a source link-layer address option.
pub fn ns_frame(src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let dst = solicited_node(target);
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[1, 1]);
    icmp.extend_from_slice(&HOST_MAC);
    let c = inet_checksum(&[&pseudo_v6(src, dst, PROTO_ICMPV6, icmp.len()), &icmp]);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let o = dst.octets();
    let dst_mac = [0x33, 0x33, o[12], o[13], o[14], o[15]];
    ethernet(
        dst_mac,
        HOST_MAC,
        &[],
        ETHERTYPE_IPV6,
        &ipv6(src, dst, 255, PROTO_ICMPV6, &icmp),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3 example: the sum of 0001 f203 f4f5 f6f7 is ddf2.
    #[test]
    fn checksum_rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(inet_checksum(&[&data]), !0xddf2);
    }

    #[test]
    fn message_checksums_verify() {
        let a = Advert::v2(7, 100, &[Ipv4Addr::new(192, 0, 2, 10)]);
        let e = Envelope::v4(7);
        let m = a.message(e.src, e.dst);
        assert_eq!(m.len(), 20);
        assert_eq!(inet_checksum(&[&m]), 0);
    }
}
