//! The configuration file: TOML, validated in one pass that reports every
//! problem with its position (`FILE:LINE:COL: message`).
//!
//! The document is read into toml's span-carrying tree ([`DeTable`]) and walked
//! by hand instead of through `#[derive(Deserialize)]`: serde stops at the
//! first error, and an operator fixing a config wants the whole list at once.
//! Unknown keys are errors (typo protection), with a suggestion when a known
//! key is close.
//!
//! Keys beyond the SPEC (compatible extensions):
//! - `global.notify_timeout` (default `"30s"`): a notify script still running
//!   after this long is killed (see [`crate::notify`]).
//! - `global.advert_dscp` (default 48, CS6 as keepalived): the DSCP of
//!   adverts, 0..=63, sent as the IPv4 TOS / IPv6 Traffic Class byte
//!   `dscp << 2` (a DSCP, not a TOS byte: the ECN bits are not ours to set).
//! - `instance.garp_repeat` (default 5, keepalived's `garp_master_repeat`):
//!   gratuitous ARPs / unsolicited NAs sent per VIP on becoming MASTER, 1..=100.
//! - `instance.garp_interval` (default `"10ms"`): spacing between the repeats,
//!   0..=1s. keepalived sends the burst back to back by default; a small gap
//!   survives switches that rate-limit broadcast ARP.

use std::{
    collections::{HashMap, HashSet},
    fmt,
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
    packet::{Family, V3Checksum, Version},
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
        family_of(&self.addr)
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
    /// DSCP of adverts, 0..=63 (extension; default CS6).
    pub advert_dscp: u8,
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
            Family::V4 => IpAddr::from([224, 0, 0, 18]),
            Family::V6 => IpAddr::from([0xff02, 0, 0, 0, 0, 0, 0, 0x12]),
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
    #[error("{}", render_problems(file, problems))]
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
            ConfigError::Invalid { file, problems } => problems
                .iter()
                .map(|p| format!("{file}:{}:{}: {}", p.line, p.col, p.message))
                .collect(),
        }
    }
}

fn render_problems(file: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{file}:{}:{}: {}", p.line, p.col, p.message))
        .collect::<Vec<_>>()
        .join("\n")
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
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Config::parse_with_warnings(&text, &file)
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

fn family_of(addr: &IpAddr) -> Family {
    match addr {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

const GLOBAL_KEYS: &[&str] = &[
    "router_id",
    "control_socket",
    "xdp",
    "metrics_listen",
    "notify_timeout",
    "advert_dscp",
];
const INSTANCE_KEYS: &[&str] = &[
    "name",
    "interface",
    "vrid",
    "priority",
    "version",
    "advert_interval",
    "virtual_ips",
    "preempt",
    "preempt_delay",
    "accept_mode",
    "unicast_peers",
    "v3_checksum",
    "notify",
    "garp_repeat",
    "garp_interval",
];

type Val<'i> = Spanned<DeValue<'i>>;

/// Collects problems while walking the document.
struct Parser<'t> {
    text: &'t str,
    problems: Vec<(Range<usize>, String)>,
    warnings: Vec<(Range<usize>, String)>,
}

/// Key spans of one instance kept for cross-instance checks.
struct Seen {
    name: Option<(String, Range<usize>)>,
    key: Option<((String, u8, Family), Range<usize>)>,
}

impl<'t> Parser<'t> {
    fn err(&mut self, span: Range<usize>, msg: impl Into<String>) {
        self.problems.push((span, msg.into()));
    }

    fn document(&mut self) -> Option<Config> {
        let root = match DeTable::parse(self.text) {
            Ok(r) => r,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let msg = e.message().trim().to_owned();
                self.err(span, format!("TOML syntax error: {msg}"));
                return None;
            }
        };
        let root_span = root.span();
        let root = root.into_inner();
        let mut global = None;
        let mut instances_val = None;
        for (k, v) in root.iter() {
            match k.get_ref().as_ref() {
                "global" => global = Some(v),
                "instance" => instances_val = Some(v),
                other => {
                    let hint = suggest(other, &["global", "instance"]);
                    self.err(k.span(), format!("unknown section `{other}`{hint}"));
                }
            }
        }
        let global = self.global(global);
        let mut instances = Vec::new();
        let mut seen = Vec::new();
        match instances_val {
            None => self.err(
                root_span.start..root_span.start,
                "no [[instance]] configured",
            ),
            Some(v) => match v.get_ref() {
                DeValue::Array(arr) if !arr.is_empty() => {
                    for item in arr.iter() {
                        let (inst, s) = self.instance(item);
                        seen.push(s);
                        if let Some(i) = inst {
                            instances.push(i);
                        }
                    }
                }
                DeValue::Array(_) => self.err(v.span(), "no [[instance]] configured"),
                _ => self.err(
                    v.span(),
                    "`instance` must be an array of tables: write [[instance]]",
                ),
            },
        }
        self.cross_instance(&seen);
        Some(Config {
            global: global?,
            instances,
        })
    }

    fn cross_instance(&mut self, seen: &[Seen]) {
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut keys: HashMap<&(String, u8, Family), usize> = HashMap::new();
        for s in seen {
            if let Some((name, span)) = &s.name {
                match names.get(name.as_str()) {
                    Some(first) => {
                        let (l, _) = line_col(self.text, *first);
                        self.err(
                            span.clone(),
                            format!("duplicate instance name `{name}` (first used on line {l})"),
                        );
                    }
                    None => {
                        names.insert(name, span.start);
                    }
                }
            }
            if let Some((key, span)) = &s.key {
                match keys.get(key) {
                    Some(first) => {
                        let (l, _) = line_col(self.text, *first);
                        self.err(
                            span.clone(),
                            format!(
                                "vrid {} is already used for {} on interface `{}` (line {l}); \
                                 (interface, vrid, family) must be unique",
                                key.1,
                                family_name(key.2),
                                key.0
                            ),
                        );
                    }
                    None => {
                        keys.insert(key, span.start);
                    }
                }
            }
        }
    }

    fn global(&mut self, v: Option<&Val<'_>>) -> Option<Global> {
        let empty = DeTable::default();
        let table = match v {
            None => &empty,
            Some(v) => match v.get_ref() {
                DeValue::Table(t) => t,
                _ => {
                    self.err(v.span(), "`global` must be a table: write [global]");
                    return None;
                }
            },
        };
        self.unknown_keys(table, GLOBAL_KEYS, "[global]");
        let router_id = match self.string(table, "router_id") {
            Some((s, span)) if s.trim().is_empty() => {
                self.err(span, "`router_id` must not be empty");
                None
            }
            Some((s, _)) => Some(s),
            None => Some(default_router_id()),
        };
        let control_socket = match self.string(table, "control_socket") {
            Some((s, span)) if s.is_empty() => {
                self.err(span, "`control_socket` must not be empty");
                None
            }
            Some((s, _)) => Some(PathBuf::from(s)),
            None => Some(PathBuf::from(DEFAULT_CONTROL_SOCKET)),
        };
        let xdp = match self.string(table, "xdp") {
            Some((s, span)) => match s.parse::<XdpMode>() {
                Ok(m) => Some(m),
                Err(e) => {
                    self.err(span, format!("`xdp`: {e}"));
                    None
                }
            },
            None => Some(XdpMode::Auto),
        };
        let metrics_listen = match self.string(table, "metrics_listen") {
            Some((s, span)) => match s.parse::<SocketAddr>() {
                Ok(a) => Some(Some(a)),
                Err(_) => {
                    self.err(
                        span,
                        format!("`metrics_listen`: `{s}` is not an address:port (e.g. \"127.0.0.1:9477\")"),
                    );
                    None
                }
            },
            None => Some(None),
        };
        let notify_timeout = match self.duration(table, "notify_timeout") {
            Some((d, span)) if d.is_zero() => {
                self.err(span, "`notify_timeout` must be greater than 0");
                None
            }
            Some((d, _)) => Some(d),
            None if self.had_error_at(table, "notify_timeout") => None,
            None => Some(DEFAULT_NOTIFY_TIMEOUT),
        };
        let advert_dscp = match self.int(table, "advert_dscp") {
            Some((n, span)) => self
                .ranged(n, span, "advert_dscp", 0, 63)
                .map(|(n, _)| n as u8),
            None if self.had_error_at(table, "advert_dscp") => None,
            None => Some(crate::tx::DEFAULT_ADVERT_DSCP),
        };
        Some(Global {
            router_id: router_id?,
            control_socket: control_socket?,
            xdp: xdp?,
            metrics_listen: metrics_listen?,
            notify_timeout: notify_timeout?,
            advert_dscp: advert_dscp?,
        })
    }

    fn instance(&mut self, v: &Val<'_>) -> (Option<Instance>, Seen) {
        let mut seen = Seen {
            name: None,
            key: None,
        };
        let DeValue::Table(t) = v.get_ref() else {
            self.err(
                v.span(),
                "each `instance` must be a table: write [[instance]]",
            );
            return (None, seen);
        };
        let whole = v.span();
        self.unknown_keys(t, INSTANCE_KEYS, "[[instance]]");
        let before = self.problems.len();
        let mut ok = true;

        let name = self.required_string(t, "name", &whole);
        if let Some((n, span)) = &name {
            if n.trim().is_empty() {
                self.err(span.clone(), "`name` must not be empty");
                ok = false;
            } else {
                seen.name = Some((n.clone(), span.clone()));
            }
        }
        let interface = self.required_string(t, "interface", &whole);
        if let Some((i, span)) = &interface
            && let Err(e) = check_ifname(i)
        {
            self.err(span.clone(), format!("`interface`: {e}"));
            ok = false;
        }
        let vrid = self.required_int(t, "vrid", &whole).and_then(|(n, span)| {
            self.ranged(n, span, "vrid", 1, 255)
                .map(|(n, s)| (n as u8, s))
        });
        let priority = self
            .required_int(t, "priority", &whole)
            .and_then(|(n, span)| {
                self.ranged(n, span, "priority", 1, 255)
                    .map(|(n, s)| (n as u8, s))
            });
        let version = match self.int(t, "version") {
            Some((2, _)) => Some(Version::V2),
            Some((3, _)) => Some(Version::V3),
            Some((n, span)) => {
                self.err(span, format!("`version` must be 2 or 3, found {n}"));
                None
            }
            None if self.had_error_at(t, "version") => None,
            None => Some(Version::V3),
        };
        let advert_interval = match self.duration(t, "advert_interval") {
            Some((d, span)) => Some((d, Some(span))),
            None if self.had_error_at(t, "advert_interval") => None,
            None => Some((Duration::from_secs(1), None)),
        };
        let virtual_ips = self.vips(t, &whole);
        let preempt = self.bool_or(t, "preempt", true);
        let preempt_delay = match self.duration(t, "preempt_delay") {
            Some((d, span)) if d > MAX_PREEMPT_DELAY => {
                self.err(
                    span,
                    format!(
                        "`preempt_delay` {} is longer than the maximum {}",
                        format_duration(d),
                        format_duration(MAX_PREEMPT_DELAY)
                    ),
                );
                None
            }
            Some((d, span)) => Some((d, Some(span))),
            None if self.had_error_at(t, "preempt_delay") => None,
            None => Some((Duration::ZERO, None)),
        };
        let accept_mode = self.bool_or(t, "accept_mode", false);
        let peers = self.peers(t);
        let v3_checksum = match self.string(t, "v3_checksum") {
            Some((s, _)) if s == "rfc5798" => Some(V3Checksum::Rfc5798),
            Some((s, _)) if s == "rfc9568" => Some(V3Checksum::Rfc9568),
            Some((s, span)) => {
                self.err(
                    span,
                    format!("`v3_checksum` must be \"rfc5798\" or \"rfc9568\", found `{s}`"),
                );
                None
            }
            None if self.had_error_at(t, "v3_checksum") => None,
            None => Some(V3Checksum::Rfc5798),
        };
        let notify = match self.string(t, "notify") {
            Some((s, span)) if s.trim().is_empty() => {
                self.err(span, "`notify` must not be empty (leave it out to disable)");
                None
            }
            Some((s, _)) => Some(Some(PathBuf::from(s))),
            None if self.had_error_at(t, "notify") => None,
            None => Some(None),
        };
        let garp_repeat = match self.int(t, "garp_repeat") {
            Some((n, span)) => self
                .ranged(n, span, "garp_repeat", 1, 100)
                .map(|(n, _)| n as u32),
            None if self.had_error_at(t, "garp_repeat") => None,
            None => Some(DEFAULT_GARP_REPEAT),
        };
        let garp_interval = match self.duration(t, "garp_interval") {
            Some((d, span)) if d > Duration::from_secs(1) => {
                self.err(span, "`garp_interval` must be at most 1s");
                None
            }
            Some((d, _)) => Some(d),
            None if self.had_error_at(t, "garp_interval") => None,
            None => Some(DEFAULT_GARP_INTERVAL),
        };

        // RFC 9568 §5.2.9: the first IPv6 address of an advert is the
        // router's link-local VIP, and receivers applying erratum 8300 (we
        // do, in the kernel) drop adverts without one. keepalived only warns
        // and then cannot talk to compliant peers; we refuse the config.
        if let Some(vips) = &virtual_ips
            && let Some((IpAddr::V6(first), span)) = vips.first().map(|(v, s)| (v.addr, s))
            && (first.segments()[0] & 0xffc0) != 0xfe80
        {
            self.err(
                span.clone(),
                format!(
                    "the first IPv6 virtual IP `{first}` must be link-local (RFC 9568 §5.2.9), \
                     e.g. virtual_ips = [\"fe80::{:x}/64\", \"{first}/64\"]",
                    vrid.as_ref().map_or(1, |(v, _)| *v)
                ),
            );
        }
        // Cross-field rules.
        let family = virtual_ips
            .as_ref()
            .and_then(|vips| vips.first().map(|(v, _)| v.family()));
        if let (Some(vips), Some(fam)) = (&virtual_ips, family) {
            for (vip, span) in vips.iter().skip(1) {
                if vip.family() != fam {
                    self.err(
                        span.clone(),
                        format!(
                            "`{vip}` is {} but this instance's first virtual IP is {}; \
                             use one address family per instance (two instances may share a vrid)",
                            family_name(vip.family()),
                            family_name(fam)
                        ),
                    );
                    ok = false;
                }
            }
        }
        if let (Some(Version::V2), Some(vips)) = (version, &virtual_ips) {
            for (vip, span) in vips {
                if vip.family() == Family::V6 {
                    self.err(
                        span.clone(),
                        format!(
                            "IPv6 virtual IP `{vip}` needs `version = 3` (VRRPv2 is IPv4 only)"
                        ),
                    );
                    ok = false;
                }
            }
        }
        if let (Some(fam), Some(peers)) = (family, &peers) {
            for (peer, span) in peers {
                if family_of(peer) != fam {
                    self.err(
                        span.clone(),
                        format!(
                            "unicast peer `{peer}` is {} but the virtual IPs are {}",
                            family_name(family_of(peer)),
                            family_name(fam)
                        ),
                    );
                    ok = false;
                }
            }
        }
        if let (Some(ver), Some((d, span))) = (version, &advert_interval)
            && let Err(e) = check_interval(ver, *d)
        {
            let span = span
                .clone()
                .unwrap_or_else(|| key_span(t, "version").unwrap_or(whole.clone()));
            self.err(span, format!("`advert_interval`: {e}"));
            ok = false;
        }
        if let (Some((i, _)), Some((v, span)), Some(f)) = (&interface, &vrid, family) {
            seen.key = Some(((i.clone(), *v, f), span.clone()));
        }

        let build = || -> Option<Instance> {
            Some(Instance {
                name: name?.0,
                interface: interface?.0,
                vrid: vrid?.0,
                priority: priority?.0,
                version: version?,
                family: family?,
                advert_interval: advert_interval?.0,
                virtual_ips: virtual_ips?.into_iter().map(|(v, _)| v).collect(),
                preempt: preempt?,
                preempt_delay: preempt_delay?.0,
                accept_mode: accept_mode?,
                unicast_peers: peers?.into_iter().map(|(p, _)| p).collect(),
                v3_checksum: v3_checksum?,
                notify: notify?,
                garp_repeat: garp_repeat?,
                garp_interval: garp_interval?,
            })
        };
        // Any problem reported for this instance (including in helpers) voids it.
        let inst = if ok && self.problems.len() == before {
            build()
        } else {
            None
        };
        (inst, seen)
    }

    fn vips(
        &mut self,
        t: &DeTable<'_>,
        whole: &Range<usize>,
    ) -> Option<Vec<(VirtualIp, Range<usize>)>> {
        let Some(v) = t.get("virtual_ips") else {
            self.err(
                whole.start..whole.start,
                "missing required key `virtual_ips`",
            );
            return None;
        };
        let items = self.string_array(v, "virtual_ips")?;
        if items.is_empty() && matches!(v.get_ref(), DeValue::Array(a) if a.is_empty()) {
            self.err(v.span(), "`virtual_ips` needs at least one address");
            return None;
        }
        let mut out = Vec::new();
        let mut dup = HashSet::new();
        for (s, span) in items {
            match s.parse::<VirtualIp>() {
                Ok(vip) => {
                    if let Err(e) = check_unicast(&vip.addr) {
                        self.err(span, format!("virtual IP `{vip}` {e}"));
                    } else if !dup.insert(vip.addr) {
                        self.err(span, format!("virtual IP `{}` is listed twice", vip.addr));
                    } else {
                        out.push((vip, span));
                    }
                }
                Err(e) => {
                    self.err(span, format!("`virtual_ips`: {e}"));
                }
            }
        }
        Some(out)
    }

    fn peers(&mut self, t: &DeTable<'_>) -> Option<Vec<(IpAddr, Range<usize>)>> {
        let Some(v) = t.get("unicast_peers") else {
            return Some(Vec::new());
        };
        let items = self.string_array(v, "unicast_peers")?;
        let mut out = Vec::new();
        let mut dup = HashSet::new();
        for (s, span) in items {
            match s.trim().parse::<IpAddr>() {
                Ok(a) => {
                    if let Err(e) = check_unicast(&a) {
                        self.err(span, format!("unicast peer `{a}` {e}"));
                    } else if !dup.insert(a) {
                        self.err(span, format!("unicast peer `{a}` is listed twice"));
                    } else {
                        out.push((a, span));
                    }
                }
                Err(_) => {
                    self.err(span, format!("unicast peer `{s}` is not an IP address"));
                }
            }
        }
        Some(out)
    }

    fn string_array(&mut self, v: &Val<'_>, key: &str) -> Option<Vec<(String, Range<usize>)>> {
        let DeValue::Array(arr) = v.get_ref() else {
            self.err(
                v.span(),
                format!(
                    "`{key}` must be an array of strings, found {}",
                    v.get_ref().type_str()
                ),
            );
            return None;
        };
        let mut out = Vec::new();
        for item in arr.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push((s.to_string(), item.span())),
                other => {
                    self.err(
                        item.span(),
                        format!(
                            "`{key}` entries must be strings, found {}",
                            other.type_str()
                        ),
                    );
                }
            }
        }
        Some(out)
    }

    fn ranged(
        &mut self,
        n: i64,
        span: Range<usize>,
        key: &str,
        lo: i64,
        hi: i64,
    ) -> Option<(i64, Range<usize>)> {
        if (lo..=hi).contains(&n) {
            Some((n, span))
        } else {
            self.err(span, format!("`{key}` must be {lo}..={hi}, found {n}"));
            None
        }
    }

    fn unknown_keys(&mut self, t: &DeTable<'_>, known: &[&str], section: &str) {
        for (k, _) in t.iter() {
            let key = k.get_ref().as_ref();
            if !known.contains(&key) {
                let hint = suggest(key, known);
                self.err(k.span(), format!("unknown key `{key}` in {section}{hint}"));
            }
        }
    }

    /// True when `key` is present (so a `None` from a typed getter means it was reported).
    fn had_error_at(&self, t: &DeTable<'_>, key: &str) -> bool {
        t.get(key).is_some()
    }

    fn string(&mut self, t: &DeTable<'_>, key: &str) -> Option<(String, Range<usize>)> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.to_string(), v.span())),
            other => {
                self.err(
                    v.span(),
                    format!("`{key}` must be a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn required_string(
        &mut self,
        t: &DeTable<'_>,
        key: &str,
        whole: &Range<usize>,
    ) -> Option<(String, Range<usize>)> {
        if t.get(key).is_none() {
            self.err(
                whole.start..whole.start,
                format!("missing required key `{key}`"),
            );
            return None;
        }
        self.string(t, key)
    }

    fn int(&mut self, t: &DeTable<'_>, key: &str) -> Option<(i64, Range<usize>)> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some((n, v.span())),
                Err(_) => {
                    self.err(v.span(), format!("`{key}` is out of range"));
                    None
                }
            },
            other => {
                self.err(
                    v.span(),
                    format!("`{key}` must be an integer, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn required_int(
        &mut self,
        t: &DeTable<'_>,
        key: &str,
        whole: &Range<usize>,
    ) -> Option<(i64, Range<usize>)> {
        if t.get(key).is_none() {
            self.err(
                whole.start..whole.start,
                format!("missing required key `{key}`"),
            );
            return None;
        }
        self.int(t, key)
    }

    fn bool_or(&mut self, t: &DeTable<'_>, key: &str, default: bool) -> Option<bool> {
        let Some(v) = t.get(key) else {
            return Some(default);
        };
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.err(
                    v.span(),
                    format!("`{key}` must be true or false, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn duration(&mut self, t: &DeTable<'_>, key: &str) -> Option<(Duration, Range<usize>)> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => match parse_duration(s) {
                Ok(d) => Some((d, v.span())),
                Err(e) => {
                    self.err(v.span(), format!("`{key}`: {e}"));
                    None
                }
            },
            other => {
                self.err(
                    v.span(),
                    format!(
                        "`{key}` must be a duration string with a unit (e.g. \"1s\"), found {}",
                        other.type_str()
                    ),
                );
                None
            }
        }
    }
}

fn key_span(t: &DeTable<'_>, key: &str) -> Option<Range<usize>> {
    t.get(key).map(|v| v.span())
}

/// RFC 3768 §5.3.7 (v2: whole seconds in 8 bits) and RFC 9568 §5.2.7 (v3:
/// centiseconds in 12 bits).
fn check_interval(version: Version, d: Duration) -> Result<(), String> {
    match version {
        Version::V2 => {
            if d.subsec_nanos() != 0 || !(1..=255).contains(&d.as_secs()) {
                return Err(format!(
                    "VRRPv2 needs whole seconds 1s..=255s, found {}",
                    format_duration(d)
                ));
            }
        }
        Version::V3 => {
            let ns = d.as_nanos();
            if !(10_000_000..=40_950_000_000).contains(&ns) || !ns.is_multiple_of(10_000_000) {
                return Err(format!(
                    "VRRPv3 needs 10ms..=40.95s in steps of 10ms, found {}",
                    format_duration(d)
                ));
            }
        }
    }
    Ok(())
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
            suggest("priorty", INSTANCE_KEYS),
            ", did you mean `priority`?"
        );
        assert_eq!(suggest("zzzzzzzz", INSTANCE_KEYS), "");
    }
}
