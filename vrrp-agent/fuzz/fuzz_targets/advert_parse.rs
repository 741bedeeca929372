//! Fuzzes the receive path: `split_frame` on whole frames and
//! `Advert::parse` on bare messages under fixed IPv4 and IPv6 metadata.
//! Neither may panic, and whatever parses must emit and parse back to the
//! same advert. Bare messages are also tried with their checksum fixed up,
//! so that mutations reach the checks behind the checksum.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use vrrp_agent::proto::{Advert, ChecksumForm, Packet, RxMeta, V3Checksum, split_frame};

fn round_trip(meta: &RxMeta, msg: &[u8]) {
    let Ok((advert, form)) = Advert::parse(meta, msg) else {
        return;
    };
    if advert.vrid == 0 {
        // Parsable (the VRID check is the caller's) but not emittable.
        return;
    }
    let tx_form = match form {
        ChecksumForm::PseudoHeader => V3Checksum::Rfc5798,
        ChecksumForm::MessageOnly => V3Checksum::Rfc9568,
    };
    let bytes = match advert.emit(meta.src, meta.dst, tx_form) {
        Ok(b) => b,
        Err(e) => panic!("parsed advert {advert:?} does not emit: {e}"),
    };
    assert_eq!(bytes.len(), msg.len(), "emit changed the length");
    match Advert::parse(meta, &bytes) {
        Ok((again, again_form)) => {
            assert_eq!(again, advert);
            assert_eq!(again_form, form);
        }
        Err(e) => panic!("emitted advert does not parse: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok((meta, msg)) = split_frame(data) {
        round_trip(&meta, msg);
    }
    let v4 = RxMeta {
        src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        dst: IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
        ttl: 255,
    };
    let v6 = RxMeta {
        src: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
        dst: IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12)),
        ttl: 255,
    };
    round_trip(&v4, data);
    round_trip(&v6, data);
    if data.len() >= 8 {
        for (meta, pseudo) in [
            (v4, None),
            (v4, Some((v4.src, v4.dst))),
            (v6, Some((v6.src, v6.dst))),
        ] {
            let mut msg = data.to_vec();
            Packet::new_unchecked(&mut msg[..]).fill_checksum(pseudo);
            round_trip(&meta, &msg);
        }
    }
});
