//! `global_defs`: the values that reach every instance (router_id, version,
//! strict mode, gratuitous ARP settings), and the global keywords listed
//! but not carried.

use std::time::Duration;

use super::{Converter, Val};
use crate::import::parse::Stmt;

impl Converter {
    // Long because: one `match` arm per `global_defs` keyword, the importer's keyword table.
    pub(super) fn global_keyword(&mut self, s: &Stmt) {
        match s.keyword() {
            "router_id" => {
                if let Some(a) = self.one_arg(s) {
                    self.globals.router_id = Some(Val::new(a.to_owned(), s));
                }
            }
            "vrrp_version" => {
                if let Some(n) = self.int_arg(s, 2, 3) {
                    self.globals.vrrp_version = Some(Val::new(n as u8, s));
                }
            }
            "vrrp_strict" => self.globals.strict = Some(Val::new(true, s)),
            "vrrp_garp_master_repeat" => {
                if let Some(n) = self.int_arg(s, 0, i64::from(u32::MAX)) {
                    self.globals.garp_repeat = Some(Val::new(n as u32, s));
                }
            }
            "vrrp_min_garp" => {
                if let Some(b) = self.bool_arg(s) {
                    self.globals.min_garp = Some(Val::new(b, s));
                }
            }
            "vrrp_garp_interval" => {
                if let Some(us) = self.seconds_arg(s) {
                    self.globals.garp_interval = Some(Val::new(Duration::from_micros(us), s));
                }
            }
            "vrrp_gna_interval" => {
                if let Some(us) = self.seconds_arg(s) {
                    self.globals.gna_interval = Some(Val::new(Duration::from_micros(us), s));
                }
            }
            "vrrp_mcast_group4" | "vrrp_mcast_group6" => self.changes(
                s,
                "vrrp-agent sends to the standard groups 224.0.0.18 / ff02::12: use them on \
                 the keepalived peer too (remove this line there), or use unicast_peers",
            ),
            "notify_fifo"
            | "vrrp_notify_fifo"
            | "notify_fifo_script"
            | "vrrp_notify_fifo_script" => self.changes(
                s,
                "vrrp-agent has no notify FIFO: run the FIFO reader's actions from a \
                     `notify` script (called as `notify INSTANCE name STATE priority`)",
            ),
            "notification_email"
            | "notification_email_from"
            | "smtp_server"
            | "smtp_connect_timeout"
            | "smtp_helo_name"
            | "smtp_alert"
            | "smtp_alert_vrrp"
            | "smtp_alert_checker" => self.harmless(
                s,
                "vrrp-agent sends no e-mail: send it from the `notify` script, or alert on \
                 the `vrrp_state` metric",
            ),
            "script_user" | "enable_script_security" => self.harmless(
                s,
                "vrrp-agent runs the notify script as its own user: make the script \
                 writable by root only, or drop privileges inside it",
            ),
            "vrrp_garp_master_delay"
            | "vrrp_garp_master_refresh"
            | "vrrp_garp_master_refresh_repeat"
            | "vrrp_garp_lower_prio_delay"
            | "vrrp_garp_lower_prio_repeat"
            | "vrrp_garp_extra_if"
            | "vrrp_garp_extra_if_vmac" => self.harmless(
                s,
                "vrrp-agent sends one burst of `garp_repeat` gratuitous ARPs / NAs on \
                 becoming MASTER (no second burst, no refresh); raise `garp_repeat` if \
                 switches need more",
            ),
            "vrrp_iptables"
            | "vrrp_ipsets"
            | "nftables"
            | "nftables_priority"
            | "nftables_counters"
            | "nftables_ifindex"
            | "vrrp_iptables_inchain" => self.harmless(
                s,
                "vrrp-agent installs no firewall rules; with accept_mode = false it drops \
                     traffic to the VIPs in its XDP program instead",
            ),
            "vrrp_skip_check_adv_addr"
            | "vrrp_check_unicast_src"
            | "vrrp_lower_prio_no_advert"
            | "vrrp_higher_prio_send_advert" => self.harmless(
                s,
                "vrrp-agent follows the RFC here and checks every advert; nothing to set",
            ),
            _ => self.harmless(
                s,
                "not a VRRP election setting the importer carries; nothing to set in vrrp-agent",
            ),
        }
    }
}
