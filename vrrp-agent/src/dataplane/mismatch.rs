//! Why a peer's adverts are dropped, by peer: so that "both are MASTER"
//! comes with its reason.
//!
//! A dropped advert is counted per VRID and reason by both data planes.
//! What the counter cannot say is *who* sends them; [`PeerMismatches`]
//! keeps, per (VRID, reason, peer), a count and the last time, and tells
//! the caller when to warn: the first drop of a (VRID, reason, peer), then
//! at most once per [`WARN_EVERY_NS`] while they continue.

use std::{collections::HashMap, net::IpAddr};

use vrrp_common::{DropReason, VridKey};

/// Least time between two warnings for one (VRID, reason, peer).
pub const WARN_EVERY_NS: u64 = 60_000_000_000;

/// Most (VRID, reason, peer) entries kept; beyond, new peers are counted
/// in the per-VRID drop counters only (a flood of forged sources must not
/// grow memory).
pub const MAX_ENTRIES: usize = 1024;

/// One peer whose adverts for one VRID are dropped for one reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerMismatch {
    /// The VRID (interface, id, family).
    pub key: VridKey,
    /// Why its adverts are dropped.
    pub reason: DropReason,
    /// The sender's address.
    pub peer: IpAddr,
    /// Adverts dropped.
    pub count: u64,
    /// Wall-clock time of the last one, ms since the Unix epoch.
    pub last_unix_ms: u64,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    count: u64,
    last_unix_ms: u64,
    last_warn_ns: Option<u64>,
}

/// The dropped adverts of every (VRID, reason, peer).
#[derive(Debug, Default)]
pub struct PeerMismatches {
    entries: HashMap<(VridKey, u8, IpAddr), Entry>,
}

impl PeerMismatches {
    /// Records `n` adverts of `peer` for `key` dropped for `reason`, the
    /// last at `now_ns` (monotonic) / `unix_ms` (wall clock). Returns `true`
    /// when the caller should warn now (first time, or [`WARN_EVERY_NS`]
    /// since the last warning).
    pub fn note(
        &mut self,
        key: VridKey,
        reason: DropReason,
        peer: IpAddr,
        n: u64,
        now_ns: u64,
        unix_ms: u64,
    ) -> bool {
        let k = (key, reason as u8, peer);
        if !self.entries.contains_key(&k) && self.entries.len() >= MAX_ENTRIES {
            return false;
        }
        let e = self.entries.entry(k).or_insert(Entry {
            count: 0,
            last_unix_ms: 0,
            last_warn_ns: None,
        });
        e.count = e.count.saturating_add(n);
        e.last_unix_ms = unix_ms;
        let warn = match e.last_warn_ns {
            None => true,
            Some(t) => now_ns.saturating_sub(t) >= WARN_EVERY_NS,
        };
        if warn {
            e.last_warn_ns = Some(now_ns);
        }
        warn
    }

    /// Every entry of `key`, by reason then peer.
    pub fn of(&self, key: VridKey) -> Vec<PeerMismatch> {
        let mut v: Vec<PeerMismatch> = self
            .entries
            .iter()
            .filter(|((k, _, _), _)| *k == key)
            .filter_map(|(&(k, r, peer), e)| {
                Some(PeerMismatch {
                    key: k,
                    reason: *DropReason::ALL.get(usize::from(r))?,
                    peer,
                    count: e.count,
                    last_unix_ms: e.last_unix_ms,
                })
            })
            .collect();
        v.sort_by_key(|p| (p.reason as u8, p.peer));
        v
    }

    /// Forgets the VRIDs not in `keep` (after a reload).
    pub fn retain(&mut self, keep: impl Fn(&VridKey) -> bool) {
        self.entries.retain(|(k, _, _), _| keep(k));
    }
}

/// The warning for a peer whose adverts are dropped: who, which VRID, why.
pub fn warn_mismatch(m: &PeerMismatch) {
    tracing::warn!(
        vrid = m.key.vrid,
        ifindex = m.key.ifindex,
        peer = %m.peer,
        reason = m.reason.label(),
        "adverts from {} for VRID {} dropped: {} (counted as rx_dropped `{}`; \
         warned again in a minute if they continue)",
        m.peer,
        m.key.vrid,
        explain(m.reason),
        m.reason.label()
    );
}

/// What a drop reason means for the operator, for the warning.
pub fn explain(reason: DropReason) -> &'static str {
    match reason {
        DropReason::Version => "its VRRP version differs from ours (set `version` alike)",
        DropReason::Interval => {
            "its VRRPv2 advert interval differs from ours (RFC 3768 requires them equal)"
        }
        DropReason::AuthType => {
            "its VRRPv2 authentication type differs from ours (`auth_pass` on one side only?)"
        }
        DropReason::Auth => "its VRRPv2 password differs from our `auth_pass`",
        DropReason::Peer => "it is not in our `unicast_peers`",
        DropReason::Family => "the VRID is configured here for the other address family",
        DropReason::Checksum => "its checksum does not verify in any accepted form",
        DropReason::LinkLocal => "its first IPv6 address is not link-local",
        DropReason::Count => "it carries no address",
        DropReason::Length => "its length does not match its address count",
        DropReason::Ttl => "its TTL is not 255 (sent from off-link?)",
        DropReason::Type => "it is not an advertisement",
    }
}

#[cfg(test)]
mod tests {
    use vrrp_common::FAMILY_V4;

    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn warns_first_then_once_a_minute_per_peer_and_reason() {
        let mut m = PeerMismatches::default();
        let key = VridKey::new(3, 51, FAMILY_V4);
        let a: IpAddr = "192.0.2.2".parse().unwrap();
        let b: IpAddr = "192.0.2.3".parse().unwrap();
        assert!(m.note(key, DropReason::Auth, a, 1, 0, 1000));
        assert!(!m.note(key, DropReason::Auth, a, 1, 59 * S, 2000));
        assert!(
            m.note(key, DropReason::Auth, b, 1, 59 * S, 2000),
            "another peer"
        );
        assert!(
            m.note(key, DropReason::Interval, a, 1, 59 * S, 2000),
            "another reason"
        );
        assert!(m.note(key, DropReason::Auth, a, 1, 60 * S, 3000));
        let got = m.of(key);
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            PeerMismatch {
                key,
                reason: DropReason::Interval,
                peer: a,
                count: 1,
                last_unix_ms: 2000
            }
        );
        let auth_a = got
            .iter()
            .find(|p| p.reason == DropReason::Auth && p.peer == a);
        assert_eq!(auth_a.map(|p| (p.count, p.last_unix_ms)), Some((3, 3000)));
        m.retain(|k| k.vrid != 51);
        assert!(m.of(key).is_empty());
    }

    #[test]
    fn bounded() {
        let mut m = PeerMismatches::default();
        let key = VridKey::new(3, 51, FAMILY_V4);
        for i in 0..MAX_ENTRIES as u32 + 5 {
            m.note(
                key,
                DropReason::Peer,
                IpAddr::from(i.to_be_bytes()),
                1,
                0,
                0,
            );
        }
        assert_eq!(m.of(key).len(), MAX_ENTRIES);
    }
}
