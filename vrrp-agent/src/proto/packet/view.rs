//! The zero-copy layer of the codec: [`Packet`] over a byte buffer, with
//! checked length and non-panicking field accessors (RFC 9568 §5.1,
//! RFC 3768 §5.1). The semantic layer is [`Advert`](super::Advert).

use std::net::IpAddr;

use super::{Family, HEADER_LEN, RxError, V2_AUTH_DATA_LEN, V3_MAX_ADVER_INT_CS};
use crate::proto::checksum;

/// Byte offsets of the fixed header fields.
mod field {
    use core::ops::Range;
    pub const VERSION_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    /// v2: Auth Type.
    pub const AUTH_TYPE: usize = 4;
    /// v2: Adver Int, seconds.
    pub const ADVER_INT: usize = 5;
    /// v3: 4 reserved bits + 12-bit Max Adver Int, centiseconds.
    pub const MAX_ADVER_INT: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// A zero-copy view of a VRRP message (the IP payload).
///
/// VRRPv3 (RFC 9568 §5.1):
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |(rsvd) |     Max Adver Int     |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                                                               |
/// +                                                               +
/// |                       IPvX Address(es)                        |
/// +                                                               +
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// VRRPv2 (RFC 3768 §5.1) differs in the second word and the trailer:
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Auth Type   |   Adver Int   |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                      IP Address(es) ...                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Authentication Data (1)                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Authentication Data (2)                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// After [`Packet::check_len`] succeeds no accessor panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking its length; accessors may panic on a
    /// buffer shorter than [`HEADER_LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, RxError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures the fixed header is present, so that no accessor panics.
    /// Whether the addresses are all there depends on the family; see
    /// [`Packet::expected_len`].
    pub fn check_len(&self) -> Result<(), RxError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(RxError::Length);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The message length (the buffer's).
    pub fn len(&self) -> usize {
        self.buffer.as_ref().len()
    }

    /// True for an empty buffer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Version field (high nibble of the first byte).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION_TYPE] >> 4
    }

    /// Type field (low nibble of the first byte).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION_TYPE] & 0x0f
    }

    /// Virtual Router ID.
    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    /// Priority.
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    /// Count IPvX Addr.
    pub fn count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// v2 Auth Type.
    pub fn v2_auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_TYPE]
    }

    /// v2 Adver Int, in seconds.
    pub fn v2_adver_int(&self) -> u8 {
        self.buffer.as_ref()[field::ADVER_INT]
    }

    /// v3 reserved bits (upper nibble of byte 4); ignored on receive.
    pub fn v3_reserved(&self) -> u8 {
        self.buffer.as_ref()[field::MAX_ADVER_INT.start] >> 4
    }

    /// v3 Max Adver Int, in centiseconds (12 bits).
    pub fn v3_max_adver_int(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::MAX_ADVER_INT];
        u16::from_be_bytes([b[0], b[1]]) & V3_MAX_ADVER_INT_CS
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The exact message length the header implies for `family`:
    /// header, `count` addresses and, for v2, the authentication data.
    pub fn expected_len(&self, family: Family) -> usize {
        let trailer = if self.version() == 2 {
            V2_AUTH_DATA_LEN
        } else {
            0
        };
        HEADER_LEN + usize::from(self.count()) * family.addr_len() + trailer
    }

    /// Everything after the fixed header: addresses, then v2 auth data.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// True when the message verifies with the checksum over the message
    /// alone (v2; v3 IPv4 per RFC 9568).
    pub fn verify_message_checksum(&self) -> bool {
        checksum::finish(checksum::sum(self.buffer.as_ref())) == 0
    }

    /// True when the message verifies with the checksum over the
    /// pseudo-header and the message (v3 IPv6; v3 IPv4 per RFC 5798).
    pub fn verify_pseudo_header_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        let ph = checksum::pseudo_header_sum(src, dst, self.len());
        checksum::finish(checksum::combine(ph, checksum::sum(self.buffer.as_ref()))) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets Version and Type.
    pub fn set_version_type(&mut self, version: u8, msg_type: u8) {
        self.buffer.as_mut()[field::VERSION_TYPE] = (version << 4) | (msg_type & 0x0f);
    }

    /// Sets the Virtual Router ID.
    pub fn set_vrid(&mut self, vrid: u8) {
        self.buffer.as_mut()[field::VRID] = vrid;
    }

    /// Sets the Priority.
    pub fn set_priority(&mut self, priority: u8) {
        self.buffer.as_mut()[field::PRIORITY] = priority;
    }

    /// Sets Count IPvX Addr.
    pub fn set_count(&mut self, count: u8) {
        self.buffer.as_mut()[field::COUNT] = count;
    }

    /// Sets the v2 Auth Type.
    pub fn set_v2_auth_type(&mut self, auth_type: u8) {
        self.buffer.as_mut()[field::AUTH_TYPE] = auth_type;
    }

    /// Sets the v2 Adver Int (seconds).
    pub fn set_v2_adver_int(&mut self, secs: u8) {
        self.buffer.as_mut()[field::ADVER_INT] = secs;
    }

    /// Sets the v3 Max Adver Int (centiseconds, 12 bits) and clears the
    /// reserved bits, which must be zero on transmit (RFC 9568 §5.2.6).
    pub fn set_v3_max_adver_int(&mut self, centis: u16) {
        let v = centis & V3_MAX_ADVER_INT_CS;
        self.buffer.as_mut()[field::MAX_ADVER_INT].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Mutable view of everything after the fixed header.
    pub fn body_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Computes and stores the checksum over the message, plus the
    /// pseudo-header for `Some((src, dst))`.
    pub fn fill_checksum(&mut self, pseudo_header: Option<(IpAddr, IpAddr)>) {
        self.set_checksum(0);
        let mut acc = checksum::sum(self.buffer.as_ref());
        if let Some((src, dst)) = pseudo_header {
            acc = checksum::combine(acc, checksum::pseudo_header_sum(src, dst, self.len()));
        }
        self.set_checksum(checksum::finish(acc));
    }
}
