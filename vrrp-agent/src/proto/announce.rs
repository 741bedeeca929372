//! Frames that tell the LAN where the virtual addresses live now: a
//! gratuitous ARP per IPv4 VIP and an unsolicited Neighbor Advertisement per
//! IPv6 VIP (RFC 9568 §6.4.1, §6.4.2, §8.1.2, §8.2.2).
//!
//! Built with `pnet_packet`; the result is a whole Ethernet frame for a
//! packet socket. Frames are not padded to 60 bytes: the NIC does that.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pnet_packet::MutablePacket;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{MutableNeighborAdvertPacket, NdpOptionTypes, NeighborAdvertFlags};
use pnet_packet::icmpv6::{self, Icmpv6Code, Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::MutableIpv6Packet;

// The builders below size their buffers first; pnet's `new` only returns
// None for a buffer shorter than the header, so those `None`s cannot happen.

const ETH_LEN: usize = 14;
const ARP_LEN: usize = 28;
const IPV6_LEN: usize = 40;
/// NA header (24) + Target Link-Layer Address option (8).
const NA_LEN: usize = 24 + 8;
const BROADCAST: [u8; 6] = [0xff; 6];
/// ff02::1, all-nodes.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// 33:33 + low 32 bits of ff02::1 (RFC 2464 §7).
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

/// The virtual MAC of a virtual router: `00-00-5E-00-01-{VRID}` for IPv4,
/// `00-00-5E-00-02-{VRID}` for IPv6 (RFC 9568 §7.3).
pub fn virtual_mac(vrid: u8, ipv6: bool) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid]
}

/// Gratuitous ARP request: broadcast, sender IP = target IP = vip, sender
/// MAC = mac (RFC 9568 errata 7947/7949; RFC 5227 §3 "ARP Announcement").
/// The target hardware address is zero, as RFC 5227 asks.
pub fn gratuitous_arp(mac: [u8; 6], vip: Ipv4Addr) -> Vec<u8> {
    let mut frame = vec![0u8; ETH_LEN + ARP_LEN];
    {
        let mut arp =
            MutableArpPacket::new(&mut frame[ETH_LEN..]).unwrap_or_else(|| unreachable!());
        arp.set_hardware_type(ArpHardwareTypes::Ethernet);
        arp.set_protocol_type(EtherTypes::Ipv4);
        arp.set_hw_addr_len(6);
        arp.set_proto_addr_len(4);
        arp.set_operation(ArpOperations::Request);
        arp.set_sender_hw_addr(mac.into());
        arp.set_sender_proto_addr(vip);
        arp.set_target_hw_addr([0u8; 6].into());
        arp.set_target_proto_addr(vip);
    }
    write_ethernet(&mut frame, BROADCAST, mac, EtherTypes::Arp);
    frame
}

/// Unsolicited NA to ff02::1: R=1 (router), S=0, O=1, target = vip, TLLA
/// option = mac; ICMPv6 checksum set; hop limit 255 (RFC 4861 §4.4, §7.2.6;
/// RFC 9568 §6.4.2).
pub fn unsolicited_na(mac: [u8; 6], src: Ipv6Addr, vip: Ipv6Addr) -> Vec<u8> {
    let mut frame = vec![0u8; ETH_LEN + IPV6_LEN + NA_LEN];
    {
        let na_buf = &mut frame[ETH_LEN + IPV6_LEN..];
        let mut na = MutableNeighborAdvertPacket::new(na_buf).unwrap_or_else(|| unreachable!());
        na.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
        na.set_icmpv6_code(Icmpv6Code(0));
        na.set_flags(NeighborAdvertFlags::Router | NeighborAdvertFlags::Override);
        na.set_target_addr(vip);
        // Target Link-Layer Address option: type 2, length 1 (x 8 bytes).
        let opt = &mut na.packet_mut()[24..];
        opt[0] = NdpOptionTypes::TargetLLAddr.0;
        opt[1] = 1;
        opt[2..8].copy_from_slice(&mac);
    }
    let sum = {
        let icmp =
            Icmpv6Packet::new(&frame[ETH_LEN + IPV6_LEN..]).unwrap_or_else(|| unreachable!());
        icmpv6::checksum(&icmp, &src, &ALL_NODES)
    };
    frame[ETH_LEN + IPV6_LEN + 2..ETH_LEN + IPV6_LEN + 4].copy_from_slice(&sum.to_be_bytes());
    {
        let mut ip =
            MutableIpv6Packet::new(&mut frame[ETH_LEN..]).unwrap_or_else(|| unreachable!());
        ip.set_version(6);
        ip.set_payload_length(NA_LEN as u16);
        ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
        ip.set_hop_limit(255);
        ip.set_source(src);
        ip.set_destination(ALL_NODES);
    }
    write_ethernet(&mut frame, ALL_NODES_MAC, mac, EtherTypes::Ipv6);
    frame
}

/// The announcement for one VIP: GARP for IPv4, unsolicited NA (from
/// `src_v6`, our link-local address) for IPv6.
pub fn announcement(mac: [u8; 6], vip: IpAddr, src_v6: Ipv6Addr) -> Vec<u8> {
    match vip {
        IpAddr::V4(v4) => gratuitous_arp(mac, v4),
        IpAddr::V6(v6) => unsolicited_na(mac, src_v6, v6),
    }
}

fn write_ethernet(
    frame: &mut [u8],
    dst: [u8; 6],
    src: [u8; 6],
    ethertype: pnet_packet::ethernet::EtherType,
) {
    let mut eth = MutableEthernetPacket::new(frame).unwrap_or_else(|| unreachable!());
    eth.set_destination(dst.into());
    eth.set_source(src.into());
    eth.set_ethertype(ethertype);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::checksum;

    const MAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x33];

    /// RFC 9568 §6.4.2 + errata 7947/7949: broadcast ARP request whose sender
    /// and target protocol addresses are both the VIP, sender MAC = VMAC.
    #[test]
    fn gratuitous_arp_layout() {
        let f = gratuitous_arp(MAC, Ipv4Addr::new(192, 0, 2, 10));
        let expected: Vec<u8> = [
            &BROADCAST[..],
            &MAC,
            &[0x08, 0x06],                   // EtherType ARP
            &[0x00, 0x01, 0x08, 0x00, 6, 4], // Ethernet / IPv4
            &[0x00, 0x01],                   // request
            &MAC,
            &[192, 0, 2, 10],
            &[0; 6],
            &[192, 0, 2, 10],
        ]
        .concat();
        assert_eq!(f, expected);
    }

    /// RFC 9568 §6.4.2 / RFC 4861 §7.2.6: unsolicited NA to all-nodes with
    /// R=1 S=0 O=1, hop limit 255, TLLA = VMAC, valid ICMPv6 checksum.
    #[test]
    fn unsolicited_na_layout() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap_or_else(|_| unreachable!());
        let vip: Ipv6Addr = "2001:db8::10".parse().unwrap_or_else(|_| unreachable!());
        let f = unsolicited_na(MAC, src, vip);
        assert_eq!(f.len(), 14 + 40 + 32);
        assert_eq!(&f[0..6], &ALL_NODES_MAC);
        assert_eq!(&f[6..12], &MAC);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        let ip = &f[14..54];
        assert_eq!(ip[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), 32);
        assert_eq!(ip[6], 58, "next header ICMPv6");
        assert_eq!(ip[7], 255, "hop limit");
        assert_eq!(&ip[8..24], &src.octets());
        assert_eq!(&ip[24..40], &ALL_NODES.octets());
        let na = &f[54..];
        assert_eq!(na[0], 136, "Neighbor Advertisement");
        assert_eq!(na[1], 0);
        assert_eq!(na[4], 0b1010_0000, "R=1 S=0 O=1");
        assert_eq!(&na[5..8], &[0, 0, 0]);
        assert_eq!(&na[8..24], &vip.octets());
        assert_eq!(&na[24..32], &[2, 1, 0x00, 0x00, 0x5e, 0x00, 0x01, 0x33]);
        // ICMPv6 checksum covers the RFC 8200 pseudo-header (next header 58).
        let mut acc = checksum::sum(&src.octets());
        acc = checksum::combine(acc, checksum::sum(&ALL_NODES.octets()));
        acc = checksum::combine(acc, 58 + 32);
        acc = checksum::combine(acc, checksum::sum(na));
        assert_eq!(checksum::finish(acc), 0);
    }

    #[test]
    fn virtual_mac_per_family() {
        assert_eq!(virtual_mac(51, false), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(virtual_mac(51, true), [0, 0, 0x5e, 0, 2, 51]);
    }
}
