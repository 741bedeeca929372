//! keepalived's `vrrp_complete_instance()` rules applied to a [`Draft`]:
//! the defaults, and the options keepalived itself ignores or resets, made
//! explicit in an [`Instance`]. One helper per rule, called in the order
//! [`Converter::complete`] applies them.

use std::{net::IpAddr, time::Duration};

use super::{Converter, Draft, Instance, Origin, Val};
use crate::import::Severity;

impl Converter {
    /// keepalived's `vrrp_complete_instance()`, then our own requirements.
    pub(super) fn complete(&mut self, d: Draft) -> Option<Instance> {
        let at = d.at.clone();
        let Some(interface) = d.interface.clone() else {
            self.error(
                &at,
                "interface",
                "vrrp-agent needs the instance's `interface` (keepalived's unicast-only \
                 form without one is not supported)",
            );
            return None;
        };
        let Some(vrid) = d.vrid.clone() else {
            self.error(
                &at,
                "virtual_router_id",
                "the instance has no virtual_router_id",
            );
            return None;
        };
        if d.vips.is_empty() {
            self.error(
                &at,
                "virtual_ipaddress",
                "the instance has no virtual_ipaddress; vrrp-agent needs at least one",
            );
            return None;
        }
        let v6 = matches!(d.vips[0].v.addr, IpAddr::V6(_));
        for p in &d.unicast_peers {
            if p.v.is_ipv6() != v6 {
                let at = p.from.line().unwrap_or(&at).clone();
                self.error(
                    &at,
                    "unicast_peer",
                    format!(
                        "peer {} is not of the VIPs' family; keepalived would not reach it \
                         either",
                        p.v
                    ),
                );
                return None;
            }
        }
        let strict = d
            .strict
            .clone()
            .or_else(|| self.globals.strict.clone())
            .is_some_and(|v| v.v);

        let version = self.version(&d, v6, strict);
        let (state, priority) = self.state_priority(&d);
        let master = state.as_ref().is_some_and(|s| s.v);
        let (preempt, preempt_delay) = self.preempt(&d, master, strict, priority.v);
        let accept_mode = accept_mode(&d, strict, version.v, priority.v);
        let auth_pass = self.authentication(&d, strict, version.v);
        let advert_interval = advert_interval(&d, version.v);

        let mut vips = d.vips;
        if v6 {
            self.link_local_first(&at, &mut vips, vrid.v);
        }
        let (garp_repeat, garp_interval) = self.garp(d.garp_repeat, v6);

        Some(Instance {
            name_at: at.clone(),
            name: Val {
                v: d.name,
                from: Origin::Line(at, "vrrp_instance".into()),
            },
            interface,
            vrid,
            priority,
            state,
            version,
            advert_interval,
            vips,
            preempt,
            preempt_delay,
            accept_mode,
            unicast_peers: d.unicast_peers,
            notify: d.notify,
            track: d.track,
            garp_repeat,
            garp_interval,
            auth_pass,
            unicast_src: d.unicast_src,
        })
    }

    /// The VRRP version: the instance's, else 3 for IPv6, else the global
    /// `vrrp_version` (default 2). IPv6 v2 becomes v3.
    fn version(&mut self, d: &Draft, v6: bool, strict: bool) -> Val<u8> {
        let mut version = match (&d.version, v6) {
            (Some(v), _) => v.clone(),
            (None, true) => Val::rule(
                3,
                "keepalived: IPv6 instances use VRRPv3 (vrrp_complete_instance)",
            ),
            (None, false) => match &self.globals.vrrp_version {
                Some(g) => g.clone(),
                None => Val::default(2, "vrrp_version 2 (VRRP_VERSION_2, global_data.c)"),
            },
        };
        if v6 && version.v == 2 {
            let version_at = d
                .version
                .as_ref()
                .and_then(|v| v.from.line())
                .unwrap_or(&d.at)
                .clone();
            if strict {
                version = Val::rule(3, "keepalived: strict mode turns IPv6 VRRPv2 into v3");
            } else {
                self.note_at(
                    &version_at,
                    "version",
                    Severity::ChangesFailover,
                    "keepalived runs non-standard VRRPv2 over IPv6 here; vrrp-agent speaks \
                     v3 for IPv6: set `version 3` on the keepalived peer too",
                );
                version.v = 3;
            }
        }
        version
    }

    /// `state` (informational) and the priority: 255 with `state MASTER`
    /// and no priority, else 100.
    fn state_priority(&mut self, d: &Draft) -> (Option<Val<bool>>, Val<u8>) {
        let state = d.state_master.clone();
        let master = state.as_ref().is_some_and(|s| s.v);
        if let Some(Val {
            v: true,
            from: Origin::Line(a, _),
        }) = &state
            && d.priority.as_ref().is_some_and(|p| p.v != 255)
        {
            self.note_at(
                a,
                "state",
                Severity::Difference,
                "at start-up keepalived claims mastership after one advert interval with \
                 `state MASTER`; vrrp-agent waits the RFC's Master_Down_Interval (3 adverts \
                 plus skew) like any Backup. The election result is the same",
            );
        }
        let priority = match d.priority.clone() {
            Some(p) => p,
            None if master => Val::rule(
                255,
                "keepalived: 255 with `state MASTER` and no priority (vrrp_complete_instance)",
            ),
            None => Val::default(100, "VRRP_PRIO_DFL 100 (keepalived/include/vrrp.h)"),
        };
        (state, priority)
    }

    /// `preempt` and `preempt_delay`, as keepalived runs them: nopreempt is
    /// cleared with `state MASTER` or priority 255; the delay with `state
    /// MASTER`, strict mode or nopreempt.
    fn preempt(
        &mut self,
        d: &Draft,
        master: bool,
        strict: bool,
        priority: u8,
    ) -> (Val<bool>, Val<Duration>) {
        let mut preempt = d
            .preempt
            .clone()
            .unwrap_or_else(|| Val::default(true, "preempt on"));
        if !preempt.v && (master || priority == 255) {
            let why = if master {
                "state MASTER"
            } else {
                "priority 255"
            };
            let from = preempt.from.clone();
            if let Some(a) = from.line() {
                self.note_at(
                    a,
                    "nopreempt",
                    Severity::Difference,
                    format!(
                        "keepalived ignores nopreempt with {why}, so preempt stays on; for \
                         nopreempt, set `state BACKUP` on every node"
                    ),
                );
            }
            preempt = Val::rule(true, format!("keepalived clears nopreempt with {why}"));
        }

        let mut preempt_delay = d
            .preempt_delay
            .clone()
            .unwrap_or_else(|| Val::default(Duration::ZERO, "0"));
        if !preempt_delay.v.is_zero() && (master || strict || !preempt.v) {
            let why = if master {
                "state MASTER"
            } else if strict {
                "strict mode"
            } else {
                "nopreempt"
            };
            if let Some(a) = preempt_delay.from.line() {
                self.note_at(
                    a,
                    "preempt_delay",
                    Severity::Difference,
                    format!("keepalived ignores preempt_delay with {why}; written as 0"),
                );
            }
            preempt_delay = Val::rule(
                Duration::ZERO,
                format!("keepalived clears preempt_delay with {why}"),
            );
        }
        (preempt, preempt_delay)
    }

    /// `authentication`: `auth_type PASS` on VRRPv2 becomes `auth_pass`
    /// (the text as written; keepalived and our config both use its first
    /// 8 bytes and warn). Ignored by keepalived with strict mode or VRRPv3,
    /// or without both a type and a password; AH is not supported.
    fn authentication(&mut self, d: &Draft, strict: bool, version: u8) -> Option<Val<String>> {
        let auth = d.auth.as_ref()?;
        let (kind, pass) = match (&auth.kind, &auth.pass) {
            (Some(k), Some(p)) if k.v == "PASS" || k.v == "AH" => (k, p),
            _ => {
                self.note_at(
                    &auth.at,
                    "authentication",
                    Severity::Harmless,
                    "keepalived sends no authentication without both `auth_type PASS` (or \
                     AH) and `auth_pass`; nothing to set",
                );
                return None;
            }
        };
        if strict || version == 3 {
            let why = if version == 3 {
                "VRRPv3"
            } else {
                "strict mode"
            };
            self.note_at(
                &auth.at,
                "authentication",
                Severity::Harmless,
                format!(
                    "keepalived ignores authentication with {why} and sends none; nothing to \
                     set (VRRPv3 has no authentication, RFC 5798 §9)"
                ),
            );
            return None;
        }
        if kind.v == "AH" {
            self.note_at(
                &auth.at,
                "authentication",
                Severity::ChangesFailover,
                "vrrp-agent does not support `auth_type AH` (IPsec AH): the keepalived peer \
                 would drop its adverts and both nodes become MASTER. Use `auth_type PASS` \
                 on both sides, or remove `authentication` on the keepalived peer (and \
                 reload it) before starting vrrp-agent",
            );
            return None;
        }
        Some(pass.clone())
    }

    /// `garp_master_repeat` (instance, else global, else 1 with
    /// `vrrp_min_garp`, else 5) capped to 1..=100, and the global
    /// `vrrp_garp_interval` / `vrrp_gna_interval` capped at 1 s.
    fn garp(&mut self, repeat: Option<Val<u32>>, v6: bool) -> (Val<u32>, Val<Duration>) {
        let garp_repeat = {
            let raw = repeat
                .or_else(|| self.globals.garp_repeat.clone())
                .or_else(|| {
                    self.globals.min_garp.as_ref().filter(|m| m.v).map(|m| Val {
                        v: 1,
                        from: m.from.clone(),
                    })
                })
                .unwrap_or_else(|| Val::default(5, "vrrp_garp_master_repeat 5 (VRRP_GARP_REP)"));
            if raw.v == 0 || raw.v > 100 {
                let v = raw.v.clamp(1, 100);
                if let Origin::Line(a, kw) = &raw.from {
                    self.note_at(
                        a,
                        kw,
                        Severity::Difference,
                        format!("vrrp-agent sends 1..=100 gratuitous ARPs per VIP; written as {v}"),
                    );
                }
                Val { v, from: raw.from }
            } else {
                raw
            }
        };
        let garp_interval = {
            let g = if v6 {
                self.globals.gna_interval.clone()
            } else {
                self.globals.garp_interval.clone()
            };
            let raw = g.unwrap_or_else(|| {
                Val::default(Duration::ZERO, "vrrp_garp_interval / vrrp_gna_interval 0")
            });
            if raw.v > Duration::from_secs(1) {
                Val {
                    v: Duration::from_secs(1),
                    from: Origin::Rule("capped at 1s, vrrp-agent's maximum".into()),
                }
            } else {
                raw
            }
        };
        (garp_repeat, garp_interval)
    }
}

/// Accept_Mode: keepalived accepts unless strict mode; the address owner
/// always accepts; strict mode resets an explicit `accept` for VRRPv2.
fn accept_mode(d: &Draft, strict: bool, version: u8, priority: u8) -> Val<bool> {
    match d.accept.clone() {
        Some(a) if a.v && strict && version == 2 && priority != 255 => Val::rule(
            false,
            "keepalived: strict mode resets accept for VRRPv2 (vrrp_complete_instance)",
        ),
        Some(a) => a,
        None if priority == 255 => Val::default(true, "the address owner (priority 255) accepts"),
        None if strict => Val::default(false, "no accept in strict mode"),
        None => Val::default(true, "accept unless strict mode (vrrp_complete_instance)"),
    }
}

/// `advert_int` (default 1 s): keepalived rounds v2 to whole seconds (at
/// least 1) and sends v3 in centiseconds.
fn advert_interval(d: &Draft, version: u8) -> Val<Duration> {
    let (us, from) = match &d.advert_int_us {
        Some(v) => (v.v, v.from.clone()),
        None => (
            1_000_000,
            Origin::Default("advert_int 1 (VRRP_ADVER_DFL)".into()),
        ),
    };
    // keepalived: v2 rounds to whole seconds (at least 1), v3 sends centiseconds.
    let d = if version == 2 {
        Duration::from_secs(((us + 500_000) / 1_000_000).clamp(1, 255))
    } else {
        Duration::from_millis((us / 10_000).max(1) * 10)
    };
    Val { v: d, from }
}
