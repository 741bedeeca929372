//! The walk over the config document: every key read through a typed
//! getter, every problem collected with its span (see [`super`]).
//!
//! Reading a key is one call: `Parser::opt` (with its default) or
//! `Parser::req`, given a reader (`string`, `int_in`, `boolean`,
//! `duration`, ...) that turns the value into a typed one or a message. The
//! getters record the keys they ask for, so a new key needs no second list.
//! Rules across keys (one family per instance, what one advert can carry, the
//! interval the version can encode) follow the getters; rules across
//! instances (unique names and (interface, vrid, family)) run last.
//!
//! This file holds the parser, the document walk, `[global]` and the
//! cross-instance rules; `instance` reads one `[[instance]]`, `tracking`
//! the checks, tracks, notify keys and sync groups.

use std::{
    collections::{HashMap, hash_map::Entry},
    hash::Hash,
    ops::Range,
    path::PathBuf,
};

use toml::{
    Spanned,
    de::{DeTable, DeValue},
};

use super::values::{Reader, duration, int_in, non_empty, string};
use super::{Config, DEFAULT_CONTROL_SOCKET, DEFAULT_NOTIFY_TIMEOUT, Global, XdpMode, line_col};

mod instance;
mod tracking;
use crate::proto::packet::Family;

fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

type Span = Range<usize>;
type Val<'i> = Spanned<DeValue<'i>>;

/// The top-level sections; a new one is a line here and a line in
/// `Parser::document`. A new key is one getter call: the getters record the
/// keys they ask for, and every other key of a table is reported as unknown.
const SECTIONS: &[&str] = &["global", "instance", "check", "sync_group"];

/// Collects problems while walking the document.
pub(super) struct Parser<'t> {
    text: &'t str,
    /// Errors, with the span they point at.
    pub(super) problems: Vec<(Span, String)>,
    /// Valid but dubious settings.
    pub(super) warnings: Vec<(Span, String)>,
    /// Look at the system: scripts and check commands exist and may run.
    preflight: bool,
}

/// What one instance contributes to the cross-instance uniqueness checks.
#[derive(Default)]
struct Seen {
    name: Option<(String, Span)>,
    key: Option<((String, u8, Family), Span)>,
}

/// One table being read, with the keys asked for so far.
struct Section<'a, 'i> {
    table: &'a DeTable<'i>,
    /// Offset of the section header, where a missing key is reported.
    at: usize,
    known: Vec<&'static str>,
}

impl<'a, 'i> Section<'a, 'i> {
    fn new(table: &'a DeTable<'i>, at: usize) -> Self {
        Section {
            table,
            at,
            known: Vec::new(),
        }
    }

    fn get(&mut self, key: &'static str) -> Option<&'a Val<'i>> {
        self.known.push(key);
        self.table.get(key)
    }

    fn span(&self, key: &str) -> Option<Span> {
        self.table.get(key).map(|v| v.span())
    }
}

impl<'t> Parser<'t> {
    pub(super) fn new(text: &'t str, preflight: bool) -> Self {
        Parser {
            text,
            problems: Vec::new(),
            warnings: Vec::new(),
            preflight,
        }
    }

    fn err(&mut self, span: Span, msg: impl Into<String>) {
        self.problems.push((span, msg.into()));
    }

    /// The value, or `None` after reporting the error at `span`.
    fn check<T>(&mut self, span: Span, r: Result<T, String>) -> Option<T> {
        r.map_err(|e| self.err(span, e)).ok()
    }

    /// An optional key: `default` when absent, `None` when present but invalid.
    fn opt<T>(
        &mut self,
        s: &mut Section,
        key: &'static str,
        default: T,
        read: Reader<T>,
    ) -> Option<T> {
        match s.get(key) {
            None => Some(default),
            Some(v) => self.check(v.span(), read(key, v.get_ref())),
        }
    }

    /// A required key; a missing one is reported at the section header.
    fn req<T>(&mut self, s: &mut Section, key: &'static str, read: Reader<T>) -> Option<T> {
        match s.get(key) {
            None => {
                self.missing(s, key);
                None
            }
            Some(v) => self.check(v.span(), read(key, v.get_ref())),
        }
    }

    fn missing(&mut self, s: &Section, key: &str) {
        self.err(s.at..s.at, format!("missing required key `{key}`"));
    }

    /// Reports the keys of `s` that no getter asked for.
    fn unknown_keys(&mut self, s: &Section, section: &str) {
        for (k, _) in s.table.iter() {
            let key = k.get_ref().as_ref();
            if !s.known.contains(&key) {
                let hint = suggest(key, &s.known);
                self.err(k.span(), format!("unknown key `{key}` in {section}{hint}"));
            }
        }
    }

    /// The whole document; `None` (or any entry in `problems`) if invalid.
    pub(super) fn document(&mut self) -> Option<Config> {
        let root = match DeTable::parse(self.text) {
            Ok(r) => r,
            Err(e) => {
                let msg = format!("TOML syntax error: {}", e.message().trim());
                self.err(e.span().unwrap_or(0..0), msg);
                return None;
            }
        };
        let at = root.span().start;
        let root = root.into_inner();
        for (k, _) in root.iter() {
            let name = k.get_ref().as_ref();
            if !SECTIONS.contains(&name) {
                let hint = suggest(name, SECTIONS);
                self.err(k.span(), format!("unknown section `{name}`{hint}"));
            }
        }
        let global = self.global(root.get("global"));
        let checks = self.checks(root.get("check"));
        let groups = self.sync_groups(root.get("sync_group"));
        let mut instances = Vec::new();
        let mut seen = Vec::new();
        for v in self.tables(root.get("instance"), "instance", at) {
            let mut s = Seen::default();
            instances.extend(self.instance(v, &mut s, &checks, &groups));
            seen.push(s);
        }
        self.cross_instance(&seen);
        self.cross_groups(&groups, &seen);
        Some(Config {
            global: global?,
            instances,
            checks: checks.into_iter().map(|(c, _)| c).collect(),
            sync_groups: groups.into_iter().map(|g| g.group).collect(),
        })
    }

    /// The tables of a required `[[name]]` section.
    fn tables<'v, 'i>(
        &mut self,
        v: Option<&'v Val<'i>>,
        name: &str,
        at: usize,
    ) -> Vec<&'v Val<'i>> {
        let Some(v) = v else {
            self.err(at..at, format!("no [[{name}]] configured"));
            return Vec::new();
        };
        match v.get_ref() {
            DeValue::Array(arr) if !arr.is_empty() => arr.iter().collect(),
            DeValue::Array(_) => {
                self.err(v.span(), format!("no [[{name}]] configured"));
                Vec::new()
            }
            _ => {
                self.err(
                    v.span(),
                    format!("`{name}` must be an array of tables: write [[{name}]]"),
                );
                Vec::new()
            }
        }
    }

    fn cross_instance(&mut self, seen: &[Seen]) {
        let mut names = HashMap::new();
        let mut keys = HashMap::new();
        for s in seen {
            if let Some((name, span)) = &s.name {
                self.unique(&mut names, name, span, |name, line| {
                    format!("duplicate instance name `{name}` (first used on line {line})")
                });
            }
            if let Some((key, span)) = &s.key {
                self.unique(&mut keys, key, span, |(iface, vrid, family), line| {
                    format!(
                        "vrid {vrid} is already used for {} on interface `{iface}` (line {line}); \
                         (interface, vrid, family) must be unique",
                        family_name(*family)
                    )
                });
            }
        }
    }

    /// Reports `key` at `span` if an earlier entry of `first` has it
    /// (`dup` gets the key and the first use's line).
    fn unique<K: Eq + Hash>(
        &mut self,
        first: &mut HashMap<K, usize>,
        key: K,
        span: &Span,
        dup: impl FnOnce(&K, usize) -> String,
    ) {
        match first.entry(key) {
            Entry::Occupied(e) => {
                let msg = dup(e.key(), line_col(self.text, *e.get()).0);
                self.err(span.clone(), msg);
            }
            Entry::Vacant(e) => {
                e.insert(span.start);
            }
        }
    }

    fn global(&mut self, v: Option<&Val<'_>>) -> Option<Global> {
        let empty = DeTable::default();
        let t = &mut match v.map(|v| (v, v.get_ref())) {
            None => Section::new(&empty, 0),
            Some((v, DeValue::Table(t))) => Section::new(t, v.span().start),
            Some((v, _)) => {
                self.err(v.span(), "`global` must be a table: write [global]");
                return None;
            }
        };
        let router_id = self.opt(t, "router_id", None, |k, v| {
            non_empty(k, v).map(|s| Some(s.to_owned()))
        });
        let control_socket = self.opt(
            t,
            "control_socket",
            DEFAULT_CONTROL_SOCKET.into(),
            |k, v| non_empty(k, v).map(PathBuf::from),
        );
        let xdp = self.opt(t, "xdp", XdpMode::Auto, |k, v| {
            string(k, v)?.parse().map_err(|e| format!("`{k}`: {e}"))
        });
        let metrics_listen = self.opt(t, "metrics_listen", None, |k, v| {
            let s = string(k, v)?;
            s.parse().map(Some).map_err(|_| {
                format!("`{k}`: `{s}` is not an address:port (e.g. \"127.0.0.1:9477\")")
            })
        });
        let notify_timeout =
            self.opt(
                t,
                "notify_timeout",
                DEFAULT_NOTIFY_TIMEOUT,
                |k, v| match duration(k, v)? {
                    d if d.is_zero() => Err(format!("`{k}` must be greater than 0")),
                    d => Ok(d),
                },
            );
        let advert_dscp = self.opt(t, "advert_dscp", crate::tx::DEFAULT_ADVERT_DSCP, |k, v| {
            int_in(k, v, 0u8, 63)
        });
        self.unknown_keys(t, "[global]");
        Some(Global {
            router_id: router_id?.unwrap_or_else(default_router_id),
            control_socket: control_socket?,
            xdp: xdp?,
            metrics_listen: metrics_listen?,
            notify_timeout: notify_timeout?,
            advert_dscp: advert_dscp?,
        })
    }
}

/// `, did you mean `x`?` when a known key is within edit distance 2.
fn suggest(key: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!(", did you mean `{k}`?"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn default_router_id() -> String {
    // The UTS hostname, as uname(2) reports it; reading it touches nothing.
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "vrrp-agent".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("priorty", &["name", "priority"]),
            ", did you mean `priority`?"
        );
        assert_eq!(suggest("zzzzzzzz", &["name", "priority"]), "");
    }
}
