//! keepalived statements -> vrrp-agent TOML, one `match` arm per keyword.
//!
//! Two passes: `global_defs` first (keepalived applies its defaults when it
//! completes each instance, so their position in the file does not matter),
//! then everything else. Each instance is collected into a `Draft` and
//! completed with keepalived's `vrrp_complete_instance()` rules before it is
//! rendered. The rendered text is checked with [`Config::parse`]; a failure
//! there is an importer bug and is reported as an error.
//!
//! Files, one per keepalived section: `global.rs` (`global_defs`),
//! `instance.rs` (`vrrp_instance` keywords), `vip.rs` (`virtual_ipaddress`,
//! `unicast_peer`), `scripts.rs` (`vrrp_script`, `track_file`,
//! `vrrp_track_process`, `track_*`, `notify*`, `vrrp_sync_group`),
//! `complete.rs` (keepalived's completion rules, one helper per rule),
//! `render.rs` (the TOML output).

use std::{collections::HashMap, net::IpAddr, time::Duration};

use super::{Note, Severity, Source, parse::Stmt};
use crate::config::{Config, ConfigError, VirtualIp};

mod complete;
mod global;
mod instance;
mod render;
mod scripts;
mod vip;

use render::render;

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
    notify: Vec<(&'static str, Val<String>)>,
    /// Rendered `track` entries.
    track: Vec<Val<String>>,
    garp_repeat: Option<Val<u32>>,
    /// The `authentication` block; judged once the version is known.
    auth: Option<Auth>,
    /// `unicast_src_ip` / `mcast_src_ip`.
    unicast_src: Option<Val<IpAddr>>,
}

/// An `authentication` block as read.
struct Auth {
    at: Source,
    /// `auth_type`, as written.
    kind: Option<Val<String>>,
    /// `auth_pass`, as written (keepalived sends its first 8 bytes).
    pass: Option<Val<String>>,
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
    notify: Vec<(&'static str, Val<String>)>,
    track: Vec<Val<String>>,
    garp_repeat: Val<u32>,
    garp_interval: Val<Duration>,
    auth_pass: Option<Val<String>>,
    unicast_src: Option<Val<IpAddr>>,
}

struct Converter {
    notes: Vec<Note>,
    globals: Globals,
    /// `vrrp_script` / `track_file` / `vrrp_track_process` definitions.
    checks: Vec<scripts::CheckDef>,
    /// `vrrp_sync_group`s.
    groups: Vec<scripts::Group>,
}

/// Converts the statements of one keepalived.conf; `file` names the source
/// in the header. Returns the TOML (when it could be built) and the notes.
pub fn convert(stmts: &[Stmt], file: &str) -> (Option<String>, Vec<Note>) {
    let mut c = Converter {
        notes: Vec::new(),
        globals: Globals::default(),
        checks: Vec::new(),
        groups: Vec::new(),
    };
    // First pass: what keepalived resolves when it completes an instance,
    // wherever it is in the file.
    for s in stmts {
        match s.keyword() {
            "global_defs" => block(s).iter().for_each(|g| c.global_keyword(g)),
            "vrrp_script" | "track_file" | "vrrp_track_file" | "vrrp_track_process" => {
                c.definition(s)
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
    c.group_tracks(&mut drafts);
    c.unused_checks();
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
    let names: Vec<String> = instances.iter().map(|i| i.name.v.clone()).collect();
    c.prune_groups(&names);
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
    let out = render(file, &c.globals, &instances, &c.checks, &c.groups, &c.notes);
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

    fn top_keyword(&mut self, s: &Stmt) -> Option<Draft> {
        match s.keyword() {
            "global_defs" => None,
            "vrrp_instance" => self.instance(s),
            "vrrp_script" | "track_file" | "vrrp_track_file" | "vrrp_track_process" => None,
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
