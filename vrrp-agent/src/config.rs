//! The configuration file: TOML, validated in one pass that reports every
//! problem with its position (`FILE:LINE:COL: message`).
//!
//! The document is read into toml's span-carrying tree ([`toml::de::DeTable`]) and walked
//! by hand instead of through `#[derive(Deserialize)]`: serde stops at the
//! first error, and an operator fixing a config wants the whole list at once.
//! Unknown keys are errors (typo protection), with a suggestion when a known
//! key is close.
//!
//! `config/validate.rs` walks the document; this module holds what the rest of the
//! agent uses: the validated types, loading (`config/load.rs`), and the
//! duration syntax (`config/duration.rs`).
//!
//! Keys beyond the SPEC (compatible extensions):
//! - `check.init_fail` (default false, keepalived's `init_fail`): the check
//!   starts down and needs `rise` successes to go up.
//! - `track` entries take `reverse = true` (keepalived's `weight N reverse`).
//! - `sync_group.notify_stop`, besides `notify` and `notify_master/backup/fault`.
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
    ffi::OsString,
    fmt,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

pub use crate::checks::{CheckSpec, TrackSpec, TrackTarget};
use crate::proto::{
    packet::{
        Family, HEADER_LEN, V2_AUTH_DATA_LEN, V3Checksum, VRRP_GROUP_V4, VRRP_GROUP_V6, Version,
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

mod duration;
mod load;
mod validate;
mod values;

pub use duration::{format_duration, parse_duration};
use load::line_col;
pub use load::{ConfigError, Problem};

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
    /// `[[check]]`, in file order.
    pub checks: Vec<CheckSpec>,
    /// `[[sync_group]]`, in file order.
    pub sync_groups: Vec<SyncGroup>,
}

/// A command line as keepalived users write it (`"/etc/x.sh 192.0.2.2
/// 6379"`), split with keepalived's quoting ([`crate::cmdline::parse`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// The line as written.
    pub line: String,
    /// The words: program and arguments (never empty).
    pub argv: Vec<OsString>,
}

impl Script {
    /// Splits `line`; `None` for an empty line.
    pub fn parse(line: &str) -> Result<Script, crate::cmdline::CmdlineError> {
        Ok(Script {
            line: line.to_owned(),
            argv: crate::cmdline::parse(line)?,
        })
    }

    /// The program, `argv[0]`.
    pub fn program(&self) -> &Path {
        Path::new(self.argv.first().map_or("".as_ref(), |p| p.as_os_str()))
    }
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

/// The notify commands of an instance or a sync group (keepalived's
/// `notify`, `notify_master`, `notify_backup`, `notify_fault`,
/// `notify_stop`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    /// `notify`: called with `INSTANCE name STATE priority` (a group's with
    /// `GROUP name STATE 0`) appended, on every state change.
    pub any: Option<Script>,
    /// `notify_master`: run as written on becoming MASTER.
    pub master: Option<Script>,
    /// `notify_backup`: on becoming BACKUP.
    pub backup: Option<Script>,
    /// `notify_fault`: on entering FAULT.
    pub fault: Option<Script>,
    /// `notify_stop`: when the instance stops.
    pub stop: Option<Script>,
}

impl Notify {
    /// The command lines to run when entering `state` (`"MASTER"`,
    /// `"BACKUP"`, `"FAULT"`, `"STOP"`): the state's own script as written,
    /// then the generic one with `kind name STATE priority` appended
    /// (keepalived runs them in this order).
    pub fn commands(
        &self,
        kind: &str,
        name: &str,
        state: &str,
        priority: u8,
    ) -> Vec<Vec<OsString>> {
        let own = match state {
            "MASTER" => &self.master,
            "BACKUP" => &self.backup,
            "FAULT" => &self.fault,
            "STOP" => &self.stop,
            _ => &None,
        };
        let mut out = Vec::new();
        if let Some(s) = own {
            out.push(s.argv.clone());
        }
        if let Some(s) = &self.any {
            let mut argv = s.argv.clone();
            argv.extend([kind, name, state].map(OsString::from));
            argv.push(priority.to_string().into());
            out.push(argv);
        }
        out
    }

    /// Every configured script.
    pub fn scripts(&self) -> impl Iterator<Item = &Script> {
        [
            &self.any,
            &self.master,
            &self.backup,
            &self.fault,
            &self.stop,
        ]
        .into_iter()
        .flatten()
    }
}

/// One `[[sync_group]]`: instances that change state together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncGroup {
    /// Its name (in the group notify and the log).
    pub name: String,
    /// Member instance names, each an `[[instance]]` in no other group.
    pub instances: Vec<String>,
    /// Group notify commands (`notify` gets `GROUP name STATE 0`).
    pub notify: Notify,
}

impl Config {
    /// The sync group `instance` is a member of.
    pub fn sync_group_of(&self, instance: &str) -> Option<&SyncGroup> {
        self.sync_groups
            .iter()
            .find(|g| g.instances.iter().any(|i| i == instance))
    }
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
    /// v2 only: simple text password (Auth Type 1, RFC 2338 §5.3.6),
    /// zero-padded to 8 bytes, sent and required in adverts; `None`: none.
    pub auth_pass: Option<crate::proto::auth::Password>,
    /// The advert source address (keepalived's `unicast_src_ip`); `None`:
    /// the interface's primary IPv4 / link-local IPv6 address. Must be on
    /// the interface (the instance waits in FAULT until it is).
    pub unicast_src: Option<IpAddr>,
    /// Commands run on state changes.
    pub notify: Notify,
    /// Tracked checks and interfaces (`track = [...]`).
    pub track: Vec<TrackSpec>,
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
}
