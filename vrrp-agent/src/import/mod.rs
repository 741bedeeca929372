//! `vrrp-agent import-keepalived`: converts a keepalived.conf into a
//! vrrp-agent config that elects, fails over and preempts the way the
//! keepalived node did, so one node of a working pair can be converted while
//! the other stays on keepalived.
//!
//! - [`parse`] reads keepalived's syntax (blocks, comments, quotes,
//!   `include` globs, `@ID` conditional lines, `$NAME` parameters) into
//!   statements that remember their file and line.
//! - [`convert`] maps each keyword, one `match` arm per keyword, and renders
//!   TOML where every value carries a comment naming its source line, or the
//!   keepalived default it comes from.
//!
//! The reference is keepalived 2.2.7 (the version the interop tests run):
//! its keepalived.conf(5) and its source (`lib/parser.c`,
//! `keepalived/vrrp/vrrp_parser.c`, `vrrp_complete_instance()` in
//! `keepalived/vrrp/vrrp.c`).
//!
//! # Defaults made explicit
//!
//! Every key is written even when it equals our default, because several of
//! keepalived's defaults differ from ours:
//!
//! | key | keepalived default (where) | ours |
//! |---|---|---|
//! | `version` | global `vrrp_version`, itself 2 (`global_data.c`); IPv6 instances 3 (`vrrp_complete_instance`) | 3 |
//! | `priority` | 100 (`VRRP_PRIO_DFL`, `vrrp.h`); 255 if `state MASTER` and no priority (`vrrp_complete_instance`) | required |
//! | `advert_interval` | 1 s (`VRRP_ADVER_DFL`); v2 rounds to whole seconds, v3 to centiseconds | 1 s |
//! | `preempt` | on (`nopreempt` clears it; ignored with `state MASTER` or priority 255) | true |
//! | `preempt_delay` | 0; cleared with `state MASTER`, `nopreempt` or strict mode | 0 s |
//! | `accept_mode` | accept unless strict mode; priority 255 always accepts; strict v2 never (`vrrp_complete_instance`) | false |
//! | `garp_repeat` | `vrrp_garp_master_repeat` 5 (`VRRP_GARP_REP`); 1 with `vrrp_min_garp` | 5 |
//! | `garp_interval` | `vrrp_garp_interval` / `vrrp_gna_interval` 0 (back to back) | 10 ms |
//! | `v3_checksum` | with the IPv4 pseudo-header (RFC 5798) | rfc5798 |
//!
//! # Keyword coverage
//!
//! **Carried** (same behaviour): `vrrp_instance` name, `interface`,
//! `virtual_router_id`, `priority`, `advert_int`, `version`,
//! `vrrp_version`, `state BACKUP`, `nopreempt`, `preempt`, `preempt_delay`, `accept`,
//! `no_accept`, `vrrp_strict` / `strict_mode` (through the defaults they
//! change), `virtual_ipaddress` addresses (a missing mask is /32 or /128, as
//! in keepalived), `unicast_peer`, `unicast_src_ip` / `mcast_src_ip` (one
//! keepalived handler: the advert source) as `unicast_src`,
//! `authentication { auth_type PASS auth_pass TEXT }` on a VRRPv2 instance
//! as `auth_pass` (the text as written: keepalived and vrrp-agent both send
//! its first 8 bytes and warn when it is longer), `garp_master_repeat`,
//! `vrrp_garp_master_repeat`, `vrrp_min_garp`, `vrrp_garp_interval`,
//! `vrrp_gna_interval`, `router_id`,
//! `include`/`includer`/`includem`/`includew`/`includeb`/`includea`;
//! `notify`, `notify_master`, `notify_backup`, `notify_fault`,
//! `notify_stop` of an instance or a group (as written: same quoting, same
//! `INSTANCE name STATE priority` arguments); `vrrp_script` (`script`,
//! `interval`, `timeout`, `rise`, `fall`, `weight [reverse]`, `user`,
//! `init_fail`) as an exec `[[check]]`, `track_file`/`vrrp_track_file`
//! (`file`, `weight`) as a file check, `vrrp_track_process` (`process NAME`,
//! `weight`, `quorum 1`) as a process check, each with keepalived's defaults
//! written out (vrrp_script weight 0, i.e. FAULT on failure; track_file and
//! track_process weight 1; timeout = interval; rise/fall 1);
//! `track_script`, `track_file`, `track_process`, `track_interface` as
//! `track` entries (an entry's `weight`/`reverse`/`noreverse` overrides the
//! definition's); `vrrp_sync_group` as a `[[sync_group]]`, its tracking
//! added to each member (keepalived applies it to each member).
//!
//! **Mapped with a difference** (listed, exit status 0): `state MASTER`
//! below priority 255 (keepalived claims mastership one advert interval
//! after start-up; vrrp-agent waits Master_Down_Interval like any Backup;
//! the election result is the same), an IPv6
//! `virtual_ipaddress` whose link-local address is not first (moved first:
//! RFC 9568 §5.2.9; keepalived sends them in file order and compares the
//! list without regard to order), an IPv6 `virtual_ipaddress` without a
//! link-local address (kept exactly as keepalived has it, since keepalived
//! drops adverts whose address list differs from its own; RFC 9568 §5.2.9
//! wants a link-local first, so both sides should add the same first line
//! when they can), `unicast_peer` (vrrp-agent requires TTL
//! 255 on receive, so the peers must share a link), `use_vmac` (vrrp-agent
//! keeps the interface MAC and announces moves with gratuitous ARP / NA),
//! `nopreempt`/`preempt_delay` that keepalived itself ignores (kept as
//! keepalived runs them), IPv6 `/128` VIPs (keepalived deprecates them with
//! `preferred_lft 0`; vrrp-agent adds them with the kernel default),
//! `notify* SCRIPT USER` (the script runs as vrrp-agent's user), a
//! `vrrp_script` `script` with shell syntax (wrapped as `["/bin/sh", "-c",
//! ...]`: keepalived 1.x ran a shell, 2.x splits the words), `user USER
//! GROUP` (the user's own group is used), `vrrp_track_process` (polled every
//! interval rather than on process events; `delay`, `fork_delay`,
//! `terminate_delay` are listed with the rise/fall that matches them).
//!
//! **Not carried, failover changes** (listed, exit status 2): these change
//! who becomes MASTER, when, or what happens on a transition, so running
//! the converted file as is would behave differently from the keepalived
//! node:
//! - `track_bfd`, `dont_track_primary`, `sync_group_tracking_weight`:
//!   priority or FAULT would no longer follow the tracked object.
//! - `vrrp_track_process` with process parameters, `quorum` other than 1,
//!   `quorum_max`, `param_match`, `full_command` (vrrp-agent matches one
//!   process by name: use an exec check with `pgrep`); `track_file`
//!   `init_file` (create the file before starting); a `vrrp_script`
//!   `timeout` above its `interval` (keepalived lets the script overrun;
//!   vrrp-agent kills it at the interval: the timeout becomes the interval).
//! - `notify_master_rx_lower_pri`, global `notify_fifo`/`vrrp_notify_fifo`:
//!   the actions run on those events would not happen.
//! - `authentication` with `auth_type AH` (IPsec AH) on a VRRPv2 instance:
//!   the keepalived peer drops adverts without it, and both nodes become
//!   MASTER.
//! - `mcast_dst_ip`, global `vrrp_mcast_group4`/`vrrp_mcast_group6`: the
//!   peers would not hear each other.
//! - `down_timer_adverts` other than 3: a different Master_Down_Interval.
//! - `virtual_ipaddress` options `dev` (another interface) and `use_vmac`,
//!   `virtual_ipaddress_excluded`, `virtual_routes`, `virtual_rules`: those
//!   addresses, routes or rules would not move with mastership.
//! - `version 2` on an IPv6 instance: keepalived runs non-standard VRRPv2
//!   over IPv6 there; vrrp-agent speaks v3.
//!
//! **Not carried, harmless** (listed, exit status 0): `authentication`
//! that keepalived itself ignores (VRRPv3, strict mode, or without both a
//! type and a password: it sends none either), notification e-mail
//! (`notification_email*`, `smtp_*`), script security (`script_user`,
//! `enable_script_security`), firewall integration (`vrrp_iptables`,
//! `nftables*`), GARP refresh/lower-priority/delay tuning
//! (`garp_master_delay`, `garp_master_refresh*`, `garp_lower_prio_*`,
//! `garp_extra_if`), VIP options `label`, `brd`, `scope`, `preferred_lft`,
//! `no_track`, `home`, `-nodad`, `noprefixroute`, `mngtmpaddr`, `autojoin`,
//! definitions no instance or group tracks (keepalived does not run them),
//! `track_*` entries naming no definition (keepalived ignores them),
//! advert checks (`skip_check_adv_addr`, `check_unicast_src`,
//! `lower_prio_no_advert`, `higher_prio_send_advert`, `unicast_ttl`,
//! `min_ttl`/`max_ttl`), process tuning, LVS (`virtual_server*`), static
//! addresses and routes, and keywords the importer does not know (keepalived
//! would reject a typo itself).
//!
//! Keys not in `config.rs` yet (VIP options) are each one arm in
//! [`convert`], ready to be carried when their key lands.
//!
//! # Exit status of the command
//!
//! 0: converted, nothing that changes failover was dropped. 2: converted and
//! written, but something listed as "changes failover" was dropped; read the
//! list before running it. 1: the file could not be converted (unreadable,
//! broken braces, invalid values, an instance without VIPs).

pub mod convert;
pub mod parse;

use std::{fmt, path::Path};

pub use parse::ReadOptions;

/// Where a statement came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Source {
    /// The file, as opened (includes are joined to the including file's directory).
    pub file: String,
    /// 1-based line.
    pub line: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// How much a note matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Carried, but with a difference the operator should know.
    Difference,
    /// Not carried; failover behaves the same without it.
    Harmless,
    /// Not carried, and failover behaves differently without it.
    ChangesFailover,
    /// The file cannot be converted.
    Error,
}

impl Severity {
    fn label(self) -> &'static str {
        match self {
            Severity::Difference => "carried with a difference",
            Severity::Harmless => "not carried",
            Severity::ChangesFailover => "not carried, failover changes",
            Severity::Error => "error",
        }
    }
}

/// A keyword that could not be carried as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Where the keyword is.
    pub at: Source,
    /// The keepalived keyword.
    pub keyword: String,
    /// How much it matters.
    pub severity: Severity,
    /// What happened and what to do instead.
    pub message: String,
}

impl Note {
    /// A note at `at` about `keyword`.
    pub fn new(at: &Source, keyword: &str, severity: Severity, message: impl Into<String>) -> Note {
        Note {
            at: at.clone(),
            keyword: keyword.to_owned(),
            severity,
            message: message.into(),
        }
    }
}

impl fmt::Display for Note {
    /// `FILE:LINE: keyword: (severity) what to do instead`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: ({}) {}",
            self.at,
            self.keyword,
            self.severity.label(),
            self.message
        )
    }
}

/// Why a conversion produced no config.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The top-level file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The path as given.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The result of a conversion.
#[derive(Clone, Debug)]
pub struct Conversion {
    /// The vrrp-agent config (TOML), or `None` when an error prevented it.
    pub toml: Option<String>,
    /// Every keyword not carried as is, in file order.
    pub notes: Vec<Note>,
}

impl Conversion {
    /// True when a note says failover changes (exit status 2).
    pub fn changes_failover(&self) -> bool {
        self.notes
            .iter()
            .any(|n| n.severity == Severity::ChangesFailover)
    }

    /// The process exit status: 0 faithful, 2 failover changes, 1 failed.
    pub fn exit_status(&self) -> u8 {
        if self.toml.is_none() {
            1
        } else if self.changes_failover() {
            2
        } else {
            0
        }
    }
}

/// Reads and converts a keepalived.conf.
pub fn import(path: &Path, opts: &ReadOptions) -> Result<Conversion, ImportError> {
    let (stmts, mut notes) = parse::read(path, opts)?;
    let (toml, more) = convert::convert(&stmts, &path.display().to_string());
    notes.extend(more);
    notes.sort_by(|a, b| (&a.at.file, a.at.line).cmp(&(&b.at.file, b.at.line)));
    let failed = notes.iter().any(|n| n.severity == Severity::Error);
    Ok(Conversion {
        toml: if failed { None } else { toml },
        notes,
    })
}
