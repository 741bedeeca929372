//! keepalived statements -> vrrp-agent TOML, one `match` arm per keyword.
//!
//! Two passes: `global_defs` first (keepalived applies its defaults when it
//! completes each instance, so their position in the file does not matter),
//! then everything else. Each instance is collected into an [`Draft`] and
//! completed with keepalived's `vrrp_complete_instance()` rules before it is
//! rendered. The rendered text is checked with [`Config::parse`]; a failure
//! there is an importer bug and is reported as an error.

use std::{
    collections::{HashMap, HashSet},
    fmt::Write as _,
    net::{IpAddr, Ipv6Addr},
    time::Duration,
};

use super::{Note, Severity, Source, parse::Stmt};
use crate::config::{Config, ConfigError, VirtualIp, format_duration};

/// Where a value came from: a line of the file, or a keepalived default.
#[derive(Clone, Debug)]
enum Origin {
    /// `FILE:LINE keyword`.
    Line(Source, String),
    /// The keepalived default, with where it is defined.
    Default(String),
    /// Decided by one of keepalived's completion rules (or ours), explained.
    Rule(String),
}

impl Origin {
    fn at(s: &Stmt) -> Origin {
        Origin::Line(s.at.clone(), s.keyword().to_owned())
    }

    /// The source line, when the value comes from the file.
    fn line(&self) -> Option<&Source> {
        match self {
            Origin::Line(at, _) => Some(at),
            Origin::Default(_) | Origin::Rule(_) => None,
        }
    }

    fn comment(&self) -> String {
        match self {
            Origin::Line(at, kw) => format!("{at} {kw}"),
            Origin::Default(why) => format!("keepalived default: {why}"),
            Origin::Rule(why) => why.clone(),
        }
    }
}

#[derive(Clone, Debug)]
struct Val<T> {
    v: T,
    from: Origin,
}

impl<T> Val<T> {
    fn new(v: T, s: &Stmt) -> Val<T> {
        Val {
            v,
            from: Origin::at(s),
        }
    }

    fn default(v: T, why: impl Into<String>) -> Val<T> {
        Val {
            v,
            from: Origin::Default(why.into()),
        }
    }

    fn rule(v: T, why: impl Into<String>) -> Val<T> {
        Val {
            v,
            from: Origin::Rule(why.into()),
        }
    }
}

/// The `global_defs` values that reach instances.
#[derive(Default)]
struct Globals {
    router_id: Option<Val<String>>,
    vrrp_version: Option<Val<u8>>,
    strict: Option<Val<bool>>,
    garp_repeat: Option<Val<u32>>,
    min_garp: Option<Val<bool>>,
    garp_interval: Option<Val<Duration>>,
    gna_interval: Option<Val<Duration>>,
}

/// One `vrrp_instance` as read, before keepalived's completion rules.
struct Draft {
    name: String,
    at: Source,
    interface: Option<Val<String>>,
    vrid: Option<Val<u8>>,
    priority: Option<Val<u8>>,
    state_master: Option<Val<bool>>,
    version: Option<Val<u8>>,
    advert_int_us: Option<Val<u64>>,
    vips: Vec<Val<VirtualIp>>,
    preempt: Option<Val<bool>>,
    preempt_delay: Option<Val<Duration>>,
    accept: Option<Val<bool>>,
    strict: Option<Val<bool>>,
    unicast_peers: Vec<Val<IpAddr>>,
    notify: Option<Val<String>>,
    garp_repeat: Option<Val<u32>>,
    /// `authentication` block position; judged once the version is known.
    auth: Option<Source>,
}

/// The instance ready to render.
struct Instance {
    name: Val<String>,
    name_at: Source,
    interface: Val<String>,
    vrid: Val<u8>,
    priority: Val<u8>,
    state: Option<Val<bool>>,
    version: Val<u8>,
    advert_interval: Val<Duration>,
    vips: Vec<Val<VirtualIp>>,
    preempt: Val<bool>,
    preempt_delay: Val<Duration>,
    accept_mode: Val<bool>,
    unicast_peers: Vec<Val<IpAddr>>,
    notify: Option<Val<String>>,
    garp_repeat: Val<u32>,
    garp_interval: Val<Duration>,
}

struct Converter {
    notes: Vec<Note>,
    globals: Globals,
    /// Names of `vrrp_script` / `track_file` / `vrrp_track_process` definitions.
    tracked: HashSet<String>,
}

/// Converts the statements of one keepalived.conf; `file` names the source
/// in the header. Returns the TOML (when it could be built) and the notes.
pub fn convert(stmts: &[Stmt], file: &str) -> (Option<String>, Vec<Note>) {
    let mut c = Converter {
        notes: Vec::new(),
        globals: Globals::default(),
        tracked: HashSet::new(),
    };
    // First pass: what keepalived resolves when it completes an instance,
    // wherever it is in the file.
    for s in stmts {
        match s.keyword() {
            "global_defs" => block(s).iter().for_each(|g| c.global_keyword(g)),
            "vrrp_script" | "track_file" | "vrrp_track_file" | "vrrp_track_process" => {
                c.tracked.extend(s.arg(1).map(str::to_owned))
            }
            _ => {}
        }
    }
    let mut drafts = Vec::new();
    for s in stmts {
        if let Some(d) = c.top_keyword(s) {
            drafts.push(d);
        }
    }
    let mut instances = Vec::new();
    let mut names: HashMap<String, Source> = HashMap::new();
    for d in drafts {
        if let Some(first) = names.get(&d.name) {
            let msg = format!("instance name `{}` already used at {first}", d.name);
            c.error(&d.at, "vrrp_instance", msg);
            continue;
        }
        names.insert(d.name.clone(), d.at.clone());
        if let Some(i) = c.complete(d) {
            let key = |i: &Instance| (i.interface.v.clone(), i.vrid.v, i.vips[0].v.family());
            if let Some(first) = instances.iter().find(|o: &&Instance| key(o) == key(&i)) {
                let at = i.vrid.from.line().unwrap_or(&i.name_at).clone();
                let msg = format!(
                    "instance {} uses the same interface, virtual_router_id and family as {}; \
                     vrrp-agent needs them unique (keepalived allows it only with disjoint \
                     unicast peers or other multicast groups)",
                    i.name.v, first.name.v
                );
                c.error(&at, "virtual_router_id", msg);
                continue;
            }
            instances.push(i);
        }
    }
    if instances.is_empty() && !c.notes.iter().any(|n| n.severity == Severity::Error) {
        let at = Source {
            file: file.to_owned(),
            line: 1,
        };
        c.error(
            &at,
            "vrrp_instance",
            "no vrrp_instance to convert; vrrp-agent needs at least one",
        );
    }
    if c.notes.iter().any(|n| n.severity == Severity::Error) {
        return (None, c.notes);
    }
    c.notes
        .sort_by(|a, b| (&a.at.file, a.at.line).cmp(&(&b.at.file, b.at.line)));
    let out = render(file, &c.globals, &instances, &c.notes);
    if let Err(e) = Config::parse(&out.text, "converted config") {
        let problems = match e {
            ConfigError::Invalid { problems, .. } => problems,
            ConfigError::Read { .. } => Vec::new(),
        };
        for p in problems {
            let (at, kw) = out.origins.get(&p.line).cloned().unwrap_or_else(|| {
                let at = Source {
                    file: file.to_owned(),
                    line: 1,
                };
                (at, "import".to_owned())
            });
            c.error(
                &at,
                &kw,
                format!("vrrp-agent does not accept this: {}", p.message),
            );
        }
        return (None, c.notes);
    }
    let text = out.text;
    (Some(text), c.notes)
}

fn block(s: &Stmt) -> &[Stmt] {
    s.block.as_deref().unwrap_or(&[])
}

impl Converter {
    fn note(&mut self, s: &Stmt, severity: Severity, msg: impl Into<String>) {
        self.notes
            .push(Note::new(&s.at, s.keyword(), severity, msg.into()));
    }

    /// A note at `at` about `keyword`: an entry of a value block, or a
    /// keyword judged only once the instance is complete.
    fn note_at(&mut self, at: &Source, keyword: &str, severity: Severity, msg: impl Into<String>) {
        self.notes
            .push(Note::new(at, keyword, severity, msg.into()));
    }

    fn error(&mut self, at: &Source, keyword: &str, msg: impl Into<String>) {
        self.notes
            .push(Note::new(at, keyword, Severity::Error, msg.into()));
    }

    fn harmless(&mut self, s: &Stmt, msg: &str) {
        self.note(s, Severity::Harmless, msg);
    }

    fn changes(&mut self, s: &Stmt, msg: impl Into<String>) {
        self.note(s, Severity::ChangesFailover, msg);
    }

    /// The statement's single argument, or an error.
    fn one_arg<'s>(&mut self, s: &'s Stmt) -> Option<&'s str> {
        match s.arg(1) {
            Some(a) => Some(a),
            None => {
                let msg = format!("`{}` needs a value", s.keyword());
                self.error(&s.at, s.keyword(), msg);
                None
            }
        }
    }

    fn int_arg(&mut self, s: &Stmt, lo: i64, hi: i64) -> Option<i64> {
        let a = self.one_arg(s)?;
        match a.parse::<i64>() {
            Ok(n) if (lo..=hi).contains(&n) => Some(n),
            _ => {
                let msg = format!("`{a}` is not a number in {lo}..={hi}");
                self.error(&s.at, s.keyword(), msg);
                None
            }
        }
    }

    /// keepalived's `<TIMER>`: decimal seconds, microsecond resolution.
    fn seconds_arg(&mut self, s: &Stmt) -> Option<u64> {
        let a = self.one_arg(s)?;
        match seconds_to_us(a) {
            Some(us) => Some(us),
            None => {
                let msg = format!("`{a}` is not a time in seconds (e.g. 1 or 0.5)");
                self.error(&s.at, s.keyword(), msg);
                None
            }
        }
    }

    /// keepalived's `<BOOL>` after an optional-argument keyword: absent = true.
    fn bool_arg(&mut self, s: &Stmt) -> Option<bool> {
        match s.arg(1) {
            None => Some(true),
            Some("on" | "true" | "yes") => Some(true),
            Some("off" | "false" | "no") => Some(false),
            Some(other) => {
                let msg = format!("`{other}` is not one of on|off|true|false|yes|no");
                self.error(&s.at, s.keyword(), msg);
                None
            }
        }
    }

    fn global_keyword(&mut self, s: &Stmt) {
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

    fn top_keyword(&mut self, s: &Stmt) -> Option<Draft> {
        match s.keyword() {
            "global_defs" => None,
            "vrrp_instance" => self.instance(s),
            "vrrp_script" | "track_file" | "vrrp_track_file" | "vrrp_track_process" => {
                self.harmless(
                    s,
                    "the check itself is not carried yet (it becomes a [[check]]); the \
                     instances tracking it are listed separately",
                );
                None
            }
            "vrrp_sync_group" => {
                self.sync_group(s);
                None
            }
            "virtual_server" | "virtual_server_group" | "real_server" => {
                self.harmless(
                    s,
                    "LVS load balancing is not VRRP: keep keepalived's checker for it \
                     (`keepalived --check`), or use a load balancer behind the VIP",
                );
                None
            }
            "static_ipaddress" | "static_routes" | "static_rules" => {
                self.harmless(
                    s,
                    "static addresses/routes do not move with mastership: configure them \
                     with the system's network configuration",
                );
                None
            }
            _ => {
                self.harmless(
                    s,
                    "not a VRRP setting the importer carries; nothing to set in vrrp-agent",
                );
                None
            }
        }
    }

    fn sync_group(&mut self, s: &Stmt) {
        for g in block(s) {
            match g.keyword() {
                "group" => {
                    let n = block(g).len();
                    if n >= 2 {
                        let members: Vec<&str> = block(g).iter().map(|m| m.keyword()).collect();
                        self.note(
                            s,
                            Severity::ChangesFailover,
                            format!(
                                "instances {} would fail over independently: vrrp-agent has \
                                 no sync groups yet; give them the same priorities and \
                                 tracking so they elect the same node",
                                members.join(", ")
                            ),
                        );
                    }
                }
                "notify" | "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => {
                    self.changes(
                        g,
                        "group notify scripts are not carried: call the script from each \
                         member's `notify` instead",
                    )
                }
                "track_script" | "track_interface" | "track_file" | "track_process"
                | "track_bfd" => self.changes(
                    g,
                    "group tracking is not carried yet: priority and FAULT will not follow it",
                ),
                _ => self.harmless(g, "not carried; nothing to set in vrrp-agent"),
            }
        }
    }

    fn instance(&mut self, s: &Stmt) -> Option<Draft> {
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
            notify: None,
            garp_repeat: None,
            auth: None,
        };
        for k in block(s) {
            self.instance_keyword(&mut d, k);
        }
        Some(d)
    }

    /// One arm per keyword of `vrrp_instance`.
    fn instance_keyword(&mut self, d: &mut Draft, s: &Stmt) {
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
            "notify" => self.notify(d, s),
            "garp_master_repeat" => {
                if let Some(n) = self.int_arg(s, 0, i64::from(u32::MAX)) {
                    d.garp_repeat = Some(Val::new(n as u32, s));
                }
            }
            "authentication" => d.auth = Some(s.at.clone()),
            "track_script" | "track_interface" | "track_file" | "track_process" | "track_bfd" => {
                let what: Vec<String> = block(s).iter().map(|t| t.words.join(" ")).collect();
                self.changes(
                    s,
                    format!(
                        "tracking ({}) is not carried yet: priority and FAULT will not follow \
                         it. Until `track` lands, stop vrrp-agent when the tracked service \
                         fails (systemd `BindsTo=` that service): a graceful stop hands the \
                         VIPs over at once",
                        what.join("; ")
                    ),
                );
                if s.keyword() == "track_script" || s.keyword() == "track_file" {
                    for t in block(s) {
                        if !self.tracked.contains(t.keyword()) {
                            let msg = format!(
                                "`{}` is not defined in this file (keepalived ignores it)",
                                t.keyword()
                            );
                            self.note_at(&t.at, s.keyword(), Severity::Harmless, msg);
                        }
                    }
                }
            }
            "dont_track_primary" => self.changes(
                s,
                "vrrp-agent goes to FAULT when its interface goes down; keepalived here \
                 stays in its state. Keep the interface up (bonding) instead",
            ),
            "notify_master"
            | "notify_backup"
            | "notify_fault"
            | "notify_stop"
            | "notify_master_rx_lower_pri" => self.changes(
                s,
                "per-state notify scripts are not carried yet: use one `notify` script, \
                 called as `notify INSTANCE name STATE priority`, that dispatches on STATE",
            ),
            "unicast_src_ip" | "mcast_src_ip" => self.changes(
                s,
                "vrrp-agent sends from the interface's primary address: make this address \
                 the primary one, or list the primary address in the peer's unicast_peer",
            ),
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

    /// `ADDR[/MASK] [dev IF] [label L] [brd B] [scope S] ...`.
    fn vip(&mut self, d: &mut Draft, s: &Stmt) {
        let addr = s.keyword();
        let vip = match addr.parse::<VirtualIp>() {
            Ok(v) => v,
            Err(e) => {
                self.error(&s.at, "virtual_ipaddress", e);
                return;
            }
        };
        let mut opts = s.words[1..].iter().map(String::as_str);
        while let Some(opt) = opts.next() {
            match opt {
                "dev" => {
                    let dev = opts.next().unwrap_or_default();
                    if d.interface.as_ref().is_none_or(|i| i.v != dev) {
                        self.note_at(
                            &s.at,
                            "virtual_ipaddress",
                            Severity::ChangesFailover,
                            format!(
                                "`dev {dev}`: vrrp-agent puts every VIP on the instance's \
                                 interface; run a second instance on {dev}, or move the \
                                 address in the notify script"
                            ),
                        );
                    }
                }
                "use_vmac" => self.note_at(
                    &s.at,
                    "virtual_ipaddress",
                    Severity::ChangesFailover,
                    "`use_vmac` on a VIP is not carried: the VIP goes on the instance's \
                     interface with its own MAC",
                ),
                "label" | "brd" | "scope" | "peer" | "preferred_lft" | "track_group" => {
                    let val = opts.next().unwrap_or_default();
                    self.note_at(
                        &s.at,
                        "virtual_ipaddress",
                        Severity::Harmless,
                        format!(
                            "VIP option `{opt} {val}` is not carried: the address is added \
                             with the kernel's defaults"
                        ),
                    );
                }
                "home" | "-nodad" | "nodad" | "mngtmpaddr" | "noprefixroute" | "autojoin"
                | "no_track" => self.note_at(
                    &s.at,
                    "virtual_ipaddress",
                    Severity::Harmless,
                    format!("VIP option `{opt}` is not carried"),
                ),
                other => self.error(
                    &s.at,
                    "virtual_ipaddress",
                    format!("unknown option `{other}` after {addr}"),
                ),
            }
        }
        if let IpAddr::V6(_) = vip.addr
            && vip.prefix_len == 128
        {
            self.note_at(
                &s.at,
                "virtual_ipaddress",
                Severity::Difference,
                "keepalived deprecates /128 VIPs (preferred_lft 0) so they are never a \
                 source address; vrrp-agent adds them with the kernel default",
            );
        }
        if let Some(first) = d.vips.first()
            && first.v.family() != vip.family()
        {
            // keepalived logs "address family must match" and ignores it.
            self.note_at(
                &s.at,
                "virtual_ipaddress",
                Severity::Harmless,
                format!(
                    "{} is not of the first VIP's family; keepalived ignores it too. Put it \
                     in its own vrrp_instance",
                    vip.addr
                ),
            );
            return;
        }
        d.vips.push(Val {
            v: vip,
            from: Origin::Line(s.at.clone(), "virtual_ipaddress".into()),
        });
    }

    fn unicast_peer(&mut self, d: &mut Draft, s: &Stmt) {
        match s.keyword().parse::<IpAddr>() {
            Ok(a) => d.unicast_peers.push(Val {
                v: a,
                from: Origin::Line(s.at.clone(), "unicast_peer".into()),
            }),
            Err(_) => {
                let msg = format!("`{}` is not an IP address", s.keyword());
                self.error(&s.at, "unicast_peer", msg);
                return;
            }
        }
        if s.words.len() > 1 {
            self.note_at(
                &s.at,
                "unicast_peer",
                Severity::Harmless,
                "min_ttl / max_ttl are not carried: vrrp-agent requires TTL 255 (RFC 9568 §7.1)",
            );
        }
        if d.unicast_peers.len() == 1 {
            self.note_at(
                &s.at,
                "unicast_peer",
                Severity::Difference,
                "vrrp-agent drops adverts whose TTL is not 255 (RFC 9568 §7.1); keepalived \
                 does not check it in unicast mode: the peers must share a link",
            );
        }
    }

    /// `notify SCRIPT [USER [GROUP]]`; SCRIPT may be a quoted command line.
    fn notify(&mut self, d: &mut Draft, s: &Stmt) {
        let Some(cmd) = s.arg(1) else {
            self.error(&s.at, "notify", "`notify` needs a script");
            return;
        };
        let words = super::parse::split_words(cmd);
        if words.len() != 1 {
            self.changes(
                s,
                "a notify command with arguments is not carried: vrrp-agent runs a path as \
                 `PATH INSTANCE name STATE priority`; wrap the command in a script",
            );
            return;
        }
        d.notify = Some(Val::new(words[0].clone(), s));
        if let Some(user) = s.arg(2) {
            self.note(
                s,
                Severity::Difference,
                format!(
                    "the script runs as vrrp-agent's user, not as `{user}`; drop privileges \
                     inside the script"
                ),
            );
        }
    }

    /// keepalived's `vrrp_complete_instance()`, then our own requirements.
    fn complete(&mut self, d: Draft) -> Option<Instance> {
        let at = d.at.clone();
        let Some(interface) = d.interface else {
            self.error(
                &at,
                "interface",
                "vrrp-agent needs the instance's `interface` (keepalived's unicast-only \
                 form without one is not supported)",
            );
            return None;
        };
        let Some(vrid) = d.vrid else {
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
                .unwrap_or(&at)
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
        let priority = match d.priority {
            Some(p) => p,
            None if master => Val::rule(
                255,
                "keepalived: 255 with `state MASTER` and no priority (vrrp_complete_instance)",
            ),
            None => Val::default(100, "VRRP_PRIO_DFL 100 (keepalived/include/vrrp.h)"),
        };

        let mut preempt = d
            .preempt
            .clone()
            .unwrap_or_else(|| Val::default(true, "preempt on"));
        if !preempt.v && (master || priority.v == 255) {
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

        let accept_mode = match d.accept.clone() {
            Some(a) if a.v && strict && version.v == 2 && priority.v != 255 => Val::rule(
                false,
                "keepalived: strict mode resets accept for VRRPv2 (vrrp_complete_instance)",
            ),
            Some(a) => a,
            None if priority.v == 255 => {
                Val::default(true, "the address owner (priority 255) accepts")
            }
            None if strict => Val::default(false, "no accept in strict mode"),
            None => Val::default(true, "accept unless strict mode (vrrp_complete_instance)"),
        };

        if let Some(auth_at) = &d.auth {
            if strict || version.v == 3 {
                self.note_at(
                    auth_at,
                    "authentication",
                    Severity::Harmless,
                    "keepalived itself ignores authentication here (strict mode or VRRPv3); \
                     nothing to set",
                );
            } else {
                self.note_at(
                    auth_at,
                    "authentication",
                    Severity::ChangesFailover,
                    "vrrp-agent does not send or check VRRPv2 authentication yet: the \
                     keepalived peer would drop its adverts and both nodes become MASTER. \
                     Remove `authentication` on the keepalived peer (and reload it) before \
                     starting vrrp-agent",
                );
            }
        }

        let advert_interval = {
            let (us, from) = match &d.advert_int_us {
                Some(v) => (v.v, v.from.clone()),
                None => (
                    1_000_000,
                    Origin::Default("advert_int 1 (VRRP_ADVER_DFL)".into()),
                ),
            };
            // keepalived: v2 rounds to whole seconds (at least 1), v3 sends centiseconds.
            let d = if version.v == 2 {
                Duration::from_secs(((us + 500_000) / 1_000_000).clamp(1, 255))
            } else {
                Duration::from_millis((us / 10_000).max(1) * 10)
            };
            Val { v: d, from }
        };

        let mut vips = d.vips;
        if v6 {
            self.link_local_first(&at, &mut vips, vrid.v);
        }

        let garp_repeat = {
            let raw = d
                .garp_repeat
                .clone()
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
            garp_repeat,
            garp_interval,
        })
    }

    /// RFC 9568 §5.2.9: the first IPv6 address of an advert is link-local.
    fn link_local_first(&mut self, at: &Source, vips: &mut Vec<Val<VirtualIp>>, vrid: u8) {
        let is_ll = |v: &Val<VirtualIp>| matches!(v.v.addr, IpAddr::V6(a) if (a.segments()[0] & 0xffc0) == 0xfe80);
        if vips.first().is_some_and(is_ll) {
            return;
        }
        if let Some(i) = vips.iter().position(is_ll) {
            let ll = vips.remove(i);
            if let Some(a) = ll.from.line() {
                self.note_at(
                    a,
                    "virtual_ipaddress",
                    Severity::Difference,
                    format!(
                        "moved the link-local VIP {} first, as RFC 9568 §5.2.9 requires; \
                         keepalived compares VIP lists without regard to order",
                        ll.v.addr
                    ),
                );
            }
            vips.insert(0, ll);
            return;
        }
        let ll = VirtualIp {
            addr: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(vrid))),
            prefix_len: 64,
        };
        let first_at = vips
            .first()
            .and_then(|v| v.from.line())
            .unwrap_or(at)
            .clone();
        self.note_at(
            &first_at,
            "virtual_ipaddress",
            Severity::ChangesFailover,
            format!(
                "no link-local VIP: vrrp-agent needs one first (RFC 9568 §5.2.9) and added \
                 {ll}; add `{ll}` as the first line of virtual_ipaddress on the keepalived \
                 peer too, or the advert address lists differ"
            ),
        );
        vips.insert(
            0,
            Val::rule(
                ll,
                "added by the importer: RFC 9568 §5.2.9 needs a link-local VIP first",
            ),
        );
    }
}

/// `12.5` seconds -> microseconds; `None` unless a plain non-negative decimal.
fn seconds_to_us(s: &str) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 6
    {
        return None;
    }
    let int: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut us = int.checked_mul(1_000_000)?;
    let mut scale = 100_000;
    for c in frac.chars() {
        us += u64::from(c.to_digit(10)?) * scale;
        scale /= 10;
    }
    Some(us)
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// `key = value` padded to a column, then `# origin`.
/// The rendered TOML and, per line, the keepalived line its value came from,
/// so a value vrrp-agent rejects is reported at the keepalived line.
#[derive(Default)]
struct Rendered {
    text: String,
    origins: HashMap<usize, (Source, String)>,
}

impl Rendered {
    /// `code` padded to a column, then `# origin`.
    fn commented(&mut self, code: &str, from: &Origin) {
        if let Origin::Line(at, kw) = from {
            let line = self.text.matches('\n').count() + 1;
            self.origins.insert(line, (at.clone(), kw.clone()));
        }
        let _ = writeln!(self.text, "{code:<34} # {}", from.comment());
    }

    fn push_str(&mut self, s: &str) {
        self.text.push_str(s);
    }
}

/// `key = value  # origin`.
fn kv(out: &mut Rendered, key: &str, value: &str, from: &Origin) {
    out.commented(&format!("{key} = {value}"), from);
}

fn render(file: &str, g: &Globals, instances: &[Instance], notes: &[Note]) -> Rendered {
    let mut out = Rendered::default();
    let _ = writeln!(
        out.text,
        "# vrrp-agent config converted from {file} by `vrrp-agent import-keepalived`.\n\
         # Each value names the keepalived line it comes from, or the keepalived default.\n\
         # Check it with `vrrp-agent check --config FILE`."
    );
    let listed: Vec<&Note> = notes
        .iter()
        .filter(|n| n.severity != Severity::Harmless)
        .collect();
    if !listed.is_empty() {
        out.push_str("#\n# Read before running:\n");
        for n in listed {
            let _ = writeln!(out.text, "#   {n}");
        }
    }
    out.push_str("\n[global]\n");
    match &g.router_id {
        Some(r) => kv(&mut out, "router_id", &toml_str(&r.v), &r.from),
        None => out.push_str("# router_id: the host name, as in keepalived\n"),
    }
    for i in instances {
        out.push_str("\n[[instance]]\n");
        kv(&mut out, "name", &toml_str(&i.name.v), &i.name.from);
        if let Some(s) = &i.state {
            let _ = writeln!(
                out.text,
                "# state {} ({}): informational; every node starts as Backup unless priority 255",
                if s.v { "MASTER" } else { "BACKUP" },
                s.from.comment()
            );
        }
        kv(
            &mut out,
            "interface",
            &toml_str(&i.interface.v),
            &i.interface.from,
        );
        kv(&mut out, "vrid", &i.vrid.v.to_string(), &i.vrid.from);
        kv(
            &mut out,
            "priority",
            &i.priority.v.to_string(),
            &i.priority.from,
        );
        kv(
            &mut out,
            "version",
            &i.version.v.to_string(),
            &i.version.from,
        );
        kv(
            &mut out,
            "advert_interval",
            &toml_str(&format_duration(i.advert_interval.v)),
            &i.advert_interval.from,
        );
        out.push_str("virtual_ips = [\n");
        for v in &i.vips {
            out.commented(&format!("  {},", toml_str(&v.v.to_string())), &v.from);
        }
        out.push_str("]\n");
        kv(
            &mut out,
            "preempt",
            &i.preempt.v.to_string(),
            &i.preempt.from,
        );
        kv(
            &mut out,
            "preempt_delay",
            &toml_str(&format_duration(i.preempt_delay.v)),
            &i.preempt_delay.from,
        );
        kv(
            &mut out,
            "accept_mode",
            &i.accept_mode.v.to_string(),
            &i.accept_mode.from,
        );
        if i.unicast_peers.is_empty() {
            kv(
                &mut out,
                "unicast_peers",
                "[]",
                &Origin::Default("multicast (no unicast_peer)".into()),
            );
        } else {
            out.push_str("unicast_peers = [\n");
            for p in &i.unicast_peers {
                out.commented(&format!("  {},", toml_str(&p.v.to_string())), &p.from);
            }
            out.push_str("]\n");
        }
        if i.version.v == 3 && !matches!(i.vips[0].v.addr, IpAddr::V6(_)) {
            kv(
                &mut out,
                "v3_checksum",
                &toml_str("rfc5798"),
                &Origin::Default("IPv4 pseudo-header included (RFC 5798)".into()),
            );
        }
        if let Some(n) = &i.notify {
            kv(&mut out, "notify", &toml_str(&n.v), &n.from);
        }
        kv(
            &mut out,
            "garp_repeat",
            &i.garp_repeat.v.to_string(),
            &i.garp_repeat.from,
        );
        kv(
            &mut out,
            "garp_interval",
            &toml_str(&format_duration(i.garp_interval.v)),
            &i.garp_interval.from,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(seconds_to_us("1"), Some(1_000_000));
        assert_eq!(seconds_to_us("0.5"), Some(500_000));
        assert_eq!(seconds_to_us(".25"), Some(250_000));
        assert_eq!(seconds_to_us("2.000001"), Some(2_000_001));
        assert_eq!(seconds_to_us("1.0000001"), None);
        assert_eq!(seconds_to_us("-1"), None);
        assert_eq!(seconds_to_us("1s"), None);
        assert_eq!(seconds_to_us(""), None);
    }
}
