//! What a `[[check]]` table and an instance's `track` list say, as plain
//! types, and their validation.
//!
//! config.rs parses TOML into these and calls [`CheckSpec::validate`] (pure,
//! no system access) and [`CheckSpec::preflight`] (looks at the system: the
//! command exists and is executable, the user exists). Each error names the
//! key it is about ([`CheckSpecError::key`]) so config.rs can attach the
//! key's FILE:LINE:COL.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use crate::cmdline::{self, PreflightError, PreflightWarning, RunAs};

/// `interval` when the table has none (keepalived's `vrrp_script` default).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest accepted `interval`: the shortest VRRPv3 advert interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// The longest process name the kernel keeps (`/proc/PID/comm`, TASK_COMM_LEN - 1).
pub const MAX_COMM_LEN: usize = 15;
/// Track weights of checks and interfaces: keepalived's `-253..=253`.
pub const MAX_WEIGHT: i32 = 253;
/// Track weights of `file` checks: keepalived's `track_file` `-254..=254`.
pub const MAX_FILE_WEIGHT: i32 = 254;

/// One `[[check]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// Unique name, referred to by `track = [{ check = "..." }]`.
    pub name: String,
    /// What is checked.
    pub kind: CheckKind,
    /// Time between two runs (default [`DEFAULT_INTERVAL`]).
    pub interval: Duration,
    /// A run that takes longer fails (default: `interval`).
    pub timeout: Duration,
    /// Consecutive successes to go up (default 1).
    pub rise: u32,
    /// Consecutive failures to go down (default 1).
    pub fall: u32,
    /// The state before the first result.
    pub initial: InitialState,
}

/// The state a check starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialState {
    /// keepalived's default: unknown until the first result, and that first
    /// result decides at once (one success or one failure is enough).
    #[default]
    Unknown,
    /// keepalived's `init_fail`: down until `rise` consecutive successes.
    Down,
}

/// The kinds of check (`kind = "exec" | "tcp" | "process" | "file"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// Run a command (argv, no shell); exit status 0 is success.
    Exec {
        /// `command`: program and arguments.
        command: Vec<String>,
        /// `user`: run as this user (default: root).
        user: Option<String>,
    },
    /// Connect to `address`; an accepted connection is success.
    Tcp {
        /// `address`: `"127.0.0.1:6379"`, `"[2001:db8::1]:6379"`.
        address: SocketAddr,
    },
    /// A process is running.
    Process(ProcessTarget),
    /// An integer read from a file (keepalived's `track_file`).
    File {
        /// `path`: the file (absolute).
        path: PathBuf,
    },
}

/// Which process a `process` check watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessTarget {
    /// `process = "redis-server"`: any process whose `/proc/PID/comm` is
    /// exactly this (like keepalived's `vrrp_track_process`, not a regex).
    Name(String),
    /// `pidfile = "/run/redis/redis.pid"`: the process whose pid it holds.
    Pidfile(PathBuf),
}

impl CheckKind {
    /// The `kind` value in the config file.
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckKind::Exec { .. } => "exec",
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Process(_) => "process",
            CheckKind::File { .. } => "file",
        }
    }
}

/// A problem with a `[[check]]` table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckSpecError {
    /// `name = ""`.
    #[error("check name is empty")]
    EmptyName,
    /// `interval` below [`MIN_INTERVAL`].
    #[error("interval {interval:?} is below the minimum 10ms")]
    IntervalTooShort {
        /// The configured interval.
        interval: Duration,
    },
    /// `timeout = "0s"`.
    #[error("timeout must be more than 0")]
    ZeroTimeout,
    /// `timeout` longer than `interval`: runs would overlap.
    #[error(
        "timeout {timeout:?} is longer than interval {interval:?}; a check runs once at a time"
    )]
    TimeoutOverInterval {
        /// The configured timeout.
        timeout: Duration,
        /// The configured interval.
        interval: Duration,
    },
    /// `rise = 0` or `fall = 0`.
    #[error("{key} must be at least 1")]
    ZeroCount {
        /// `"rise"` or `"fall"`.
        key: &'static str,
    },
    /// `rise`/`fall` on a `file` check: keepalived's `track_file` applies
    /// each value at once.
    #[error("{key} does not apply to a file check: each value read applies at once")]
    CountOnFile {
        /// `"rise"` or `"fall"`.
        key: &'static str,
    },
    /// `command = []`.
    #[error("command is empty")]
    EmptyCommand,
    /// `process = ""`.
    #[error("process name is empty")]
    EmptyProcessName,
    /// A name the kernel truncates, so it never matches `/proc/PID/comm`.
    #[error(
        "process name {name:?} is longer than 15 bytes; the kernel keeps only 15 (use pidfile)"
    )]
    ProcessNameTooLong {
        /// The configured name.
        name: String,
    },
    /// A relative `path` or `pidfile`.
    #[error("{key} {path:?} must be an absolute path")]
    RelativePath {
        /// `"path"` or `"pidfile"`.
        key: &'static str,
        /// The configured path.
        path: PathBuf,
    },
    /// `address` with port 0.
    #[error("address {address} has port 0")]
    PortZero {
        /// The configured address.
        address: SocketAddr,
    },
    /// `user` does not exist.
    #[error("user {user:?} does not exist")]
    UnknownUser {
        /// The configured user.
        user: String,
    },
    /// The command cannot run.
    #[error(transparent)]
    Command(#[from] PreflightError),
}

impl CheckSpecError {
    /// The config key the error is about, to point at its position.
    pub fn key(&self) -> &'static str {
        match self {
            CheckSpecError::EmptyName => "name",
            CheckSpecError::IntervalTooShort { .. } => "interval",
            CheckSpecError::ZeroTimeout | CheckSpecError::TimeoutOverInterval { .. } => "timeout",
            CheckSpecError::ZeroCount { key } | CheckSpecError::CountOnFile { key } => key,
            CheckSpecError::EmptyCommand | CheckSpecError::Command(_) => "command",
            CheckSpecError::EmptyProcessName | CheckSpecError::ProcessNameTooLong { .. } => {
                "process"
            }
            CheckSpecError::RelativePath { key, .. } => key,
            CheckSpecError::PortZero { .. } => "address",
            CheckSpecError::UnknownUser { .. } => "user",
        }
    }
}

impl CheckSpec {
    /// A spec with the defaults for everything but the name and kind.
    pub fn new(name: impl Into<String>, kind: CheckKind) -> Self {
        CheckSpec {
            name: name.into(),
            kind,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_INTERVAL,
            rise: 1,
            fall: 1,
            initial: InitialState::Unknown,
        }
    }

    /// Every problem that needs no look at the system.
    pub fn validate(&self) -> Vec<CheckSpecError> {
        let mut errors = Vec::new();
        if self.name.is_empty() {
            errors.push(CheckSpecError::EmptyName);
        }
        if self.interval < MIN_INTERVAL {
            errors.push(CheckSpecError::IntervalTooShort {
                interval: self.interval,
            });
        }
        if self.timeout.is_zero() {
            errors.push(CheckSpecError::ZeroTimeout);
        } else if self.timeout > self.interval {
            errors.push(CheckSpecError::TimeoutOverInterval {
                timeout: self.timeout,
                interval: self.interval,
            });
        }
        for (key, n) in [("rise", self.rise), ("fall", self.fall)] {
            if n == 0 {
                errors.push(CheckSpecError::ZeroCount { key });
            } else if n != 1 && matches!(self.kind, CheckKind::File { .. }) {
                errors.push(CheckSpecError::CountOnFile { key });
            }
        }
        match &self.kind {
            CheckKind::Exec { command, .. } if command.is_empty() => {
                errors.push(CheckSpecError::EmptyCommand);
            }
            CheckKind::Exec { .. } => {}
            CheckKind::Tcp { address } if address.port() == 0 => {
                errors.push(CheckSpecError::PortZero { address: *address });
            }
            CheckKind::Tcp { .. } => {}
            CheckKind::Process(ProcessTarget::Name(name)) if name.is_empty() => {
                errors.push(CheckSpecError::EmptyProcessName);
            }
            CheckKind::Process(ProcessTarget::Name(name)) if name.len() > MAX_COMM_LEN => {
                errors.push(CheckSpecError::ProcessNameTooLong { name: name.clone() });
            }
            CheckKind::Process(ProcessTarget::Name(_)) => {}
            CheckKind::Process(ProcessTarget::Pidfile(path)) if path.is_relative() => {
                errors.push(CheckSpecError::RelativePath {
                    key: "pidfile",
                    path: path.clone(),
                });
            }
            CheckKind::Process(ProcessTarget::Pidfile(_)) => {}
            CheckKind::File { path } if path.is_relative() => {
                errors.push(CheckSpecError::RelativePath {
                    key: "path",
                    path: path.clone(),
                });
            }
            CheckKind::File { .. } => {}
        }
        errors
    }

    /// The checks that look at the system (for `exec`: the user exists, the
    /// command exists and that user may execute it). Returns the warnings
    /// (unsafe permissions) when it passes.
    pub fn preflight(&self) -> Result<Vec<PreflightWarning>, CheckSpecError> {
        let CheckKind::Exec { command, user } = &self.kind else {
            return Ok(Vec::new());
        };
        let run_as = match user {
            None => RunAs::ROOT,
            Some(user) => resolve_user(user)?.run_as(),
        };
        Ok(cmdline::preflight(command, run_as)?.warnings)
    }
}

/// A user to run a command as, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (from the group database, like `initgroups`).
    pub groups: Vec<u32>,
}

impl Credentials {
    /// The uid/gid pair for the executable test.
    pub fn run_as(&self) -> RunAs {
        RunAs {
            uid: self.uid,
            gid: self.gid,
        }
    }
}

/// Looks `user` up in the user and group databases.
pub fn resolve_user(user: &str) -> Result<Credentials, CheckSpecError> {
    let unknown = || CheckSpecError::UnknownUser {
        user: user.to_owned(),
    };
    let pw = nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .ok_or_else(unknown)?;
    let cname = std::ffi::CString::new(user).map_err(|_| unknown())?;
    let groups = nix::unistd::getgrouplist(&cname, pw.gid)
        .map(|gs| gs.into_iter().map(|g| g.as_raw()).collect())
        .unwrap_or_else(|_| vec![pw.gid.as_raw()]);
    Ok(Credentials {
        uid: pw.uid.as_raw(),
        gid: pw.gid.as_raw(),
        groups,
    })
}

/// One entry of an instance's `track` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    /// What is tracked.
    pub target: TrackTarget,
    /// `weight` (default 0: failure puts the instance in FAULT).
    pub weight: i32,
    /// `reverse = true`: keepalived's `weight N reverse`, the adjustment
    /// applies in the other state (and weight 0 faults while *up*).
    pub reverse: bool,
}

/// The object of a [`TrackSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackTarget {
    /// `{ check = "name" }`.
    Check(String),
    /// `{ interface = "eth1" }`: up/down from netlink.
    Interface(String),
}

/// A problem with a `track` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackSpecError {
    /// `{ check = "x" }` with no `[[check]]` named `x`.
    #[error("no [[check]] named {0:?}")]
    UnknownCheck(String),
    /// Weight outside keepalived's range for the kind.
    #[error("weight {weight} is outside {}..={max}", -max)]
    WeightRange {
        /// The configured weight.
        weight: i32,
        /// The largest magnitude accepted.
        max: i32,
    },
}

/// A `track` entry that is accepted but does not do what it says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackSpecWarning {
    /// Priority 255 is never changed by weights (keepalived
    /// `vrrp_set_effective_priority`); only weight 0 (FAULT) has an effect.
    #[error("weight {0} is ignored: an address owner (priority 255) keeps its priority")]
    WeightOnOwner(i32),
    /// keepalived sets the weights of sync-group members to 0 so members
    /// cannot disagree on who is master; so does [`TrackSpec::weight_in`].
    #[error(
        "weight {0} is treated as 0: the instance is in a sync group (keepalived does the same)"
    )]
    WeightInSyncGroup(i32),
}

impl TrackSpec {
    /// Validates the entry against the check it names (`None` for an
    /// interface or an unknown check), the instance's configured priority,
    /// and whether the instance is in a sync group.
    pub fn validate(
        &self,
        check: Option<&CheckSpec>,
        priority: u8,
        in_sync_group: bool,
    ) -> Result<Vec<TrackSpecWarning>, TrackSpecError> {
        if let TrackTarget::Check(name) = &self.target
            && check.is_none()
        {
            return Err(TrackSpecError::UnknownCheck(name.clone()));
        }
        let max = match check.map(|c| &c.kind) {
            Some(CheckKind::File { .. }) => MAX_FILE_WEIGHT,
            _ => MAX_WEIGHT,
        };
        if self.weight.unsigned_abs() > max.unsigned_abs() {
            return Err(TrackSpecError::WeightRange {
                weight: self.weight,
                max,
            });
        }
        let mut warnings = Vec::new();
        if self.weight != 0 && in_sync_group {
            warnings.push(TrackSpecWarning::WeightInSyncGroup(self.weight));
        } else if self.weight != 0 && priority == crate::proto::router::OWNER_PRIORITY {
            warnings.push(TrackSpecWarning::WeightOnOwner(self.weight));
        }
        Ok(warnings)
    }

    /// The weight tracking uses: 0 for members of a sync group (keepalived:
    /// "any track scripts/files configured against member VRRP instances
    /// will have their tracking weights automatically set to zero").
    pub fn weight_in(&self, in_sync_group: bool) -> i32 {
        if in_sync_group { 0 } else { self.weight }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(cmd: &[&str]) -> CheckSpec {
        CheckSpec::new(
            "c",
            CheckKind::Exec {
                command: cmd.iter().map(|s| s.to_string()).collect(),
                user: None,
            },
        )
    }

    #[test]
    fn defaults_validate() {
        assert_eq!(exec(&["true"]).validate(), []);
        assert_eq!(exec(&["true"]).preflight(), Ok(vec![]));
    }

    #[test]
    fn timeout_over_interval_is_an_error_on_timeout() {
        let mut c = exec(&["true"]);
        c.timeout = Duration::from_secs(2);
        let e = c.validate();
        assert!(
            matches!(e[..], [CheckSpecError::TimeoutOverInterval { .. }]),
            "{e:?}"
        );
        assert_eq!(e[0].key(), "timeout");
        c.timeout = Duration::ZERO;
        assert_eq!(c.validate(), [CheckSpecError::ZeroTimeout]);
    }

    #[test]
    fn counts_and_intervals() {
        let mut c = exec(&["true"]);
        c.rise = 0;
        c.interval = Duration::from_millis(5);
        c.timeout = Duration::from_millis(5);
        let e = c.validate();
        assert!(
            e.contains(&CheckSpecError::ZeroCount { key: "rise" }),
            "{e:?}"
        );
        assert!(e.iter().any(|e| e.key() == "interval"), "{e:?}");
        let mut f = CheckSpec::new(
            "f",
            CheckKind::File {
                path: "/run/w".into(),
            },
        );
        f.fall = 3;
        assert_eq!(f.validate(), [CheckSpecError::CountOnFile { key: "fall" }]);
    }

    #[test]
    fn kind_specific_rules() {
        assert_eq!(exec(&[]).validate(), [CheckSpecError::EmptyCommand]);
        let long = CheckSpec::new(
            "p",
            CheckKind::Process(ProcessTarget::Name("a-sixteen-chars!".into())),
        );
        assert_eq!(long.validate()[0].key(), "process");
        let rel = CheckSpec::new(
            "p",
            CheckKind::Process(ProcessTarget::Pidfile("x.pid".into())),
        );
        assert_eq!(rel.validate()[0].key(), "pidfile");
        let tcp = CheckSpec::new(
            "t",
            CheckKind::Tcp {
                address: "127.0.0.1:0".parse().unwrap(),
            },
        );
        assert_eq!(tcp.validate()[0].key(), "address");
    }

    #[test]
    fn preflight_finds_missing_commands_and_users() {
        let e = exec(&["/nonexistent/redis-cli", "ping"])
            .preflight()
            .unwrap_err();
        assert!(matches!(
            e,
            CheckSpecError::Command(PreflightError::NotFound { .. })
        ));
        assert_eq!(e.key(), "command");
        let mut c = exec(&["true"]);
        c.kind = CheckKind::Exec {
            command: vec!["true".into()],
            user: Some("no-such-user-vrrp".into()),
        };
        assert_eq!(c.preflight().unwrap_err().key(), "user");
        assert_eq!(resolve_user("root").map(|c| (c.uid, c.gid)), Ok((0, 0)));
    }

    #[test]
    fn track_rules() {
        let check = exec(&["true"]);
        let t = |weight| TrackSpec {
            target: TrackTarget::Check("c".into()),
            weight,
            reverse: false,
        };
        assert_eq!(t(-60).validate(Some(&check), 100, false), Ok(vec![]));
        assert_eq!(
            t(0).validate(None, 100, false),
            Err(TrackSpecError::UnknownCheck("c".into()))
        );
        assert!(t(254).validate(Some(&check), 100, false).is_err());
        let file = CheckSpec::new("c", CheckKind::File { path: "/w".into() });
        assert_eq!(t(254).validate(Some(&file), 100, false), Ok(vec![]));
        assert_eq!(
            t(10).validate(Some(&check), 255, false),
            Ok(vec![TrackSpecWarning::WeightOnOwner(10)])
        );
        assert_eq!(
            t(10).validate(Some(&check), 100, true),
            Ok(vec![TrackSpecWarning::WeightInSyncGroup(10)])
        );
        assert_eq!(t(10).weight_in(true), 0);
        assert_eq!(t(10).weight_in(false), 10);
    }
}
