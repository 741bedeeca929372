//! The status document: the agent's view of each instance plus the data
//! plane's counters, read fresh for every request.

use std::{
    sync::atomic::Ordering,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use vrrp_common::DropReason;

use super::Daemon;
use crate::{
    agent,
    checks::{CheckReport, TrackReport},
    control::{
        CheckStatus, Histogram, InstanceStatus, PeerMismatchStatus, Status, SyncGroupStatus,
        TrackStatus, XdpStatus,
    },
    dataplane::{self, FamilyTag as _},
    proto::Instant,
};

impl Daemon {
    /// The status document, with fresh counters.
    pub(super) fn status(&self) -> Status {
        let vip_counters = self.dataplane.vip_counters().unwrap_or_default();
        let vrids = self.dataplane.all_vrid_counters().unwrap_or_default();
        let now = dataplane::now();
        let unix_now = unix_ms();
        let instances = self
            .agent
            .instances()
            .iter()
            .map(|r| self.instance_status(r, &vrids, &vip_counters, now, unix_now))
            .collect();
        let mut interfaces: Vec<String> = Vec::new();
        for r in self.agent.instances() {
            if !interfaces.contains(&r.config().interface) {
                interfaces.push(r.config().interface.clone());
            }
        }
        let mode = match self.dataplane.mode() {
            dataplane::ActiveMode::Socket => "off".to_owned(),
            m => m.as_str().to_owned(),
        };
        Status {
            router_id: self.cfg.global.router_id.clone(),
            xdp: XdpStatus {
                interfaces: if mode == "off" {
                    Vec::new()
                } else {
                    interfaces
                },
                mode,
            },
            instances,
            checks: self.agent.checks().map_or_else(Vec::new, |b| {
                b.report(now, unix_now)
                    .into_iter()
                    .map(check_status)
                    .collect()
            }),
            sync_groups: self
                .agent
                .sync_groups()
                .map(|(cfg, state)| SyncGroupStatus {
                    name: cfg.name.clone(),
                    state: state.map(|s| s.as_str().to_owned()),
                    instances: cfg.instances.clone(),
                })
                .collect(),
            connections_refused: self.conn_limit.refused(),
        }
    }

    /// One instance's entry of the status document: the agent's view plus
    /// the data plane's counters (`vrids`, `vip_counters`: read once per
    /// request).
    fn instance_status(
        &self,
        r: &agent::Instance,
        vrids: &[(dataplane::VridKey, dataplane::VridCounters)],
        vip_counters: &[dataplane::VipCounters],
        now: Instant,
        unix_now: u64,
    ) -> InstanceStatus {
        let router = r.router();
        let mut s = InstanceStatus::from_config(r.config());
        s.state = router.state();
        s.effective_priority = router.priority();
        if let Some(book) = self.agent.checks() {
            let cfg = r.config();
            let in_group = self.cfg.sync_group_of(&cfg.name).is_some();
            s.track = book
                .track_report(&cfg.track, in_group, |n| self.agent.tracked_link_up(n))
                .into_iter()
                .map(track_status)
                .collect();
        }
        s.master = router.current_master();
        s.master_adver_interval_ms = ms(router.master_adver_interval());
        s.transitions = r.transitions();
        s.fault_reason = r.fault_reason().map(str::to_owned);
        s.last_transition_unix_ms = r.last_transition().map_or(0, |t| {
            unix_now.saturating_sub(ms(now.saturating_duration_since(t)))
        });
        let c = &mut s.counters;
        c.prio0_rx = r.prio0_rx();
        let key = dataplane::vrid_key(r.ifindex(), r.config().vrid, r.config().family);
        if let Some(io) = self.io.get(&r.id()) {
            c.adverts_tx = io.counters.adverts.load(Ordering::Relaxed);
            c.prio0_tx = io.counters.prio0.load(Ordering::Relaxed);
            c.garp_tx = io.counters.garp.load(Ordering::Relaxed);
        }
        if let Ok(Some(v)) = self.dataplane.vrid_counters(key) {
            c.adverts_rx = v.valid;
            c.rx_first_not_link_local = v.first_not_link_local;
            for reason in DropReason::ALL {
                c.rx_dropped.add(reason, v.dropped(reason));
            }
        }
        // Valid adverts for a VRID nobody configured, on the instance's own
        // interface and family (RFC 9568 §7.1: discarded).
        c.rx_dropped.vrid = vrids
            .iter()
            .filter(|(k, _)| k.ifindex == r.ifindex() && k.family == r.config().family.tag())
            .map(|(_, c)| c.foreign)
            .sum();
        for vc in &mut s.vip_counters {
            if let Some(k) = vip_counters.iter().find(|k| k.vip == vc.vip) {
                vc.rx_packets = k.rx_packets;
                vc.rx_bytes = k.rx_bytes;
            }
        }
        c.vip_rx_packets = s.vip_counters.iter().map(|v| v.rx_packets).sum();
        c.vip_rx_bytes = s.vip_counters.iter().map(|v| v.rx_bytes).sum();
        // Measured by the data plane, which sees every advert (the
        // XDP program wakes the daemon only on changes).
        s.peer_mismatch = self
            .dataplane
            .peer_mismatches(key)
            .unwrap_or_default()
            .into_iter()
            .map(|m| PeerMismatchStatus {
                peer: m.peer,
                reason: m.reason.label().to_owned(),
                count: m.count,
                last_unix_ms: m.last_unix_ms,
            })
            .collect();
        if let Ok(Some(ls)) = self.dataplane.last_seen(key) {
            s.advert_interarrival = Histogram::from_counts(&ls.hist_counts, ls.hist_sum_ns);
        }
        s
    }
}

fn track_status(t: TrackReport) -> TrackStatus {
    TrackStatus {
        check: t.check,
        interface: t.interface,
        state: t.state.to_owned(),
        weight: t.weight,
        reverse: t.reverse,
    }
}

fn check_status(c: CheckReport) -> CheckStatus {
    CheckStatus {
        name: c.name,
        kind: c.kind.to_owned(),
        state: c.state.to_owned(),
        last_result: c.last_result,
        last_duration_ms: c.last_duration_ms,
        consecutive: c.consecutive,
        last_change_unix_ms: c.last_change_unix_ms,
        value: c.value,
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
