//! The Internet checksum (RFC 1071) and the IP pseudo-headers VRRPv3 adds
//! to it.

use std::net::IpAddr;

use vrrp_common::IPPROTO_VRRP;

/// One's-complement sum of `data` as big-endian 16-bit words, not yet folded
/// or inverted (RFC 1071 §4.1). An odd trailing byte is padded with zero.
pub fn sum(data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    let mut acc: u64 = 0;
    for pair in &mut chunks {
        acc += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(u16::from_be_bytes([*last, 0]));
    }
    fold64(acc)
}

/// Folds carries until the sum fits 16 bits.
fn fold64(mut acc: u64) -> u32 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // Fits 16 bits after the loop.
    acc as u32
}

/// Folds and inverts a partial sum into the value carried in a checksum
/// field.
pub fn finish(partial: u32) -> u16 {
    !(fold64(u64::from(partial)) as u16)
}

/// Adds two partial sums.
pub fn combine(a: u32, b: u32) -> u32 {
    fold64(u64::from(a) + u64::from(b))
}

/// Partial sum of the pseudo-header for an upper-layer message of
/// `length` bytes with protocol `IPPROTO_VRRP`.
///
/// IPv4: source, destination, zero, protocol, 16-bit length (the RFC 768
/// layout keepalived and FRR use for VRRPv3 per RFC 5798 §5.2.8). IPv6:
/// RFC 8200 §8.1 (source, destination, 32-bit length, three zero bytes,
/// next header). Mixed families cannot occur on the wire; the sum is still
/// defined (each address contributes its own bytes).
pub fn pseudo_header_sum(src: IpAddr, dst: IpAddr, length: usize) -> u32 {
    let addr_sum = |a: IpAddr| match a {
        IpAddr::V4(a) => sum(&a.octets()),
        IpAddr::V6(a) => sum(&a.octets()),
    };
    // The 32-bit IPv6 length sums like two 16-bit words; its high word is
    // zero for any VRRP message (at most 8 + 255 * 16 + 8 bytes).
    let len = u32::try_from(length).unwrap_or(u32::MAX);
    let len_sum = (len >> 16) + (len & 0xffff);
    let mut acc = combine(addr_sum(src), addr_sum(dst));
    acc = combine(acc, u32::from(IPPROTO_VRRP));
    combine(acc, len_sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3 worked example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold64(u64::from(sum(&data))), 0xddf2);
        assert_eq!(finish(sum(&data)), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn message_with_its_checksum_sums_to_zero() {
        let mut msg = vec![0x31, 0x01, 0x64, 0x01, 0x00, 0x64, 0, 0, 192, 0, 2, 10];
        let c = finish(sum(&msg));
        msg[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(finish(sum(&msg)), 0);
    }
}
