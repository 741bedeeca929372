//! Scripts and tracking: the `vrrp_script`, `track_file` and
//! `vrrp_track_process` definitions become `[[check]]`s, an instance's
//! `track_*` blocks its `track` list, the `notify*` keys the notify keys,
//! `vrrp_sync_group` a `[[sync_group]]` (its tracking added to each member,
//! as keepalived applies it to each member).
//!
//! keepalived's defaults (2.2.7, keepalived.conf(5) and `vrrp_parser.c`):
//! a `vrrp_script` has weight 0 (failure -> FAULT), interval 1 s, rise and
//! fall 1, timeout the interval; a `track_file` and a `vrrp_track_process`
//! have weight 1; a `track_interface` entry weight 0. A `track_*` entry's
//! own `weight` and `reverse`/`noreverse` override the definition's.

use super::{Converter, Draft, Origin, Val, block};
use crate::config::format_duration;
use crate::import::{Severity, Source, parse::Stmt};
use std::time::Duration;

/// One definition that becomes a `[[check]]`.
pub(super) struct CheckDef {
    pub(super) name: String,
    pub(super) at: Source,
    /// `vrrp_script`, `track_file`, ...
    keyword: String,
    /// `key = value` pairs after `name`, TOML-rendered, with their origin.
    pub(super) keys: Vec<(&'static str, String, Origin)>,
    /// The definition's weight (keepalived's default when not written).
    weight: i64,
    reverse: bool,
    /// Tracked by an instance or group (keepalived runs only those).
    pub(super) used: bool,
}

/// One `[[sync_group]]`.
pub(super) struct Group {
    pub(super) name: Val<String>,
    pub(super) members: Vec<Val<String>>,
    pub(super) notify: Vec<(&'static str, Val<String>)>,
    /// `track_*` blocks, added to each member.
    pub(super) tracks: Vec<Stmt>,
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Characters that mean a shell was expected (keepalived 1.x ran scripts
/// with `system()`; 2.x splits them into words and runs no shell).
fn has_shell_syntax(line: &str) -> bool {
    line.contains(['|', '&', ';', '>', '<', '`', '$', '*', '(', ')'])
}

/// The words after the keyword as one command line (keepalived joins an
/// unquoted multi-word script; a quoted one is a single word already).
fn command_line(s: &Stmt) -> String {
    let words: Vec<String> = s.words[1..]
        .iter()
        .map(|w| {
            if w.contains(char::is_whitespace) && s.words.len() > 2 {
                format!("\"{w}\"")
            } else {
                w.clone()
            }
        })
        .collect();
    words.join(" ")
}

impl CheckDef {
    /// The keepalived keyword that defined it.
    pub(super) fn keyword(&self) -> &str {
        &self.keyword
    }
}

impl Converter {
    /// `vrrp_script`, `track_file`/`vrrp_track_file`, `vrrp_track_process`.
    pub(super) fn definition(&mut self, s: &Stmt) {
        let Some(name) = s.arg(1) else {
            let msg = format!("`{}` needs a name", s.keyword());
            self.error(&s.at, s.keyword(), msg);
            return;
        };
        let mut def = CheckDef {
            name: name.to_owned(),
            at: s.at.clone(),
            keyword: s.keyword().to_owned(),
            keys: Vec::new(),
            weight: if s.keyword() == "vrrp_script" { 0 } else { 1 },
            reverse: false,
            used: false,
        };
        let ok = match s.keyword() {
            "vrrp_script" => self.vrrp_script(&mut def, s),
            "vrrp_track_process" => self.track_process_def(&mut def, s),
            _ => self.track_file_def(&mut def, s),
        };
        if ok {
            if self.checks.iter().any(|c| c.name == def.name) {
                let msg = format!("`{}` is defined twice; the last one is used", def.name);
                self.note(s, Severity::Difference, msg);
                self.checks.retain(|c| c.name != def.name);
            }
            self.checks.push(def);
        }
    }

    /// `weight N [reverse]` of a definition.
    fn def_weight(&mut self, def: &mut CheckDef, k: &Stmt) {
        if let Some(w) = self.int_arg(k, -254, 254) {
            def.weight = w;
            def.reverse = k.arg(2) == Some("reverse");
        }
    }

    fn timer_key(&mut self, def: &mut CheckDef, k: &Stmt, key: &'static str) -> Option<u64> {
        let us = self.seconds_arg(k)?;
        let d = format_duration(Duration::from_micros(us));
        def.keys.push((key, toml_str(&d), Origin::at(k)));
        Some(us)
    }

    // Long because: one match arm per keyword of keepalived's `vrrp_script`.
    fn vrrp_script(&mut self, def: &mut CheckDef, s: &Stmt) -> bool {
        let mut command = None;
        let mut interval = None;
        let mut timeout = None;
        let (mut rise, mut fall, mut init_fail) = (false, false, false);
        for k in block(s) {
            match k.keyword() {
                "script" => {
                    if k.arg(1).is_none() {
                        self.error(&k.at, "script", "`script` needs a command");
                        continue;
                    }
                    let line = command_line(k);
                    let argv = if has_shell_syntax(&line) {
                        self.note(
                            k,
                            Severity::Difference,
                            "shell syntax: converted as [\"/bin/sh\", \"-c\", ...] (keepalived \
                             1.x ran it with a shell; 2.x would split it into words and run \
                             no shell); better, put the command in a script file",
                        );
                        Ok(vec!["/bin/sh".into(), "-c".into(), line.clone().into()])
                    } else {
                        crate::cmdline::parse(&line)
                    };
                    match argv {
                        Ok(argv) if !argv.is_empty() => {
                            let words: Vec<String> = argv
                                .iter()
                                .map(|a| toml_str(&a.to_string_lossy()))
                                .collect();
                            command = Some((format!("[{}]", words.join(", ")), Origin::at(k)));
                        }
                        Ok(_) => self.error(&k.at, "script", "`script` needs a command"),
                        Err(e) => self.error(&k.at, "script", format!("{e}")),
                    }
                }
                "interval" => interval = self.timer_key(def, k, "interval").or(interval),
                "timeout" => {
                    if let Some(us) = self.timer_key(def, k, "timeout") {
                        timeout = Some((us, k.clone()));
                    }
                }
                "rise" | "fall" => {
                    if let Some(n) = self.int_arg(k, 1, i64::from(u32::MAX)) {
                        let key = if k.keyword() == "rise" {
                            "rise"
                        } else {
                            "fall"
                        };
                        rise |= key == "rise";
                        fall |= key == "fall";
                        def.keys.push((key, n.to_string(), Origin::at(k)));
                    }
                }
                "weight" => self.def_weight(def, k),
                "user" => {
                    if let Some(u) = self.one_arg(k) {
                        def.keys.push(("user", toml_str(u), Origin::at(k)));
                        if let Some(g) = k.arg(2) {
                            let msg = format!(
                                "the check runs with `{u}`'s primary group, not `{g}`; make \
                                 `{g}` that user's group if the script needs it"
                            );
                            self.note(k, Severity::Difference, msg);
                        }
                    }
                }
                "init_fail" => {
                    init_fail = true;
                    def.keys.push(("init_fail", "true".into(), Origin::at(k)));
                }
                _ => self.harmless(
                    k,
                    "not a vrrp_script keyword the importer knows; not carried",
                ),
            }
        }
        let Some((cmd, from)) = command else {
            self.error(&s.at, "vrrp_script", "a vrrp_script needs `script`");
            return false;
        };
        def.keys
            .insert(0, ("kind", toml_str("exec"), Origin::at(s)));
        def.keys.insert(1, ("command", cmd, from));
        let dflt = |v: &str, why: &str| (v.to_owned(), Origin::Default(why.into()));
        if interval.is_none() {
            let (v, o) = dflt("\"1s\"", "interval 1 s");
            def.keys.push(("interval", v, o));
        }
        let interval_us = interval.unwrap_or(1_000_000);
        if let Some((us, k)) = &timeout
            && *us > interval_us
        {
            // keepalived skips runs while one is in flight; ours kills it at
            // the interval.
            let msg = "keepalived lets the script run longer than its interval; vrrp-agent \
                       kills it after at most the interval and counts a failure: timeout set \
                       to the interval. Raise `interval` if the script is that slow";
            self.changes(k, msg);
            def.keys.retain(|(key, _, _)| *key != "timeout");
            timeout = None;
        }
        if timeout.is_none() {
            let (v, o) = dflt("", "timeout = the interval");
            let at = def
                .keys
                .iter()
                .find(|k| k.0 == "interval")
                .map(|k| k.1.clone());
            def.keys.push(("timeout", at.unwrap_or(v), o));
        }
        for (set, key) in [(rise, "rise"), (fall, "fall")] {
            if !set {
                def.keys
                    .push((key, "1".into(), Origin::Default(format!("{key} 1"))));
            }
        }
        if !init_fail {
            let o = Origin::Default("starts unknown (no init_fail)".into());
            def.keys.push(("init_fail", "false".into(), o));
        }
        true
    }

    fn track_file_def(&mut self, def: &mut CheckDef, s: &Stmt) -> bool {
        let mut path = None;
        for k in block(s) {
            match k.keyword() {
                "file" => {
                    if let Some(p) = self.one_arg(k) {
                        path = Some((toml_str(p), Origin::at(k)));
                    }
                }
                "weight" => self.def_weight(def, k),
                "init_file" => self.changes(
                    k,
                    "vrrp-agent does not create or initialise the file: create it before \
                     starting (e.g. `echo 0 > FILE` in the unit's ExecStartPre)",
                ),
                _ => self.harmless(
                    k,
                    "not a track_file keyword the importer knows; not carried",
                ),
            }
        }
        let Some((p, from)) = path else {
            self.error(&s.at, s.keyword(), "a track_file needs `file`");
            return false;
        };
        def.keys.push(("kind", toml_str("file"), Origin::at(s)));
        def.keys.push(("path", p, from));
        true
    }

    fn track_process_def(&mut self, def: &mut CheckDef, s: &Stmt) -> bool {
        let mut process = None;
        for k in block(s) {
            match k.keyword() {
                "process" => {
                    let Some(p) = self.one_arg(k) else { continue };
                    if k.words.len() > 2 {
                        self.changes(
                            k,
                            "vrrp-agent matches the process name only (/proc/PID/comm), not \
                             its parameters: use an exec check (`pgrep -xf ...`) instead",
                        );
                    }
                    process = Some((toml_str(p), Origin::at(k)));
                }
                "weight" => self.def_weight(def, k),
                "quorum" => {
                    if k.arg(1) != Some("1") {
                        self.changes(
                            k,
                            "vrrp-agent needs one matching process: for a minimum count, \
                             use an exec check (`test $(pgrep -xc NAME) -ge N`)",
                        )
                    }
                }
                "quorum_max" | "param_match" | "full_command" => self.changes(
                    k,
                    "vrrp-agent matches one process by name (/proc/PID/comm): use an exec \
                     check (`pgrep -f ...`) for this match",
                ),
                "delay" | "fork_delay" | "terminate_delay" => {
                    if let Some(us) = self.seconds_arg(k) {
                        let n = us.div_ceil(1_000_000).max(1);
                        let msg = format!(
                            "vrrp-agent polls every interval (1s) instead of waiting on \
                             process events; rise/fall = {} give about the same delay",
                            n + 1
                        );
                        self.note(k, Severity::Difference, msg);
                    }
                }
                _ => self.harmless(
                    k,
                    "not a vrrp_track_process keyword the importer knows; not carried",
                ),
            }
        }
        let Some((p, from)) = process else {
            self.error(&s.at, s.keyword(), "a vrrp_track_process needs `process`");
            return false;
        };
        self.note(
            s,
            Severity::Difference,
            "keepalived sees process starts and exits at once (proc connector); \
             vrrp-agent looks every interval (1s by default)",
        );
        def.keys.push(("kind", toml_str("process"), Origin::at(s)));
        def.keys.push(("process", p, from));
        let why = "polled: keepalived reacts to process events at once";
        def.keys
            .push(("interval", toml_str("1s"), Origin::Rule(why.into())));
        true
    }

    /// `notify`, `notify_master|backup|fault|stop SCRIPT [USER [GROUP]]`
    /// of an instance or a group, carried as written (same quoting).
    pub(super) fn notify_key(&mut self, out: &mut Vec<(&'static str, Val<String>)>, s: &Stmt) {
        let key = match s.keyword() {
            "notify" => "notify",
            "notify_master" => "notify_master",
            "notify_backup" => "notify_backup",
            "notify_fault" => "notify_fault",
            _ => "notify_stop",
        };
        let Some(cmd) = s.arg(1) else {
            self.error(&s.at, key, format!("`{key}` needs a script"));
            return;
        };
        if let Err(e) = crate::cmdline::parse(cmd) {
            self.error(&s.at, key, format!("{e}"));
            return;
        }
        out.retain(|(k, _)| *k != key);
        out.push((key, Val::new(cmd.to_owned(), s)));
        if let Some(user) = s.arg(2) {
            self.note(
                s,
                Severity::Difference,
                format!(
                    "the script runs as vrrp-agent's user (root), not as `{user}`; drop \
                     privileges inside the script"
                ),
            );
        }
    }

    pub(super) fn sync_group(&mut self, s: &Stmt) {
        let Some(name) = s.arg(1) else {
            self.error(&s.at, "vrrp_sync_group", "vrrp_sync_group needs a name");
            return;
        };
        let mut g = Group {
            name: Val::new(name.to_owned(), s),
            members: Vec::new(),
            notify: Vec::new(),
            tracks: Vec::new(),
        };
        for k in block(s) {
            match k.keyword() {
                "group" => {
                    for m in block(k) {
                        g.members.push(Val::new(m.keyword().to_owned(), m));
                    }
                }
                "notify" | "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => {
                    self.notify_key(&mut g.notify, k)
                }
                "track_script" | "track_interface" | "track_file" | "track_process" => {
                    g.tracks.push(k.clone())
                }
                "track_bfd" => self.changes(
                    k,
                    "vrrp-agent has no BFD: track the path with an exec check instead",
                ),
                "sync_group_tracking_weight" => self.changes(
                    k,
                    "vrrp-agent counts member weights as 0 (FAULT on failure), as keepalived \
                     does without this keyword",
                ),
                _ => self.harmless(k, "not carried; nothing to set in vrrp-agent"),
            }
        }
        if g.members.is_empty() {
            self.harmless(
                s,
                "a sync group without `group` members; keepalived ignores it",
            );
            return;
        }
        self.groups.push(g);
    }

    /// An instance's `track_*` block: each entry added to the draft's track list.
    pub(super) fn track(&mut self, track: &mut Vec<Val<String>>, s: &Stmt) {
        if s.keyword() == "track_bfd" {
            self.changes(
                s,
                "vrrp-agent has no BFD: track the path with an exec check instead",
            );
            return;
        }
        for t in block(s) {
            if let Some(entry) = self.track_entry(s.keyword(), t) {
                track.push(entry);
            }
        }
    }

    /// `NAME [weight N [reverse|noreverse]]` -> `{ check = .., weight = .. }`.
    fn track_entry(&mut self, block_kw: &str, t: &Stmt) -> Option<Val<String>> {
        let name = t.keyword();
        let (mut weight, mut reverse, target) = if block_kw == "track_interface" {
            (0, false, format!("interface = {}", toml_str(name)))
        } else {
            let Some(def) = self.checks.iter_mut().find(|c| c.name == name) else {
                let msg = format!("`{name}` is not defined in this file (keepalived ignores it)");
                self.note_at(&t.at, block_kw, Severity::Harmless, msg);
                return None;
            };
            def.used = true;
            (
                def.weight,
                def.reverse,
                format!("check = {}", toml_str(name)),
            )
        };
        match t.arg(1) {
            None => {}
            Some("weight") => {
                let w = t.arg(2).and_then(|w| w.parse::<i64>().ok());
                match w {
                    Some(w) if (-254..=254).contains(&w) => weight = w,
                    _ => {
                        self.error(&t.at, block_kw, "`weight` needs a number in -254..=254");
                        return None;
                    }
                }
                match t.arg(3) {
                    Some("reverse") => reverse = true,
                    Some("noreverse") => reverse = false,
                    _ => {}
                }
            }
            Some(other) => {
                let msg = format!("`{other}` after `{name}`: only `weight N` is known");
                self.error(&t.at, block_kw, msg);
                return None;
            }
        }
        let rev = if reverse { ", reverse = true" } else { "" };
        let v = format!("{{ {target}, weight = {weight}{rev} }}");
        Some(Val {
            v,
            from: Origin::Line(t.at.clone(), block_kw.to_owned()),
        })
    }

    /// Adds each group's tracking to its members' drafts.
    pub(super) fn group_tracks(&mut self, drafts: &mut [Draft]) {
        let groups = std::mem::take(&mut self.groups);
        for g in &groups {
            let mut entries = Vec::new();
            for s in &g.tracks {
                self.track(&mut entries, s);
            }
            for m in &g.members {
                if let Some(d) = drafts.iter_mut().find(|d| d.name == m.v) {
                    d.track.extend(entries.iter().cloned());
                }
            }
        }
        self.groups = groups;
    }

    /// Keeps the members that name an instance (keepalived drops the others
    /// with a warning); a group left without members is dropped.
    pub(super) fn prune_groups(&mut self, names: &[String]) {
        let mut groups = std::mem::take(&mut self.groups);
        for g in &mut groups {
            let mut keep = Vec::new();
            for m in std::mem::take(&mut g.members) {
                if names.contains(&m.v) {
                    keep.push(m);
                } else if let Origin::Line(at, _) = &m.from {
                    let msg = format!("no vrrp_instance `{}`; keepalived ignores it", m.v);
                    self.note_at(at, "group", Severity::Harmless, msg);
                }
            }
            g.members = keep;
        }
        groups.retain(|g| !g.members.is_empty());
        self.groups = groups;
    }

    /// Definitions no instance or group tracks: keepalived does not run them.
    pub(super) fn unused_checks(&mut self) {
        let unused: Vec<(Source, String, String)> = self
            .checks
            .iter()
            .filter(|c| !c.used)
            .map(|c| (c.at.clone(), c.keyword.clone(), c.name.clone()))
            .collect();
        for (at, kw, name) in unused {
            let msg = format!(
                "`{name}` is tracked by no instance: keepalived does not run it; not carried"
            );
            self.note_at(&at, &kw, Severity::Harmless, msg);
        }
        self.checks.retain(|c| c.used);
    }
}
