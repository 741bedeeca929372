//! `vrrp_instance`: its keywords read into a [`Draft`], one `match` arm per
//! keyword.

use std::{net::IpAddr, time::Duration};

use super::{Auth, Converter, Draft, Val, block};
use crate::import::{Severity, parse::Stmt};

impl Converter {
    pub(super) fn instance(&mut self, s: &Stmt) -> Option<Draft> {
        let Some(name) = s.arg(1) else {
            self.error(&s.at, "vrrp_instance", "vrrp_instance needs a name");
            return None;
        };
        let mut d = Draft {
            name: name.to_owned(),
            at: s.at.clone(),
            interface: None,
            vrid: None,
            priority: None,
            state_master: None,
            version: None,
            advert_int_us: None,
            vips: Vec::new(),
            preempt: None,
            preempt_delay: None,
            accept: None,
            strict: None,
            unicast_peers: Vec::new(),
            notify: Vec::new(),
            track: Vec::new(),
            garp_repeat: None,
            auth: None,
            unicast_src: None,
        };
        for k in block(s) {
            self.instance_keyword(&mut d, k);
        }
        Some(d)
    }

    /// One arm per keyword of `vrrp_instance`.
    // Long because: one `match` arm per keepalived keyword, the importer's keyword table.
    pub(super) fn instance_keyword(&mut self, d: &mut Draft, s: &Stmt) {
        match s.keyword() {
            "interface" => {
                if let Some(a) = self.one_arg(s) {
                    d.interface = Some(Val::new(a.to_owned(), s));
                }
            }
            "virtual_router_id" => {
                if let Some(n) = self.int_arg(s, 1, 255) {
                    d.vrid = Some(Val::new(n as u8, s));
                }
            }
            "priority" => {
                if let Some(n) = self.int_arg(s, 1, 255) {
                    d.priority = Some(Val::new(n as u8, s));
                }
            }
            "state" => match s.arg(1) {
                // keepalived: a later BACKUP does not undo MASTER.
                Some("MASTER") => d.state_master = Some(Val::new(true, s)),
                Some("BACKUP") if d.state_master.is_none() => {
                    d.state_master = Some(Val::new(false, s))
                }
                Some("BACKUP") => {}
                _ => self.error(&s.at, "state", "state must be MASTER or BACKUP"),
            },
            "version" => {
                if let Some(n) = self.int_arg(s, 2, 3) {
                    d.version = Some(Val::new(n as u8, s));
                }
            }
            "advert_int" => {
                if let Some(us) = self.seconds_arg(s) {
                    if (10_000..=255_000_000).contains(&us) {
                        d.advert_int_us = Some(Val::new(us, s));
                    } else {
                        self.error(&s.at, "advert_int", "advert_int must be 0.01..=255 seconds");
                    }
                }
            }
            "nopreempt" => d.preempt = Some(Val::new(false, s)),
            "preempt" => d.preempt = Some(Val::new(true, s)),
            "preempt_delay" => {
                if let Some(us) = self.seconds_arg(s) {
                    if us <= 1_000_000_000 {
                        d.preempt_delay = Some(Val::new(Duration::from_micros(us), s));
                    } else {
                        self.error(
                            &s.at,
                            "preempt_delay",
                            "preempt_delay must be 0..=1000 seconds",
                        );
                    }
                }
            }
            "accept" => d.accept = Some(Val::new(true, s)),
            "no_accept" => d.accept = Some(Val::new(false, s)),
            "strict_mode" => {
                if let Some(b) = self.bool_arg(s) {
                    d.strict = Some(Val::new(b, s));
                }
            }
            "virtual_ipaddress" => {
                for v in block(s) {
                    self.vip(d, v);
                }
            }
            "unicast_peer" => {
                for p in block(s) {
                    self.unicast_peer(d, p);
                }
            }
            "notify" | "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => {
                self.notify_key(&mut d.notify, s)
            }
            "garp_master_repeat" => {
                if let Some(n) = self.int_arg(s, 0, i64::from(u32::MAX)) {
                    d.garp_repeat = Some(Val::new(n as u32, s));
                }
            }
            "authentication" => d.auth = Some(self.auth_block(s)),
            "track_script" | "track_interface" | "track_file" | "track_process" | "track_bfd" => {
                self.track(&mut d.track, s)
            }
            "dont_track_primary" => self.changes(
                s,
                "vrrp-agent goes to FAULT when its interface goes down; keepalived here \
                 stays in its state. Keep the interface up (bonding) instead",
            ),
            "notify_master_rx_lower_pri" => self.changes(
                s,
                "vrrp-agent has no notify for a lower-priority advert seen as MASTER: \
                 nothing runs then",
            ),
            // keepalived: one handler for both, the advert source.
            "unicast_src_ip" | "mcast_src_ip" => {
                if let Some(a) = self.one_arg(s) {
                    match a.parse::<IpAddr>() {
                        Ok(ip) => d.unicast_src = Some(Val::new(ip, s)),
                        Err(_) => {
                            let msg = format!("`{a}` is not an IP address");
                            self.error(&s.at, s.keyword(), msg)
                        }
                    }
                }
            }
            "mcast_dst_ip" => self.changes(
                s,
                "vrrp-agent sends to 224.0.0.18 / ff02::12: use the standard group on the \
                 keepalived peer too, or unicast_peers",
            ),
            "down_timer_adverts" => {
                if s.arg(1) != Some("3") {
                    self.changes(
                        s,
                        "vrrp-agent's Master_Down_Interval is 3 adverts plus skew (RFC 9568 \
                         §6.1); set 3 on the keepalived peer",
                    )
                }
            }
            "virtual_ipaddress_excluded" => self.changes(
                s,
                "excluded addresses would not move with mastership: add them to virtual_ips \
                 (and to virtual_ipaddress on the keepalived peer, so the advert lists \
                 match), or add/remove them in the notify script",
            ),
            "virtual_routes" | "virtual_rules" => self.changes(
                s,
                "routes/rules would not follow mastership: add and remove them in the \
                 notify script on MASTER / BACKUP",
            ),
            "use_vmac" | "vmac_xmit_base" | "use_vmac_addr" | "use_ipvlan" => self.note(
                s,
                Severity::Difference,
                "vrrp-agent keeps the interface's own MAC for the VIPs and announces each \
                 move with gratuitous ARP / unsolicited NA; nothing to set",
            ),
            "garp_master_delay"
            | "garp_master_refresh"
            | "garp_master_refresh_repeat"
            | "garp_lower_prio_delay"
            | "garp_lower_prio_repeat"
            | "garp_extra_if"
            | "garp_extra_if_vmac" => self.harmless(
                s,
                "vrrp-agent sends one burst of `garp_repeat` gratuitous ARPs / NAs on \
                 becoming MASTER; raise garp_repeat if switches need more",
            ),
            "smtp_alert" => self.harmless(s, "vrrp-agent sends no e-mail; use the notify script"),
            "native_ipv6" => self.harmless(s, "the VIPs' family decides; nothing to set"),
            "skip_check_adv_addr"
            | "check_unicast_src"
            | "lower_prio_no_advert"
            | "higher_prio_send_advert"
            | "unicast_ttl"
            | "unicast_fault_no_peer"
            | "old_unicast_checksum"
            | "track_src_ip" => self.harmless(
                s,
                "vrrp-agent follows the RFC (checks every advert, accepts both v3 checksum \
                 forms); nothing to set",
            ),
            "debug"
            | "kernel_rx_buf_size"
            | "linkbeat_use_polling"
            | "promote_secondaries"
            | "notify_priority_changes"
            | "vrf" => self.harmless(s, "not carried; nothing to set in vrrp-agent"),
            _ => self.harmless(
                s,
                "not a keyword the importer knows (keepalived.conf(5)); not carried",
            ),
        }
    }

    /// `authentication { auth_type PASS|AH  auth_pass TEXT }`.
    fn auth_block(&mut self, s: &Stmt) -> Auth {
        let mut a = Auth {
            at: s.at.clone(),
            kind: None,
            pass: None,
        };
        for k in block(s) {
            match k.keyword() {
                "auth_type" => {
                    if let Some(t) = self.one_arg(k) {
                        a.kind = Some(Val::new(t.to_owned(), k));
                    }
                }
                "auth_pass" => {
                    if let Some(p) = self.one_arg(k) {
                        a.pass = Some(Val::new(p.to_owned(), k));
                    }
                }
                _ => self.harmless(
                    k,
                    "not a keyword of keepalived's authentication block; not carried",
                ),
            }
        }
        a
    }
}
