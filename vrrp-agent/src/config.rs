//! The configuration file: TOML, validated in one pass that reports every
//! problem with its position (`FILE:LINE:COL: message`).
//!
//! The document is read into toml's span-carrying tree ([`DeTable`]) and walked
//! by hand instead of through `#[derive(Deserialize)]`: serde stops at the
//! first error, and an operator fixing a config wants the whole list at once.
//! Unknown keys are errors (typo protection), with a suggestion when a known
//! key is close.
//!
//! Reading a key is one call: `Parser::opt` (with its default) or
//! `Parser::req`, given a reader (`string`, `int_in`, `boolean`,
//! `duration`, ...) that turns the value into a typed one or a message. The
//! getters record the keys they ask for, so a new key needs no second list.
//! Rules across keys (one family per instance, what one advert can carry, the
//! interval the version can encode) follow the getters; rules across
//! instances (unique names and (interface, vrid, family)) run last.
//!
//! Keys beyond the SPEC (compatible extensions):
//! - `global.notify_timeout` (default `"30s"`): a notify script still running
//!   after this long is killed (see [`crate::notify`]).
//! - `instance.garp_repeat` (default 5, keepalived's `garp_master_repeat`):
//!   gratuitous ARPs / unsolicited NAs sent per VIP on becoming MASTER, 1..=100.
//! - `instance.garp_interval` (default `"10ms"`): spacing between the repeats,
//!   0..=1s. keepalived sends the burst back to back by default; a small gap
//!   survives switches that rate-limit broadcast ARP.

use std::{
    collections::{HashMap, HashSet, hash_map::Entry},
    fmt,
    hash::Hash,
    net::{IpAddr, SocketAddr},
    ops::Range,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use toml::{
    Spanned,
    de::{DeTable, DeValue},
};

use crate::proto::{
    packet::{
        Family, HEADER_LEN, V2_AUTH_DATA_LEN, V3Checksum, VRRP_GROUP_V4, VRRP_GROUP_V6, Version,
        v2_interval_secs, v3_interval_centis,
    },
    router::RouterConfig,
};

/// Default path of the control socket.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/vrrp-agent/control.sock";
/// Default time a notify script may run before it is killed.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of gratuitous ARPs / unsolicited NAs per VIP and transition.
pub const DEFAULT_GARP_REPEAT: u32 = 5;
/// Default spacing between gratuitous ARP repeats.
pub const DEFAULT_GARP_INTERVAL: Duration = Duration::from_millis(10);
/// Longest accepted `preempt_delay` (keepalived's limit too).
pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);

/// `global.xdp` / `run --xdp`; defined with the data plane that interprets it.
pub use crate::dataplane::XdpMode;

/// A virtual IP with its prefix length, as added to the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VirtualIp {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length: 0..=32 for IPv4, 0..=128 for IPv6.
    pub prefix_len: u8,
}

impl VirtualIp {
    /// The address family.
    pub fn family(&self) -> Family {
        Family::of(self.addr)
    }
}

impl fmt::Display for VirtualIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for VirtualIp {
    type Err = String;
    /// `"192.0.2.10/24"`, `"2001:db8::1/64"`; a bare address is a host route (/32, /128).
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr_s, prefix_s) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr_s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address (expected e.g. \"192.0.2.10/24\")"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix_s {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("prefix length in `{s}` must be 0..={max}")),
            },
        };
        Ok(VirtualIp { addr, prefix_len })
    }
}

/// The whole validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `[global]`.
    pub global: Global,
    /// `[[instance]]`, in file order.
    pub instances: Vec<Instance>,
}

/// `[global]` settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Global {
    /// Name of this agent in status and logs (default: the hostname).
    pub router_id: String,
    /// Path of the unix control socket.
    pub control_socket: PathBuf,
    /// XDP attach mode.
    pub xdp: XdpMode,
    /// Prometheus endpoint; `None` = off.
    pub metrics_listen: Option<SocketAddr>,
    /// Kill a notify script after this long (extension).
    pub notify_timeout: Duration,
}

/// One `[[instance]]`: a virtual router on one interface for one address family.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// Unique instance name (keepalived's `vrrp_instance` name).
    pub name: String,
    /// Interface the instance runs on.
    pub interface: String,
    /// Virtual router id, 1..=255.
    pub vrid: u8,
    /// Configured priority, 1..=255 (255 = address owner).
    pub priority: u8,
    /// VRRP version.
    pub version: Version,
    /// Address family of the VIPs (and of the adverts).
    pub family: Family,
    /// Advertisement interval.
    pub advert_interval: Duration,
    /// Virtual IPs, all of [`Instance::family`], at least one.
    pub virtual_ips: Vec<VirtualIp>,
    /// Whether a higher-priority backup takes over from a lower-priority master.
    pub preempt: bool,
    /// Delay before preempting (RFC 9568 §6.1 leaves it to the implementation).
    pub preempt_delay: Duration,
    /// Accept packets to the VIPs when not the address owner (RFC 5798 §6.1).
    pub accept_mode: bool,
    /// Unicast peers; empty = multicast.
    pub unicast_peers: Vec<IpAddr>,
    /// TX checksum form of v3 IPv4 adverts.
    pub v3_checksum: V3Checksum,
    /// Script run on state changes.
    pub notify: Option<PathBuf>,
    /// Gratuitous ARPs / NAs per VIP on becoming MASTER (extension).
    pub garp_repeat: u32,
    /// Spacing between them (extension).
    pub garp_interval: Duration,
}

impl Instance {
    /// The core's configuration, given the interface's primary address of the
    /// instance's family (IPv4 primary address, or the IPv6 link-local
    /// address as RFC 5798 §5.1.2.1 requires for the advert source).
    pub fn router_config(&self, primary_addr: IpAddr) -> RouterConfig {
        RouterConfig {
            vrid: self.vrid,
            version: self.version,
            family: self.family,
            priority: self.priority,
            advert_interval: self.advert_interval,
            preempt: self.preempt,
            preempt_delay: self.preempt_delay,
            accept_mode: self.accept_mode,
            primary_addr,
        }
    }

    /// What must be unique across instances: (interface, vrid, family). Also
    /// the natural key to match instances across a SIGHUP reload.
    pub fn key(&self) -> (&str, u8, Family) {
        (&self.interface, self.vrid, self.family)
    }

    /// Where adverts go: each unicast peer, else the VRRP multicast group.
    pub fn advert_destinations(&self) -> Vec<IpAddr> {
        if self.unicast_peers.is_empty() {
            vec![self.multicast_group()]
        } else {
            self.unicast_peers.clone()
        }
    }

    /// Multicast group adverts go to when there are no unicast peers
    /// (RFC 5798 §5.1.1.2 / §5.1.2.2).
    pub fn multicast_group(&self) -> IpAddr {
        match self.family {
            Family::V4 => VRRP_GROUP_V4.into(),
            Family::V6 => VRRP_GROUP_V6.into(),
        }
    }
}

/// One problem found in a config file, with its 1-based position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

/// Why a config file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read config: {source}")]
    Read {
        /// The path as given.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is invalid; every problem is listed.
    #[error("{}", problems.iter().map(|p| p.render(file)).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The path as given.
        file: String,
        /// Every problem, in file order.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems as `FILE:LINE:COL: message` lines (one line for a read error).
    pub fn lines(&self) -> Vec<String> {
        match self {
            ConfigError::Read { .. } => vec![self.to_string()],
            ConfigError::Invalid { file, problems } => {
                problems.iter().map(|p| p.render(file)).collect()
            }
        }
    }
}

impl Problem {
    fn render(&self, file: &str) -> String {
        format!("{file}:{}:{}: {}", self.line, self.col, self.message)
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_warnings(path).map(|(c, _)| c)
    }

    /// Like [`Config::load`], also returning warnings (valid but dubious
    /// settings) as `FILE:LINE:COL: warning: message` lines.
    pub fn load_with_warnings(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let file = path.display().to_string();
        let read_error = |source| ConfigError::Read {
            file: file.clone(),
            source,
        };
        let bytes = std::fs::read(path).map_err(read_error)?;
        match std::str::from_utf8(&bytes) {
            Ok(text) => Config::parse_with_warnings(text, &file),
            Err(e) => Err(ConfigError::Invalid {
                problems: vec![not_utf8(&bytes, e.valid_up_to())],
                file,
            }),
        }
    }

    /// Validates config text; `file` is only used in messages.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        Config::parse_with_warnings(text, file).map(|(c, _)| c)
    }

    /// Like [`Config::parse`], also returning warnings.
    pub fn parse_with_warnings(
        text: &str,
        file: &str,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let mut p = Parser {
            text,
            problems: Vec::new(),
            warnings: Vec::new(),
        };
        let cfg = p.document();
        if p.problems.is_empty()
            && let Some(cfg) = cfg
        {
            let warnings = positioned(text, p.warnings)
                .into_iter()
                .map(|w| format!("{file}:{}:{}: warning: {}", w.line, w.col, w.message))
                .collect();
            return Ok((cfg, warnings));
        }
        Err(ConfigError::Invalid {
            file: file.to_owned(),
            problems: positioned(text, p.problems),
        })
    }
}

/// Sorted, de-duplicated problems with line and column.
fn positioned(text: &str, mut spans: Vec<(Range<usize>, String)>) -> Vec<Problem> {
    spans.sort_by_key(|(s, _)| s.start);
    spans.dedup();
    spans
        .into_iter()
        .map(|(span, message)| {
            let (line, col) = line_col(text, span.start);
            Problem { line, col, message }
        })
        .collect()
}

/// The problem of a file that is not UTF-8, at its first invalid byte.
fn not_utf8(bytes: &[u8], valid_up_to: usize) -> Problem {
    let valid = std::str::from_utf8(&bytes[..valid_up_to]).unwrap_or_default();
    let (line, col) = line_col(valid, valid.len());
    let byte = bytes.get(valid_up_to).copied().unwrap_or_default();
    Problem {
        line,
        col,
        message: format!(
            "the config is not valid UTF-8 (byte 0x{byte:02x}); save it as UTF-8 \
             (e.g. `iconv -f latin1 -t utf-8`)"
        ),
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// Parses a duration with a unit: `"10ms"`, `"1s"`, `"1.5s"`, `"2m"`, `"1h"`,
/// `"250us"`. Exact (decimal arithmetic, no floats).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit_ns: u128 = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "" => {
            return Err(format!(
                "duration `{s}` needs a unit (e.g. \"10ms\", \"1s\")"
            ));
        }
        u => {
            return Err(format!(
                "unknown unit `{u}` in duration `{s}` (use ms, s, m or h)"
            ));
        }
    };
    let bad = || format!("`{s}` is not a duration (expected e.g. \"10ms\", \"1.5s\")");
    let (int_s, frac_s) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if (int_s.is_empty() && frac_s.is_empty()) || frac_s.contains('.') {
        return Err(bad());
    }
    let int: u128 = if int_s.is_empty() {
        0
    } else {
        int_s.parse().map_err(|_| bad())?
    };
    let mut ns = int.checked_mul(unit_ns).ok_or_else(bad)?;
    // Fraction digits beyond the unit's resolution must be zero (no silent rounding).
    let mut scale = unit_ns;
    for d in frac_s.chars() {
        let d = u128::from(d.to_digit(10).ok_or_else(bad)?);
        if !scale.is_multiple_of(10) {
            if d != 0 {
                return Err(format!("duration `{s}` is finer than a nanosecond"));
            }
            continue;
        }
        scale /= 10;
        ns += d * scale;
    }
    let ns = u64::try_from(ns).map_err(|_| format!("duration `{s}` is too long"))?;
    Ok(Duration::from_nanos(ns))
}

/// Formats a duration the way the config accepts it back.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        "0s".into()
    } else if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else if ns.is_multiple_of(1_000) {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}

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
const SECTIONS: &[&str] = &["global", "instance"];

/// Collects problems while walking the document.
struct Parser<'t> {
    text: &'t str,
    problems: Vec<(Span, String)>,
    warnings: Vec<(Span, String)>,
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

impl Parser<'_> {
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

    fn document(&mut self) -> Option<Config> {
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
        let mut instances = Vec::new();
        let mut seen = Vec::new();
        for v in self.tables(root.get("instance"), "instance", at) {
            let mut s = Seen::default();
            instances.extend(self.instance(v, &mut s));
            seen.push(s);
        }
        self.cross_instance(&seen);
        Some(Config {
            global: global?,
            instances,
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
        self.unknown_keys(t, "[global]");
        Some(Global {
            router_id: router_id?.unwrap_or_else(default_router_id),
            control_socket: control_socket?,
            xdp: xdp?,
            metrics_listen: metrics_listen?,
            notify_timeout: notify_timeout?,
        })
    }

    /// One `[[instance]]`; `seen` gets what the cross-instance checks need.
    fn instance(&mut self, v: &Val<'_>, seen: &mut Seen) -> Option<Instance> {
        let DeValue::Table(t) = v.get_ref() else {
            self.err(
                v.span(),
                "each `instance` must be a table: write [[instance]]",
            );
            return None;
        };
        let t = &mut Section::new(t, v.span().start);
        let name = self.req(t, "name", |k, v| non_empty(k, v).map(str::to_owned));
        let interface = self.req(t, "interface", |k, v| {
            let s = string(k, v)?;
            check_ifname(s).map_err(|e| format!("`{k}`: {e}"))?;
            Ok(s.to_owned())
        });
        let vrid = self.req(t, "vrid", |k, v| int_in(k, v, 1, 255));
        let priority = self.req(t, "priority", |k, v| int_in(k, v, 1, 255));
        let version = self.opt(t, "version", Version::V3, |k, v| match int(k, v)? {
            2 => Ok(Version::V2),
            3 => Ok(Version::V3),
            n => Err(format!("`{k}` must be 2 or 3, found {n}")),
        });
        let advert_interval = self.opt(t, "advert_interval", Duration::from_secs(1), duration);
        let virtual_ips = match t.get("virtual_ips") {
            None => {
                self.missing(t, "virtual_ips");
                None
            }
            Some(v) if matches!(v.get_ref(), DeValue::Array(a) if a.is_empty()) => {
                self.err(v.span(), "`virtual_ips` needs at least one address");
                None
            }
            Some(v) => self.addresses(v, "virtual_ips", "virtual IP", |s| {
                s.parse::<VirtualIp>()
                    .map(|v| (v, v.addr))
                    .map_err(|e| format!("`virtual_ips`: {e}"))
            }),
        };
        let preempt = self.opt(t, "preempt", true, boolean);
        let preempt_delay = self.opt(t, "preempt_delay", Duration::ZERO, |k, v| {
            duration_at_most(k, v, MAX_PREEMPT_DELAY)
        });
        let accept_mode = self.opt(t, "accept_mode", false, boolean);
        let unicast_peers = match t.get("unicast_peers") {
            None => Some(Vec::new()),
            Some(v) => self.addresses(v, "unicast_peers", "unicast peer", |s| {
                let a = s.trim().parse::<IpAddr>();
                a.map(|a| (a, a))
                    .map_err(|_| format!("unicast peer `{s}` is not an IP address"))
            }),
        };
        let v3_checksum = self.opt(
            t,
            "v3_checksum",
            V3Checksum::Rfc5798,
            |k, v| match string(k, v)? {
                "rfc5798" => Ok(V3Checksum::Rfc5798),
                "rfc9568" => Ok(V3Checksum::Rfc9568),
                s => Err(format!(
                    "`{k}` must be \"rfc5798\" or \"rfc9568\", found `{s}`"
                )),
            },
        );
        let notify = self.opt(t, "notify", None, |k, v| {
            non_empty(k, v)
                .map(|s| Some(PathBuf::from(s)))
                .map_err(|e| format!("{e} (leave it out to disable)"))
        });
        let garp_repeat = self.opt(t, "garp_repeat", DEFAULT_GARP_REPEAT, |k, v| {
            int_in(k, v, 1, 100)
        });
        let garp_interval = self.opt(t, "garp_interval", DEFAULT_GARP_INTERVAL, |k, v| {
            duration_at_most(k, v, Duration::from_secs(1))
        });

        if let (Some(n), Some(span)) = (&name, t.span("name")) {
            seen.name = Some((n.clone(), span));
        }
        let vips = virtual_ips.as_deref().unwrap_or_default();
        let family = vips.first().map(|(v, _)| v.family());
        if let (Some(i), Some(vrid), Some(f), Some(span)) =
            (&interface, vrid, family, t.span("vrid"))
        {
            seen.key = Some(((i.clone(), vrid, f), span));
        }
        self.unknown_keys(t, "[[instance]]");
        let before = self.problems.len();
        self.vip_rules(vips, vrid.unwrap_or(1), version);
        if let (Some(fam), Some(peers)) = (family, &unicast_peers) {
            for (peer, span) in peers.iter().filter(|(p, _)| Family::of(*p) != fam) {
                let msg = format!(
                    "unicast peer `{peer}` is {} but the virtual IPs are {}",
                    family_name(Family::of(*peer)),
                    family_name(fam)
                );
                self.err(span.clone(), msg);
            }
        }
        if let (Some(ver), Some(d)) = (version, advert_interval)
            && let Err(e) = check_interval(ver, d)
        {
            let span = t.span("advert_interval").or_else(|| t.span("version"));
            self.err(
                span.unwrap_or(t.at..t.at),
                format!("`advert_interval`: {e}"),
            );
        }
        if self.problems.len() != before {
            return None;
        }
        Some(Instance {
            name: name?,
            interface: interface?,
            vrid: vrid?,
            priority: priority?,
            version: version?,
            family: family?,
            advert_interval: advert_interval?,
            virtual_ips: virtual_ips?.into_iter().map(|(v, _)| v).collect(),
            preempt: preempt?,
            preempt_delay: preempt_delay?,
            accept_mode: accept_mode?,
            unicast_peers: unicast_peers?.into_iter().map(|(p, _)| p).collect(),
            v3_checksum: v3_checksum?,
            notify: notify?,
            garp_repeat: garp_repeat?,
            garp_interval: garp_interval?,
        })
    }

    /// The rules across an instance's virtual IPs: one family, what the
    /// version can carry, and what fits in one advert.
    fn vip_rules(&mut self, vips: &[(VirtualIp, Span)], vrid: u8, version: Option<Version>) {
        let Some(((first, first_span), rest)) = vips.split_first() else {
            return;
        };
        let fam = first.family();
        // RFC 9568 §5.2.9: the first IPv6 address of an advert is the
        // router's link-local VIP, and receivers applying erratum 8300 (we
        // do, in the kernel) drop adverts without one. keepalived only warns
        // and then cannot talk to compliant peers; we refuse the config.
        if let IpAddr::V6(a) = first.addr
            && (a.segments()[0] & 0xffc0) != 0xfe80
        {
            let msg = format!(
                "the first IPv6 virtual IP `{a}` must be link-local (RFC 9568 §5.2.9), \
                 e.g. virtual_ips = [\"fe80::{vrid:x}/64\", \"{a}/64\"]"
            );
            self.err(first_span.clone(), msg);
        }
        for (vip, span) in rest.iter().filter(|(v, _)| v.family() != fam) {
            let msg = format!(
                "`{vip}` is {} but this instance's first virtual IP is {}; \
                 use one address family per instance (two instances may share a vrid)",
                family_name(vip.family()),
                family_name(fam)
            );
            self.err(span.clone(), msg);
        }
        if version == Some(Version::V2) {
            for (vip, span) in vips.iter().filter(|(v, _)| v.family() == Family::V6) {
                let msg =
                    format!("IPv6 virtual IP `{vip}` needs `version = 3` (VRRPv2 is IPv4 only)");
                self.err(span.clone(), msg);
            }
        }
        let max = max_advert_addrs(fam, version.unwrap_or(Version::V3));
        if let Some((_, span)) = vips.get(max) {
            let msg = format!(
                "{} virtual IPs in one instance, but one {} advert carries at most {max} \
                 (the count field is 8 bits and the advert must fit a {ADVERT_MTU}-byte packet); \
                 split them over several instances (another vrid)",
                vips.len(),
                family_name(fam)
            );
            self.err(span.clone(), msg);
        }
    }

    /// An array of address strings: each parsed, unicast, listed once.
    fn addresses<T: fmt::Display>(
        &mut self,
        v: &Val<'_>,
        key: &str,
        what: &str,
        parse: impl Fn(&str) -> Result<(T, IpAddr), String>,
    ) -> Option<Vec<(T, Span)>> {
        let DeValue::Array(arr) = v.get_ref() else {
            let msg = format!(
                "`{key}` must be an array of strings, found {}",
                v.get_ref().type_str()
            );
            self.err(v.span(), msg);
            return None;
        };
        let mut dup = HashSet::new();
        let mut out = Vec::new();
        for item in arr.iter() {
            let r = string(key, item.get_ref())
                .map_err(|_| {
                    format!(
                        "`{key}` entries must be strings, found {}",
                        item.get_ref().type_str()
                    )
                })
                .and_then(&parse)
                .and_then(|(x, a)| {
                    check_unicast(&a).map_err(|e| format!("{what} `{x}` {e}"))?;
                    if dup.insert(a) {
                        Ok(x)
                    } else {
                        Err(format!("{what} `{a}` is listed twice"))
                    }
                });
            if let Some(x) = self.check(item.span(), r) {
                out.push((x, item.span()));
            }
        }
        Some(out)
    }
}

/// Reads one key's value; the error is the whole message.
type Reader<T> = fn(&str, &DeValue<'_>) -> Result<T, String>;

fn string<'v>(key: &str, v: &'v DeValue<'_>) -> Result<&'v str, String> {
    match v {
        DeValue::String(s) => Ok(s),
        other => Err(format!(
            "`{key}` must be a string, found {}",
            other.type_str()
        )),
    }
}

fn non_empty<'v>(key: &str, v: &'v DeValue<'_>) -> Result<&'v str, String> {
    let s = string(key, v)?;
    match s.trim().is_empty() {
        true => Err(format!("`{key}` must not be empty")),
        false => Ok(s),
    }
}

fn int(key: &str, v: &DeValue<'_>) -> Result<i64, String> {
    match v {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map_err(|_| format!("`{key}` is out of range")),
        other => Err(format!(
            "`{key}` must be an integer, found {}",
            other.type_str()
        )),
    }
}

fn int_in<T: TryFrom<i64>>(key: &str, v: &DeValue<'_>, lo: T, hi: T) -> Result<T, String>
where
    i64: From<T>,
{
    let (lo, hi) = (i64::from(lo), i64::from(hi));
    let n = int(key, v)?;
    match (lo..=hi)
        .contains(&n)
        .then(|| T::try_from(n).ok())
        .flatten()
    {
        Some(n) => Ok(n),
        None => Err(format!("`{key}` must be {lo}..={hi}, found {n}")),
    }
}

fn boolean(key: &str, v: &DeValue<'_>) -> Result<bool, String> {
    match v {
        DeValue::Boolean(b) => Ok(*b),
        other => Err(format!(
            "`{key}` must be true or false, found {}",
            other.type_str()
        )),
    }
}

fn duration(key: &str, v: &DeValue<'_>) -> Result<Duration, String> {
    match v {
        DeValue::String(s) => parse_duration(s).map_err(|e| format!("`{key}`: {e}")),
        other => Err(format!(
            "`{key}` must be a duration string with a unit (e.g. \"1s\"), found {}",
            other.type_str()
        )),
    }
}

fn duration_at_most(key: &str, v: &DeValue<'_>, max: Duration) -> Result<Duration, String> {
    let d = duration(key, v)?;
    if d > max {
        let (d, max) = (format_duration(d), format_duration(max));
        return Err(format!(
            "`{key}` must be at most {max}: {d} is longer than the maximum {max}"
        ));
    }
    Ok(d)
}

/// RFC 3768 §5.3.7 (v2: whole seconds in 8 bits) and RFC 9568 §5.2.7 (v3:
/// centiseconds in 12 bits), as the codec encodes them.
fn check_interval(version: Version, d: Duration) -> Result<(), String> {
    match version {
        Version::V2 if v2_interval_secs(d).is_none() => Err(format!(
            "VRRPv2 needs whole seconds 1s..=255s, found {}",
            format_duration(d)
        )),
        Version::V3 if v3_interval_centis(d).is_none() => Err(format!(
            "VRRPv3 needs 10ms..=40.95s in steps of 10ms, found {}",
            format_duration(d)
        )),
        _ => Ok(()),
    }
}

/// The largest packet an advert may need: Ethernet's MTU. A jumbo-frame link
/// could carry more, but a peer behind a 1500-byte link could not receive it.
pub const ADVERT_MTU: usize = 1500;

/// How many virtual IPs one advert carries: at most 255 (the 8-bit Count
/// IPvX Addr field, RFC 9568 §5.2.5) and within an [`ADVERT_MTU`] packet
/// (IPv4: 20 + 8 + 4n bytes, IPv6: 40 + 8 + 16n, VRRPv2 adds 8 bytes of
/// authentication data): 255 for IPv4, 90 for IPv6.
pub fn max_advert_addrs(family: Family, version: Version) -> usize {
    let ip_header = match family {
        Family::V4 => 20,
        Family::V6 => 40,
    };
    let trailer = match version {
        Version::V2 => V2_AUTH_DATA_LEN,
        Version::V3 => 0,
    };
    ((ADVERT_MTU - ip_header - HEADER_LEN - trailer) / family.addr_len()).min(usize::from(u8::MAX))
}

fn check_unicast(a: &IpAddr) -> Result<(), &'static str> {
    if a.is_unspecified() {
        Err("is the unspecified address")
    } else if a.is_multicast() {
        Err("is a multicast address")
    } else if a.is_loopback() {
        Err("is a loopback address")
    } else if let IpAddr::V4(v4) = a
        && v4.is_broadcast()
    {
        Err("is the broadcast address")
    } else {
        Ok(())
    }
}

/// Linux interface names: 1..=15 bytes, no `/`, no whitespace (dev_valid_name).
fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 15 {
        return Err(format!("`{name}` is longer than 15 bytes (IFNAMSIZ)"));
    }
    if name == "."
        || name == ".."
        || name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(format!("`{name}` is not a valid interface name"));
    }
    Ok(())
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
    fn durations() {
        assert_eq!(parse_duration("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.01s"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_duration("40.95s"), Ok(Duration::from_millis(40950)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1.5.1s").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1.0000000001s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }

    #[test]
    fn duration_round_trip() {
        for s in ["0s", "10ms", "1s", "1500ms", "250us", "7ns"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }

    #[test]
    fn vip_parse() {
        let v: VirtualIp = "192.0.2.10/24".parse().unwrap();
        assert_eq!(v.prefix_len, 24);
        assert_eq!(v.to_string(), "192.0.2.10/24");
        assert_eq!("192.0.2.10".parse::<VirtualIp>().unwrap().prefix_len, 32);
        assert_eq!("2001:db8::1".parse::<VirtualIp>().unwrap().prefix_len, 128);
        assert!("192.0.2.10/33".parse::<VirtualIp>().is_err());
        assert!("2001:db8::1/129".parse::<VirtualIp>().is_err());
        assert!("lb1".parse::<VirtualIp>().is_err());
    }

    #[test]
    fn line_col_counts_chars() {
        let t = "ab\ncdé\nx";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, t.len() - 1), (3, 1));
        assert_eq!(line_col(t, 7), (2, 4));
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("priorty", &["name", "priority"]),
            ", did you mean `priority`?"
        );
        assert_eq!(suggest("zzzzzzzz", &["name", "priority"]), "");
    }
}
