//! The status document: the SPEC's `status --json` contract and the table
//! `vrrp-agent status` prints. Fields beyond the SPEC are extensions and may
//! be added, never renamed. The table is rendered in `status/table.rs`.

use std::{net::IpAddr, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};
use vrrp_common::{DropReason, INTERARRIVAL_BOUNDS_NS};

pub use crate::proto::State;

mod table;
pub use table::render_table;

/// The states, in the order metrics and tables list them.
pub const STATES: [State; 5] = [
    State::Init,
    State::Backup,
    State::Master,
    State::Fault,
    State::Stop,
];

/// A state is written as the core names it (`MASTER`, `BACKUP`, ...), the
/// spelling of SPEC and of keepalived's notify argument.
impl Serialize for State {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        STATES
            .into_iter()
            .find(|s| s.to_string() == name)
            .ok_or_else(|| D::Error::custom(format!("unknown state `{name}`")))
    }
}

/// The daemon's state as `vrrp-agent status --json` prints it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// `global.router_id`.
    pub router_id: String,
    /// The data plane.
    pub xdp: XdpStatus,
    /// One entry per configured instance, in config order.
    pub instances: Vec<InstanceStatus>,
    /// Every `[[check]]`, in config order (SPEC wave 2).
    #[serde(default)]
    pub checks: Vec<CheckStatus>,
    /// Extension: every `[[sync_group]]`, in config order.
    #[serde(default)]
    pub sync_groups: Vec<SyncGroupStatus>,
    /// Extension: connections to the control socket and the metrics
    /// endpoint refused because [`super::MAX_CONNECTIONS`] were open.
    #[serde(default)]
    pub connections_refused: u64,
}

/// One `[[sync_group]]` in the top-level `"sync_groups"` list:
/// `{"name": "G1", "state": "BACKUP", "instances": ["VI_1", "VI_2"]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncGroupStatus {
    /// Its name.
    pub name: String,
    /// `INIT`, `FAULT`, `BACKUP` or `MASTER`: the state its members are
    /// held to (the one its notify last reported); `null` before the first.
    pub state: Option<String>,
    /// Its members, as configured.
    pub instances: Vec<String>,
}

/// One entry of an instance's `"track"` list:
/// `{"check": "redis_ping", "state": "down", "weight": -60}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackStatus {
    /// The check's name (absent for an interface).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// The interface's name (absent for a check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// `up | down | init`.
    pub state: String,
    /// The weight in effect (0 in a sync group).
    pub weight: i32,
    /// keepalived's `reverse` (absent when false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reverse: bool,
}

/// One `[[check]]` in the top-level `"checks"` list.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    /// The check's name.
    pub name: String,
    /// `exec | tcp | process | file`.
    pub kind: String,
    /// `up | down | init`.
    pub state: String,
    /// The last result in words (`"success"`, `"exit status 1"`, ...);
    /// `null` before the first.
    pub last_result: Option<String>,
    /// How long the last run took, in ms.
    pub last_duration_ms: Option<f64>,
    /// Length of the current run of equal results.
    pub consecutive: u32,
    /// When the state last changed, ms since the Unix epoch (0: never).
    pub last_change_unix_ms: u64,
    /// Extension: the last value read (file checks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
}

/// Data plane attachment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct XdpStatus {
    /// `driver`, `skb` or `off` (socket path): what is actually in use.
    pub mode: String,
    /// Interfaces the XDP program is attached to.
    pub interfaces: Vec<String>,
}

/// One instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// Instance name.
    pub name: String,
    /// Interface.
    pub interface: String,
    /// Virtual router id.
    pub vrid: u8,
    /// 2 or 3.
    pub version: u8,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// Protocol state.
    pub state: State,
    /// Configured priority.
    pub priority: u8,
    /// Priority in use (differs from `priority` while tracking lowers it).
    pub effective_priority: u8,
    /// Current master's address (ours when MASTER); `null` when unknown.
    pub master: Option<IpAddr>,
    /// Our advertisement interval.
    pub advert_interval_ms: u64,
    /// The interval learned from the master (RFC 9568 §6.1 Master_Adver_Interval).
    pub master_adver_interval_ms: u64,
    /// Virtual IPs as `addr/prefix`.
    pub virtual_ips: Vec<String>,
    /// State changes since start.
    pub transitions: u64,
    /// Wall-clock time of the last state change (ms since the Unix epoch; 0 = never).
    pub last_transition_unix_ms: u64,
    /// Counters.
    pub counters: Counters,
    /// Its `track` list with each object's state and the weight in effect
    /// (SPEC wave 2).
    #[serde(default)]
    pub track: Vec<TrackStatus>,
    /// Extension: why the instance is in FAULT (its interface down or
    /// without an advert source address, a tracked check or interface, its
    /// sync group); `null` otherwise.
    #[serde(default)]
    pub fault_reason: Option<String>,
    /// Extension: traffic per VIP (the `vip_rx_*` counters split by address).
    #[serde(default)]
    pub vip_counters: Vec<VipCounters>,
    /// Extension: advert inter-arrival times of this VRID (kernel receive
    /// timestamps of every valid advert, counted by the data plane since the
    /// VRID was configured on the interface).
    #[serde(default)]
    pub advert_interarrival: Histogram,
    /// Extension: peers whose adverts for this VRID are dropped, and why
    /// (version, interval, auth_type, auth, peer: the checks against our
    /// configuration), so that two MASTERs come with their reason.
    #[serde(default)]
    pub peer_mismatch: Vec<PeerMismatchStatus>,
}

/// One peer whose adverts an instance drops.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerMismatchStatus {
    /// The sender's address.
    pub peer: IpAddr,
    /// The `rx_dropped` label of the check it fails.
    pub reason: String,
    /// Adverts dropped for this reason (XDP: from any sender; `peer` is
    /// the last one).
    pub count: u64,
    /// Wall-clock time of the last one, ms since the Unix epoch.
    pub last_unix_ms: u64,
}

impl InstanceStatus {
    /// The static part of an instance's status, from its configuration;
    /// state `INIT`, nothing counted yet.
    pub fn from_config(inst: &crate::config::Instance) -> Self {
        use crate::proto::{Family, Version};
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        InstanceStatus {
            name: inst.name.clone(),
            interface: inst.interface.clone(),
            vrid: inst.vrid,
            version: match inst.version {
                Version::V2 => 2,
                Version::V3 => 3,
            },
            family: match inst.family {
                Family::V4 => "ipv4".into(),
                Family::V6 => "ipv6".into(),
            },
            state: State::Init,
            priority: inst.priority,
            effective_priority: inst.priority,
            master: None,
            advert_interval_ms: ms(inst.advert_interval),
            master_adver_interval_ms: ms(inst.advert_interval),
            virtual_ips: inst.virtual_ips.iter().map(|v| v.to_string()).collect(),
            transitions: 0,
            last_transition_unix_ms: 0,
            counters: Counters::default(),
            track: Vec::new(),
            fault_reason: None,
            vip_counters: inst
                .virtual_ips
                .iter()
                .map(|v| VipCounters {
                    vip: v.addr,
                    rx_packets: 0,
                    rx_bytes: 0,
                })
                .collect(),
            advert_interarrival: Histogram::default(),
            peer_mismatch: Vec::new(),
        }
    }
}

/// Counters of one instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Valid adverts received.
    pub adverts_rx: u64,
    /// Adverts sent.
    pub adverts_tx: u64,
    /// Gratuitous ARPs / unsolicited NAs sent.
    pub garp_tx: u64,
    /// Priority-0 adverts received (master resigned).
    pub prio0_rx: u64,
    /// Priority-0 adverts sent (we resigned).
    pub prio0_tx: u64,
    /// Packets addressed to the VIPs.
    pub vip_rx_packets: u64,
    /// Their bytes.
    pub vip_rx_bytes: u64,
    /// Adverts dropped, by reason.
    pub rx_dropped: RxDropped,
    /// Extension: IPv6 adverts accepted although their first address is
    /// not link-local (RFC 9568 §5.2.9; keepalived runs such configs).
    #[serde(default)]
    pub rx_first_not_link_local: u64,
}

/// Drops by [`DropReason`], one field per label, plus `vrid`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[expect(
    missing_docs,
    reason = "the fields are the DropReason labels, documented there"
)]
pub struct RxDropped {
    /// Not a [`DropReason`]: valid adverts on this instance's interface and
    /// family for a VRID no instance is configured with (RFC 9568 §7.1: "MUST
    /// discard"; the data plane passes them on and counts them as foreign).
    #[serde(default)]
    pub vrid: u64,
    pub ttl: u64,
    pub version: u64,
    #[serde(rename = "type")]
    pub type_: u64,
    pub length: u64,
    pub checksum: u64,
    pub interval: u64,
    pub count: u64,
    pub family: u64,
    pub link_local: u64,
    pub peer: u64,
    pub auth_type: u64,
    #[serde(default)]
    pub auth: u64,
}

impl RxDropped {
    /// The counter of one reason.
    pub fn get(&self, r: DropReason) -> u64 {
        *self.slot_ref(r)
    }

    /// Adds `n` to one reason's counter.
    pub fn add(&mut self, r: DropReason, n: u64) {
        let s = self.slot(r);
        *s = s.saturating_add(n);
    }

    /// Sum over all reasons, `vrid` included.
    pub fn total(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.get(*r)).sum::<u64>() + self.vrid
    }

    fn slot(&mut self, r: DropReason) -> &mut u64 {
        match r {
            DropReason::Ttl => &mut self.ttl,
            DropReason::Version => &mut self.version,
            DropReason::Type => &mut self.type_,
            DropReason::Length => &mut self.length,
            DropReason::Checksum => &mut self.checksum,
            DropReason::Interval => &mut self.interval,
            DropReason::Count => &mut self.count,
            DropReason::Family => &mut self.family,
            DropReason::LinkLocal => &mut self.link_local,
            DropReason::Peer => &mut self.peer,
            DropReason::AuthType => &mut self.auth_type,
            DropReason::Auth => &mut self.auth,
        }
    }

    fn slot_ref(&self, r: DropReason) -> &u64 {
        match r {
            DropReason::Ttl => &self.ttl,
            DropReason::Version => &self.version,
            DropReason::Type => &self.type_,
            DropReason::Length => &self.length,
            DropReason::Checksum => &self.checksum,
            DropReason::Interval => &self.interval,
            DropReason::Count => &self.count,
            DropReason::Family => &self.family,
            DropReason::LinkLocal => &self.link_local,
            DropReason::Peer => &self.peer,
            DropReason::AuthType => &self.auth_type,
            DropReason::Auth => &self.auth,
        }
    }
}

/// Traffic to one VIP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipCounters {
    /// The address (without prefix).
    pub vip: IpAddr,
    /// Packets addressed to it.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
}

/// Upper bounds (seconds) of the advert inter-arrival histogram buckets: fine
/// around the usual 10 ms .. 1 s intervals, coarse up to v3's 40.95 s maximum.
/// The data plane counts in these buckets
/// ([`vrrp_common::INTERARRIVAL_BOUNDS_NS`]; this is the same list in s).
pub const INTERARRIVAL_BUCKETS: [f64; INTERARRIVAL_BOUNDS_NS.len()] = {
    let mut b = [0.0; INTERARRIVAL_BOUNDS_NS.len()];
    let mut i = 0;
    while i < b.len() {
        // Exact: every bound is a whole number of ns below 2^53, and the
        // division rounds correctly (5_000_000 ns -> the f64 nearest 0.005).
        b[i] = INTERARRIVAL_BOUNDS_NS[i] as f64 / 1e9;
        i += 1;
    }
    b
};

/// A Prometheus-style histogram with fixed buckets ([`INTERARRIVAL_BUCKETS`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Upper bounds in seconds, ascending; `+Inf` is implicit.
    pub bounds: Vec<f64>,
    /// Observations per bucket (not cumulative); one more than `bounds` (the `+Inf` bucket).
    pub counts: Vec<u64>,
    /// Sum of observations in seconds.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new(&INTERARRIVAL_BUCKETS)
    }
}

impl Histogram {
    /// An empty histogram with these upper bounds (seconds, ascending).
    pub fn new(bounds: &[f64]) -> Self {
        Histogram {
            bounds: bounds.to_vec(),
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    /// The inter-arrival histogram of one VRID as the data plane keeps it
    /// (`LastSeenInfo::hist_counts` / `hist_sum_ns`: kernel receive
    /// timestamps of every advert): `counts` per [`INTERARRIVAL_BUCKETS`]
    /// bucket then `+Inf`, `sum_ns` their sum in ns.
    pub fn from_counts(counts: &[u64], sum_ns: u64) -> Self {
        let mut h = Histogram::default();
        for (dst, src) in h.counts.iter_mut().zip(counts) {
            *dst = *src;
        }
        h.count = h.counts.iter().sum();
        h.sum = Duration::from_nanos(sum_ns).as_secs_f64();
        h
    }

    /// Records one inter-arrival time.
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum += s;
        self.count += 1;
    }

    /// Cumulative counts per bound, as Prometheus `_bucket{le=..}` wants them
    /// (the last entry is `+Inf` and equals `count`).
    pub fn cumulative(&self) -> Vec<u64> {
        let mut acc = 0;
        self.counts
            .iter()
            .map(|c| {
                acc += c;
                acc
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets() {
        let mut h = Histogram::new(&[0.01, 1.0]);
        h.observe(Duration::from_millis(10)); // on the bound: `le` is inclusive
        h.observe(Duration::from_millis(500));
        h.observe(Duration::from_secs(2));
        assert_eq!(h.counts, vec![1, 1, 1]);
        assert_eq!(h.cumulative(), vec![1, 2, 3]);
        assert_eq!(h.count, 3);
        assert!((h.sum - 2.51).abs() < 1e-9);
    }

    #[test]
    fn interarrival_buckets_match_the_data_plane() {
        assert_eq!(
            INTERARRIVAL_BUCKETS,
            [
                0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0,
                45.0
            ]
        );
        // Bucketing an observation agrees with the data plane's bucket.
        let mut counts = [0u64; vrrp_common::INTERARRIVAL_HIST_LEN];
        let mut sum_ns = 0;
        let mut h = Histogram::default();
        for ms in [1, 5, 6, 100, 101, 999, 1_000, 45_000, 45_001, 90_000] {
            let ns = ms * 1_000_000;
            counts[vrrp_common::interarrival_bucket(ns)] += 1;
            sum_ns += ns;
            h.observe(Duration::from_nanos(ns));
        }
        let k = Histogram::from_counts(&counts, sum_ns);
        assert_eq!(
            (&k.bounds, &k.counts, k.count),
            (&h.bounds, &h.counts, h.count)
        );
        assert!((k.sum - h.sum).abs() < 1e-9);
        assert_eq!(k.count, 10);
    }

    #[test]
    fn rx_dropped_by_reason() {
        let mut d = RxDropped::default();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            d.add(*r, i as u64 + 1);
        }
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(d.get(*r), i as u64 + 1);
        }
        d.vrid = 100;
        let n = DropReason::ALL.len() as u64;
        assert_eq!(d.total(), n * (n + 1) / 2 + 100);
        // JSON keys are the DropReason labels plus `vrid`.
        let v = serde_json::to_value(&d).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), DropReason::ALL.len() + 1);
        for r in DropReason::ALL {
            assert_eq!(obj[r.label()], d.get(r), "{}", r.label());
        }
    }

    #[test]
    fn from_config() {
        let cfg = crate::config::Config::parse(
            "[[instance]]\nname = \"VI_6\"\ninterface = \"eth0\"\nvrid = 7\npriority = 90\n\
             advert_interval = \"50ms\"\nvirtual_ips = [\"fe80::7/64\", \"2001:db8::7/64\"]\n",
            "t.toml",
        )
        .unwrap();
        let st = InstanceStatus::from_config(&cfg.instances[0]);
        assert_eq!(
            (st.name.as_str(), st.vrid, st.version, st.family.as_str()),
            ("VI_6", 7, 3, "ipv6")
        );
        assert_eq!(
            (st.state, st.priority, st.effective_priority),
            (State::Init, 90, 90)
        );
        assert_eq!(
            (st.advert_interval_ms, st.master_adver_interval_ms),
            (50, 50)
        );
        assert_eq!(st.virtual_ips, ["fe80::7/64", "2001:db8::7/64"]);
        assert_eq!(st.vip_counters.len(), 2);
        assert_eq!(st.master, None);
    }

    /// The state is written as SPEC spells it, and read back.
    #[test]
    fn state_serializes_as_its_name() {
        for s in STATES {
            let v = serde_json::to_value(s).unwrap();
            assert_eq!(v, serde_json::Value::String(s.to_string()));
            assert_eq!(serde_json::from_value::<State>(v).unwrap(), s);
        }
        assert_eq!(serde_json::to_string(&State::Master).unwrap(), "\"MASTER\"");
        assert!(serde_json::from_str::<State>("\"ACTIVE\"").is_err());
    }

    #[test]
    fn table_without_instances() {
        let t = render_table(&Status {
            router_id: "x".into(),
            ..Default::default()
        });
        assert!(t.contains("(no instances)"), "{t}");
        assert!(t.starts_with("router_id: x    xdp:  (-)"), "{t}");
    }
}
