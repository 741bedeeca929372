//! `[[check]]`, an instance's `track` and notify keys, `[[sync_group]]`:
//! read with the same getters as the rest, validated by
//! [`crate::checks::spec`] with each error at its key. With `preflight`
//! (`vrrp-agent check`, `run`), every script and `exec` command must exist
//! and be executable; one writable by other users is a warning.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf};

use toml::de::{DeTable, DeValue};

use super::{
    super::values::{boolean, check_ifname, duration, int_in, non_empty, script, string, strings},
    Parser, Section, Seen, Span, Val,
};
use crate::{
    checks::{
        CheckKind, CheckSpec, InitialState, ProcessTarget, TrackSpec, TrackTarget,
        spec::{DEFAULT_INTERVAL, TrackSpecError},
    },
    cmdline::{self, RunAs},
    config::{Notify, Script, SyncGroup},
};

/// A sync group with the spans the cross checks point at.
pub(in crate::config) struct ParsedGroup {
    pub(in crate::config) group: SyncGroup,
    name_span: Span,
    member_spans: Vec<Span>,
}

impl Parser<'_> {
    /// The tables of an optional `[[name]]` section.
    fn optional_tables<'v, 'i>(&mut self, v: Option<&'v Val<'i>>, name: &str) -> Vec<&'v Val<'i>> {
        match v.map(|v| (v, v.get_ref())) {
            None => Vec::new(),
            Some((_, DeValue::Array(arr))) => arr.iter().collect(),
            Some((v, _)) => {
                let msg = format!("`{name}` must be an array of tables: write [[{name}]]");
                self.err(v.span(), msg);
                Vec::new()
            }
        }
    }

    /// A table of an array, or an error at `v`.
    fn table_of<'v, 'i>(&mut self, v: &'v Val<'i>, name: &str) -> Option<&'v DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.err(v.span(), format!("each `{name}` must be a table"));
                None
            }
        }
    }

    /// Every `[[check]]`, with the span of its name; names are unique.
    pub(super) fn checks(&mut self, v: Option<&Val<'_>>) -> Vec<(CheckSpec, Span)> {
        let mut out: Vec<(CheckSpec, Span)> = Vec::new();
        let mut first = HashMap::new();
        for v in self.optional_tables(v, "check") {
            let Some(t) = self.table_of(v, "check") else {
                continue;
            };
            let t = &mut Section::new(t, v.span().start);
            let spec = self.check_table(t);
            let span = t.span("name").unwrap_or(t.at..t.at);
            if let Some(DeValue::String(name)) = t.table.get("name").map(|n| n.get_ref()) {
                self.unique(&mut first, name.to_string(), &span, |n, line| {
                    format!("duplicate check name `{n}` (first used on line {line})")
                });
            }
            out.extend(spec.map(|s| (s, span)));
        }
        out
    }

    /// One `[[check]]`.
    fn check_table(&mut self, t: &mut Section) -> Option<CheckSpec> {
        let name = self.req(t, "name", |k, v| non_empty(k, v).map(str::to_owned));
        let kind = self.req(t, "kind", |k, v| match string(k, v)? {
            s @ ("exec" | "tcp" | "process" | "file") => Ok(s.to_owned()),
            s => Err(format!(
                "`{k}` must be \"exec\", \"tcp\", \"process\" or \"file\", found `{s}`"
            )),
        });
        let interval = self.opt(t, "interval", DEFAULT_INTERVAL, duration);
        let timeout = self.opt(t, "timeout", None, |k, v| duration(k, v).map(Some));
        let rise = self.opt(t, "rise", 1, |k, v| int_in(k, v, 0, u32::MAX));
        let fall = self.opt(t, "fall", 1, |k, v| int_in(k, v, 0, u32::MAX));
        let init_fail = self.opt(t, "init_fail", false, boolean);
        let what = self.check_kind(t, kind.as_deref());
        let label = match &kind {
            Some(k) => format!("a {k} [[check]]"),
            None => "[[check]]".to_owned(),
        };
        self.unknown_keys(t, &label);
        let interval = interval?;
        let spec = CheckSpec {
            name: name?,
            kind: what?,
            interval,
            timeout: timeout?.unwrap_or(interval),
            rise: rise?,
            fall: fall?,
            initial: if init_fail? {
                InitialState::Down
            } else {
                InitialState::Unknown
            },
        };
        let errors = spec.validate();
        let valid = errors.is_empty();
        for e in errors {
            let span = t.span(e.key()).unwrap_or(t.at..t.at);
            self.err(span, format!("`{}`: {e}", e.key()));
        }
        if valid && self.preflight {
            match spec.preflight() {
                Ok(warnings) => {
                    let span = t.span("command").unwrap_or(t.at..t.at);
                    for w in warnings {
                        self.warnings
                            .push((span.clone(), format!("`command`: {w}")));
                    }
                }
                Err(e) => {
                    let span = t.span(e.key()).unwrap_or(t.at..t.at);
                    self.err(span, format!("`{}`: {e}", e.key()));
                }
            }
        }
        valid.then_some(spec)
    }

    /// The keys of one kind of check.
    fn check_kind(&mut self, t: &mut Section, kind: Option<&str>) -> Option<CheckKind> {
        match kind? {
            "exec" => {
                let command = self.req(t, "command", strings);
                let user = self.opt(t, "user", None, |k, v| {
                    non_empty(k, v).map(|s| Some(s.to_owned()))
                });
                Some(CheckKind::Exec {
                    command: command?,
                    user: user?,
                })
            }
            "tcp" => {
                let address = self.req(t, "address", |k, v| {
                    let s = string(k, v)?;
                    s.parse::<SocketAddr>().map_err(|_| {
                        format!("`{k}`: `{s}` is not an address:port (e.g. \"127.0.0.1:6379\")")
                    })
                });
                Some(CheckKind::Tcp { address: address? })
            }
            "process" => {
                let process = self.opt(t, "process", None, |k, v| {
                    string(k, v).map(|s| Some(s.to_owned()))
                });
                let pidfile = self.opt(t, "pidfile", None, |k, v| {
                    non_empty(k, v).map(|s| Some(PathBuf::from(s)))
                });
                match (process?, pidfile?) {
                    (Some(name), None) => Some(CheckKind::Process(ProcessTarget::Name(name))),
                    (None, Some(path)) => Some(CheckKind::Process(ProcessTarget::Pidfile(path))),
                    (None, None) => {
                        let msg = "a process check needs `process` (a name) or `pidfile`";
                        self.err(t.at..t.at, msg);
                        None
                    }
                    (Some(_), Some(_)) => {
                        let span = t.span("pidfile").unwrap_or(t.at..t.at);
                        self.err(span, "`process` and `pidfile` exclude each other: give one");
                        None
                    }
                }
            }
            "file" => {
                let path = self.req(t, "path", |k, v| non_empty(k, v).map(PathBuf::from));
                Some(CheckKind::File { path: path? })
            }
            _ => None,
        }
    }

    /// `notify` and `notify_master/backup/fault/stop`, each a command line
    /// with keepalived's quoting, pre-flighted when asked.
    pub(super) fn notify(&mut self, t: &mut Section) -> Option<Notify> {
        let mut one = |p: &mut Self, key: &'static str| {
            let s = p.opt(t, key, None, script)?;
            if let (Some(s), true) = (&s, p.preflight) {
                let span = t.span(key).unwrap_or(t.at..t.at);
                p.preflight_script(key, s, span);
            }
            Some(s)
        };
        let any = one(self, "notify");
        let master = one(self, "notify_master");
        let backup = one(self, "notify_backup");
        let fault = one(self, "notify_fault");
        let stop = one(self, "notify_stop");
        Some(Notify {
            any: any?,
            master: master?,
            backup: backup?,
            fault: fault?,
            stop: stop?,
        })
    }

    fn preflight_script(&mut self, key: &str, s: &Script, span: Span) {
        match cmdline::preflight(&s.argv, RunAs::ROOT) {
            Ok(p) => {
                for w in p.warnings {
                    self.warnings.push((span.clone(), format!("`{key}`: {w}")));
                }
            }
            Err(e) => self.err(span, format!("`{key}`: {e}")),
        }
    }

    /// An instance's `track` list, validated against the checks.
    pub(super) fn track(
        &mut self,
        t: &mut Section,
        checks: &[(CheckSpec, Span)],
        priority: Option<u8>,
        in_group: bool,
    ) -> Option<Vec<TrackSpec>> {
        let Some(v) = t.get("track") else {
            return Some(Vec::new());
        };
        let DeValue::Array(items) = v.get_ref() else {
            let msg = "`track` must be an array of tables, e.g. [{ check = \"redis_alive\" }]";
            self.err(v.span(), msg);
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            match self.track_entry(item, checks, priority, in_group) {
                Some(spec) => out.push(spec),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn track_entry(
        &mut self,
        item: &Val<'_>,
        checks: &[(CheckSpec, Span)],
        priority: Option<u8>,
        in_group: bool,
    ) -> Option<TrackSpec> {
        let DeValue::Table(tt) = item.get_ref() else {
            let msg =
                "a `track` entry must be a table: { check = \"name\" } or { interface = \"eth1\" }";
            self.err(item.span(), msg);
            return None;
        };
        let s = &mut Section::new(tt, item.span().start);
        let check = self.opt(s, "check", None, |k, v| {
            non_empty(k, v).map(|x| Some(x.to_owned()))
        });
        let interface = self.opt(s, "interface", None, |k, v| {
            let x = string(k, v)?;
            check_ifname(x).map_err(|e| format!("`{k}`: {e}"))?;
            Ok(Some(x.to_owned()))
        });
        let weight = self.opt(s, "weight", 0, |k, v| int_in(k, v, -254, 254));
        let reverse = self.opt(s, "reverse", false, boolean);
        self.unknown_keys(s, "a `track` entry");
        let target = match (check?, interface?) {
            (Some(c), None) => TrackTarget::Check(c),
            (None, Some(i)) => TrackTarget::Interface(i),
            (None, None) => {
                self.err(item.span(), "a `track` entry needs `check` or `interface`");
                return None;
            }
            (Some(_), Some(_)) => {
                let msg = "a `track` entry names one `check` or one `interface`, not both";
                self.err(item.span(), msg);
                return None;
            }
        };
        let spec = TrackSpec {
            target,
            weight: weight?,
            reverse: reverse?,
        };
        let check = match &spec.target {
            TrackTarget::Check(name) => checks.iter().find(|(c, _)| c.name == *name),
            TrackTarget::Interface(_) => None,
        };
        let at = |key| s.span(key).unwrap_or(item.span());
        match spec.validate(check.map(|(c, _)| c), priority.unwrap_or(100), in_group) {
            Ok(warnings) => {
                for w in warnings {
                    self.warnings.push((at("weight"), w.to_string()));
                }
                Some(spec)
            }
            Err(e) => {
                let key = match e {
                    TrackSpecError::UnknownCheck(_) => "check",
                    TrackSpecError::WeightRange { .. } => "weight",
                };
                self.err(at(key), format!("`{key}`: {e}"));
                None
            }
        }
    }

    /// Every `[[sync_group]]`.
    pub(super) fn sync_groups(&mut self, v: Option<&Val<'_>>) -> Vec<ParsedGroup> {
        let mut out = Vec::new();
        for v in self.optional_tables(v, "sync_group") {
            let Some(t) = self.table_of(v, "sync_group") else {
                continue;
            };
            let t = &mut Section::new(t, v.span().start);
            let name = self.req(t, "name", |k, v| non_empty(k, v).map(str::to_owned));
            let members = self.members(t);
            let notify = self.notify(t);
            self.unknown_keys(t, "[[sync_group]]");
            if let (Some(name), Some((instances, member_spans)), Some(notify)) =
                (name, members, notify)
            {
                out.push(ParsedGroup {
                    group: SyncGroup {
                        name,
                        instances,
                        notify,
                    },
                    name_span: t.span("name").unwrap_or(t.at..t.at),
                    member_spans,
                });
            }
        }
        out
    }

    /// A group's `instances`, with the span of each.
    fn members(&mut self, t: &mut Section) -> Option<(Vec<String>, Vec<Span>)> {
        let Some(v) = t.get("instances") else {
            self.missing(t, "instances");
            return None;
        };
        let DeValue::Array(items) = v.get_ref() else {
            self.err(v.span(), "`instances` must be an array of instance names");
            return None;
        };
        if items.is_empty() {
            self.err(v.span(), "`instances` needs at least one instance name");
            return None;
        }
        let mut names = Vec::new();
        let mut spans = Vec::new();
        for item in items.iter() {
            let name = non_empty("instances", item.get_ref()).map(str::to_owned);
            names.push(self.check(item.span(), name)?);
            spans.push(item.span());
        }
        Some((names, spans))
    }

    /// Groups have unique names, name existing instances, each instance in
    /// one group at most.
    pub(super) fn cross_groups(&mut self, groups: &[ParsedGroup], seen: &[Seen]) {
        let mut names = HashMap::new();
        let mut members = HashMap::new();
        for g in groups {
            self.unique(&mut names, g.group.name.clone(), &g.name_span, |n, line| {
                format!("duplicate sync group name `{n}` (first used on line {line})")
            });
            for (m, span) in g.group.instances.iter().zip(&g.member_spans) {
                if !seen
                    .iter()
                    .any(|s| s.name.as_ref().is_some_and(|(n, _)| n == m))
                {
                    self.err(span.clone(), format!("no [[instance]] named `{m}`"));
                    continue;
                }
                self.unique(&mut members, m.clone(), span, |m, line| {
                    format!("instance `{m}` is already in a sync group (line {line}); one group per instance")
                });
            }
        }
    }
}
