//! VRRPv2 simple text password authentication (Auth Type 1).
//!
//! RFC 2338 §5.3.6.1 defined it; RFC 3768 removed it (it protects from
//! misconfiguration, not from attackers: the password is sent in clear).
//! keepalived still sends and checks it (`authentication { auth_type PASS
//! auth_pass ... }`, in most tutorials), so a mixed pair needs it.
//!
//! - Sending: Auth Type 1 and the password, zero-padded to 8 bytes, in the
//!   Authentication Data after the addresses (RFC 2338 §5.3.10); the v2
//!   checksum covers them.
//! - Receiving (RFC 2338 §7.1): an advert whose Auth Type is not the
//!   configured one is discarded (`AuthType`), and with Auth Type 1 one
//!   whose 8 bytes differ from ours (`Auth`). VRRPv3 has no authentication.
//!
//! Not in the RFCs, decided here: a password longer than 8 bytes is
//! truncated to 8, with a warning at load, as keepalived 2.2.7 does
//! (`vrrp_auth_pass_handler`: "Truncating auth_pass to 8 characters"), so
//! the same config text interoperates.

use vrrp_common::{DropReason, V2_AUTH_DATA_LEN, V2_AUTH_NONE, V2_AUTH_PASS};

use super::Packet;

/// The 8 bytes of Authentication Data a password is sent as.
pub type Password = [u8; V2_AUTH_DATA_LEN];

/// `text` as Authentication Data: its first 8 bytes, zero-padded; `true`
/// when it was longer (and truncated, like keepalived).
pub fn password(text: &str) -> (Password, bool) {
    let mut p = [0u8; V2_AUTH_DATA_LEN];
    let b = text.as_bytes();
    let n = b.len().min(V2_AUTH_DATA_LEN);
    p[..n].copy_from_slice(&b[..n]);
    (p, b.len() > V2_AUTH_DATA_LEN)
}

/// Sets Auth Type 1 and `pass` in an emitted VRRPv2 message (from
/// [`Advert::emit`](super::Advert::emit)) and recomputes its checksum.
/// Returns `false`, leaving `msg` untouched, if it is not a v2 message of
/// consistent length.
pub fn set_password(msg: &mut [u8], pass: &Password) -> bool {
    let Ok(mut p) = Packet::new_checked(&mut msg[..]) else {
        return false;
    };
    let addrs = usize::from(p.count()) * 4;
    if p.version() != 2 || p.len() != 8 + addrs + V2_AUTH_DATA_LEN {
        return false;
    }
    p.set_v2_auth_type(V2_AUTH_PASS);
    p.body_mut()[addrs..].copy_from_slice(pass);
    p.fill_checksum(None);
    true
}

/// The Auth Type and Authentication Data of a VRRPv2 message that passed
/// [`Advert::parse`](super::Advert::parse); `None` for anything else.
pub fn received(msg: &[u8]) -> Option<(u8, Password)> {
    let p = Packet::new_checked(msg).ok()?;
    if p.version() != 2 {
        return None;
    }
    let start = 8 + usize::from(p.count()) * 4;
    let data: Password = msg.get(start..start + V2_AUTH_DATA_LEN)?.try_into().ok()?;
    Some((p.v2_auth_type(), data))
}

/// RFC 2338 §7.1 against the configuration: `None` if a received v2
/// advert's Auth Type and data (from [`received`]) match `ours` (`None`:
/// no authentication), else the drop reason.
pub fn check(got: (u8, &Password), ours: Option<&Password>) -> Option<DropReason> {
    match (got.0, ours) {
        (V2_AUTH_NONE, None) => None,
        (V2_AUTH_PASS, Some(p)) if got.1 == p => None,
        (V2_AUTH_PASS, Some(_)) => Some(DropReason::Auth),
        _ => Some(DropReason::AuthType),
    }
}

#[cfg(test)]
mod tests {
    use std::{net::IpAddr, time::Duration};

    use super::*;
    use crate::proto::{Advert, RxMeta, V3Checksum, Version, checksum};

    fn v2_msg() -> Vec<u8> {
        Advert {
            version: Version::V2,
            vrid: 51,
            priority: 100,
            interval: Duration::from_secs(1),
            addrs: vec!["192.0.2.10".parse().unwrap(), "192.0.2.11".parse().unwrap()],
        }
        .emit(
            SRC.parse().unwrap(),
            DST.parse().unwrap(),
            V3Checksum::Rfc5798,
        )
        .unwrap()
    }

    const SRC: &str = "192.0.2.1";
    const DST: &str = "224.0.0.18";

    fn meta() -> RxMeta {
        RxMeta {
            src: SRC.parse::<IpAddr>().unwrap(),
            dst: DST.parse::<IpAddr>().unwrap(),
            ttl: 255,
        }
    }

    #[test]
    fn password_is_zero_padded_and_truncated_like_keepalived() {
        assert_eq!(password("secret"), (*b"secret\0\0", false));
        assert_eq!(password("12345678"), (*b"12345678", false));
        assert_eq!(password("123456789abc"), (*b"12345678", true));
    }

    #[test]
    fn emitted_password_is_on_the_wire_and_checksummed() {
        let mut msg = v2_msg();
        assert!(set_password(&mut msg, b"secret\0\0"));
        // Bytes as RFC 2338 §5.3 lays them out: type 1 at offset 4, the
        // data after the two addresses; the message checksum verifies.
        assert_eq!(msg[4], 1);
        assert_eq!(&msg[16..24], b"secret\0\0");
        assert_eq!(checksum::finish(checksum::sum(&msg)), 0);
        // The codec accepts it, and `received` reads it back.
        assert!(Advert::parse(&meta(), &msg).is_ok());
        assert_eq!(received(&msg), Some((1, *b"secret\0\0")));
    }

    #[test]
    fn set_password_refuses_v3_and_short_messages() {
        let mut v3 = Advert {
            version: Version::V3,
            vrid: 51,
            priority: 100,
            interval: Duration::from_secs(1),
            addrs: vec!["192.0.2.10".parse().unwrap()],
        }
        .emit(
            SRC.parse().unwrap(),
            DST.parse().unwrap(),
            V3Checksum::Rfc5798,
        )
        .unwrap();
        let before = v3.clone();
        assert!(!set_password(&mut v3, b"secret\0\0"));
        assert_eq!(v3, before);
        let mut short = v2_msg();
        short.truncate(12);
        assert!(!set_password(&mut short, b"secret\0\0"));
    }

    #[test]
    fn receive_check_names_type_or_password() {
        let ours = *b"secret\0\0";
        let other = *b"Secret\0\0";
        assert_eq!(check((0, &[0; 8]), None), None);
        assert_eq!(check((1, &ours), Some(&ours)), None);
        assert_eq!(check((1, &other), Some(&ours)), Some(DropReason::Auth));
        assert_eq!(check((0, &[0; 8]), Some(&ours)), Some(DropReason::AuthType));
        assert_eq!(check((1, &ours), None), Some(DropReason::AuthType));
        assert_eq!(check((2, &ours), Some(&ours)), Some(DropReason::AuthType));
    }

    #[test]
    fn parse_accepts_type_0_and_1_only() {
        let mut msg = v2_msg();
        assert!(set_password(&mut msg, b"secret\0\0"));
        msg[4] = 2;
        msg[6..8].copy_from_slice(&[0, 0]);
        let c = checksum::finish(checksum::sum(&msg));
        msg[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            Advert::parse(&meta(), &msg).unwrap_err().reason(),
            DropReason::AuthType
        );
    }
}
