//! The runners: one tokio task per check, each sending a [`CheckEvent`]
//! per result on a channel, all stopped by [`Runners::shutdown`].
//!
//! - `exec`: the command (argv, no shell) with the environment cleared but
//!   `PATH` ([`SAFE_PATH`]), stdin `/dev/null`, in its own process group, as
//!   `user` (uid, gid and the user's supplementary groups, set between fork
//!   and exec). stdout and stderr are read to the end but only the first
//!   [`OUTPUT_LIMIT`] bytes are kept, and logged when the result changes or
//!   at most once a minute. At `timeout` the whole group is SIGKILLed, the
//!   child reaped, and the run counts as a failure. A check whose children
//!   keep its stdout open past `timeout` is treated the same way.
//! - `tcp`: a non-blocking connect bounded by `timeout`, no fork; the socket
//!   is closed with SO_LINGER 0 (an RST), so frequent checks leave no
//!   TIME_WAIT behind. Cheap enough for 10-100 ms intervals.
//! - `process`: found by scanning `/proc` (`comm` equal to the name,
//!   zombies skipped) or by its pidfile, then watched through a pidfd: the
//!   task wakes the moment the process exits, without polling, looks once
//!   more (another process of the same name, e.g. after a restart, keeps it
//!   up) and otherwise reports the failure at once. While the process runs,
//!   a success is reported every `interval` (so `rise` counts); while it is
//!   missing, `/proc` is scanned every `interval`. The proc connector would
//!   find a restarted process sooner, but needs CAP_NET_ADMIN and a stream of
//!   every fork/exec/exit on the host; a rescan per interval while down
//!   costs one `/proc` walk and delays only the *recovery*, never the
//!   failure.
//! - `file`: read at start and whenever the directory's inotify watch says
//!   the file was closed after writing, renamed into place or removed
//!   (keepalived's `track_file`). Parsed like keepalived's `strtol(buf, NULL,
//!   0)`: a missing, empty or non-numeric file is 0; a number outside the
//!   32-bit range is ignored. If the directory cannot be watched (it does
//!   not exist), the file is re-read every `interval` instead.

use std::{
    ffi::OsStr,
    io,
    net::SocketAddr,
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt},
    sync::{mpsc, watch},
    task::JoinHandle,
    time::MissedTickBehavior,
};

use super::{
    spec::{CheckKind, CheckSpec, Credentials, ProcessTarget, resolve_user},
    state::{Failure, Outcome},
    sys::{DirWatch, PidFd},
};
use crate::{cmdline::SAFE_PATH, dataplane, proto::Instant};

/// Bytes of stdout and of stderr kept from an `exec` run.
pub const OUTPUT_LIMIT: usize = 4096;
/// The shortest time between two logs of a check's output.
const OUTPUT_LOG_EVERY: Duration = Duration::from_secs(60);

/// One result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckEvent {
    /// The check's name.
    pub check: Arc<str>,
    /// The result.
    pub outcome: Outcome,
    /// How long the run took.
    pub duration: Duration,
    /// When it ended, on `CLOCK_MONOTONIC` (the protocol core's clock).
    pub at: Instant,
}

/// The running checks.
pub struct Runners {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Runners {
    /// Starts one task per check, each sending its results to `events`.
    /// A task ends when `events` is closed or on [`Runners::shutdown`].
    /// Must be called inside a tokio runtime.
    pub fn spawn(specs: &[CheckSpec], events: mpsc::Sender<CheckEvent>) -> Runners {
        let (stop, stopped) = watch::channel(false);
        let tasks = specs
            .iter()
            .map(|spec| {
                let runner = Runner {
                    name: Arc::from(spec.name.as_str()),
                    spec: spec.clone(),
                    events: events.clone(),
                    stopped: stopped.clone(),
                };
                tokio::spawn(runner.run())
            })
            .collect();
        Runners { stop, tasks }
    }

    /// Stops every task (a running `exec` is killed with its group) and
    /// waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

struct Runner {
    name: Arc<str>,
    spec: CheckSpec,
    events: mpsc::Sender<CheckEvent>,
    stopped: watch::Receiver<bool>,
}

impl Runner {
    async fn run(mut self) {
        let mut stopped = self.stopped.clone();
        tokio::select! {
            () = self.dispatch() => {}
            _ = stopped.wait_for(|s| *s) => {}
        }
        tracing::debug!(check = %self.name, "check runner stopped");
    }

    async fn dispatch(&mut self) {
        match self.spec.kind.clone() {
            CheckKind::Exec { command, user } => self.run_exec(&command, user.as_deref()).await,
            CheckKind::Tcp { address } => self.run_tcp(address).await,
            CheckKind::Process(target) => self.run_process(&target).await,
            CheckKind::File { path } => self.run_file(&path).await,
        }
    }

    /// Sends one result; false when nobody listens any more.
    async fn send(&self, outcome: Outcome, duration: Duration) -> bool {
        let event = CheckEvent {
            check: self.name.clone(),
            outcome,
            duration,
            at: dataplane::now(),
        };
        self.events.send(event).await.is_ok()
    }

    fn ticker(&self) -> tokio::time::Interval {
        let mut ticker = tokio::time::interval(self.spec.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker
    }

    async fn run_exec(&self, command: &[String], user: Option<&str>) {
        let creds = match user.map(resolve_user).transpose() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(check = %self.name, error = %e, "exec check cannot run");
                let _ = self
                    .send(
                        Outcome::Failure(Failure::Spawn(e.to_string())),
                        Duration::ZERO,
                    )
                    .await;
                return;
            }
        };
        let mut ticker = self.ticker();
        let mut log = OutputLog::default();
        loop {
            ticker.tick().await;
            let start = std::time::Instant::now();
            let (outcome, output) = exec_once(command, creds.as_ref(), self.spec.timeout).await;
            let duration = start.elapsed();
            log.maybe_log(&self.name, &outcome, &output);
            if !self.send(outcome, duration).await {
                return;
            }
        }
    }

    async fn run_tcp(&self, address: SocketAddr) {
        let mut ticker = self.ticker();
        loop {
            ticker.tick().await;
            let start = std::time::Instant::now();
            let outcome = tcp_once(address, self.spec.timeout).await;
            if !self.send(outcome, start.elapsed()).await {
                return;
            }
        }
    }

    async fn run_process(&self, target: &ProcessTarget) {
        let mut ticker = self.ticker();
        let mut watched: Option<PidFd> = None;
        loop {
            let start = std::time::Instant::now();
            let found = match watched.take() {
                Some(p) => Some(p),
                None => find_process(target),
            };
            let outcome = if found.is_some() {
                Outcome::Success
            } else {
                Outcome::Failure(Failure::NoProcess)
            };
            if !self.send(outcome, start.elapsed()).await {
                return;
            }
            match found {
                None => {
                    ticker.tick().await;
                }
                Some(pidfd) => {
                    tokio::select! {
                        _ = ticker.tick() => watched = Some(pidfd),
                        res = pidfd.exited() => {
                            if let Err(e) = res {
                                tracing::warn!(check = %self.name, error = %e, "pidfd wait failed");
                            }
                            tracing::info!(check = %self.name, pid = pidfd.pid(), "tracked process exited");
                            // Loop at once: look again, report the failure now.
                        }
                    }
                }
            }
        }
    }

    async fn run_file(&self, path: &Path) {
        let dir = path.parent().unwrap_or(Path::new("/"));
        let file_name = path.file_name().unwrap_or(OsStr::new(""));
        let watch = match DirWatch::new(dir) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(check = %self.name, dir = %dir.display(), error = %e,
                    "cannot watch the directory; re-reading the file every interval");
                None
            }
        };
        let mut ticker = self.ticker();
        let mut last: Option<i64> = None;
        loop {
            let start = std::time::Instant::now();
            if let Some(value) = read_track_file(path) {
                if last != Some(value) {
                    tracing::info!(check = %self.name, value, "tracked file value");
                }
                last = Some(value);
                if !self.send(Outcome::Value(value), start.elapsed()).await {
                    return;
                }
            } else {
                tracing::warn!(check = %self.name, path = %path.display(),
                    "number out of range in tracked file; ignored");
            }
            match &watch {
                Some(w) => loop {
                    match w.changed().await {
                        Ok(names) if names.iter().any(|n| n == file_name) => break,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(check = %self.name, error = %e, "inotify read failed");
                            ticker.tick().await;
                            break;
                        }
                    }
                },
                None => {
                    ticker.tick().await;
                }
            }
        }
    }
}

/// Logs a check's output when its result changes, else at most once a
/// minute.
#[derive(Default)]
struct OutputLog {
    last_result: Option<Outcome>,
    last_logged: Option<std::time::Instant>,
}

impl OutputLog {
    fn maybe_log(&mut self, check: &str, outcome: &Outcome, output: &Output) {
        let changed = self.last_result.as_ref() != Some(outcome);
        let due = self
            .last_logged
            .is_none_or(|t| t.elapsed() >= OUTPUT_LOG_EVERY);
        self.last_result = Some(outcome.clone());
        if !(changed || due) || (output.stdout.is_empty() && output.stderr.is_empty()) {
            return;
        }
        self.last_logged = Some(std::time::Instant::now());
        tracing::info!(
            check,
            result = %outcome,
            stdout = %String::from_utf8_lossy(&output.stdout).trim_end(),
            stderr = %String::from_utf8_lossy(&output.stderr).trim_end(),
            "check output"
        );
    }
}

/// What an `exec` run printed (the first [`OUTPUT_LIMIT`] bytes of each).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    /// stdout.
    pub stdout: Vec<u8>,
    /// stderr.
    pub stderr: Vec<u8>,
}

/// Runs `command` once as `creds` (None: as ourselves), killing its process
/// group at `timeout`.
pub async fn exec_once(
    command: &[String],
    creds: Option<&Credentials>,
    timeout: Duration,
) -> (Outcome, Output) {
    let Some((program, args)) = command.split_first() else {
        return (
            Outcome::Failure(Failure::Spawn("empty command".into())),
            Output::default(),
        );
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout kills what it started too.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(c) = creds {
        let (uid, gid) = (c.uid, c.gid);
        let groups: Vec<libc::gid_t> = c.groups.clone();
        // SAFETY: the closure runs in the child between fork and exec and
        // only makes async-signal-safe syscalls on memory allocated before
        // the fork (`groups`).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return (
                Outcome::Failure(Failure::Spawn(e.to_string())),
                Output::default(),
            );
        }
    };
    // Kills the group if this future is dropped mid-run (shutdown) or the
    // run times out; disarmed when the command finished by itself.
    let mut group = GroupKill(child.id().and_then(|p| i32::try_from(p).ok()));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let finished = tokio::time::timeout(timeout, async {
        tokio::join!(drain(stdout), drain(stderr), child.wait())
    })
    .await;
    match finished {
        Ok((stdout, stderr, status)) => {
            group.0 = None;
            let output = Output { stdout, stderr };
            let outcome = match status {
                Ok(st) => match (st.code(), st.signal()) {
                    (Some(0), _) => Outcome::Success,
                    (Some(code), _) => Outcome::Failure(Failure::Exit(code)),
                    (None, Some(sig)) => Outcome::Failure(Failure::Signal(sig)),
                    (None, None) => Outcome::Failure(Failure::Exit(-1)),
                },
                Err(e) => Outcome::Failure(Failure::Spawn(e.to_string())),
            };
            (outcome, output)
        }
        Err(_elapsed) => {
            group.kill();
            // Reap it: no zombie left behind.
            let _ = child.wait().await;
            (Outcome::Failure(Failure::TimedOut), Output::default())
        }
    }
}

/// SIGKILLs a process group when dropped (or on [`GroupKill::kill`]),
/// unless disarmed (`None`).
struct GroupKill(Option<i32>);

impl GroupKill {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads `r` to the end, keeping the first [`OUTPUT_LIMIT`] bytes.
async fn drain(r: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut r) = r else {
        return kept;
    };
    let mut chunk = [0u8; 1024];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(kept.len()).min(n);
                kept.extend_from_slice(&chunk[..room]);
            }
        }
    }
}

/// One TCP connect to `address` within `timeout`.
pub async fn tcp_once(address: SocketAddr, timeout: Duration) -> Outcome {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    };
    let socket = match socket {
        Ok(s) => s,
        Err(e) => return Outcome::Failure(Failure::Connect(e.to_string())),
    };
    // Close with an RST: no TIME_WAIT per check on our side.
    let _ = socket.set_zero_linger();
    match tokio::time::timeout(timeout, socket.connect(address)).await {
        Ok(Ok(_stream)) => Outcome::Success,
        Ok(Err(e)) => Outcome::Failure(Failure::Connect(e.to_string())),
        Err(_) => Outcome::Failure(Failure::TimedOut),
    }
}

/// Finds the process and opens a pidfd on it.
fn find_process(target: &ProcessTarget) -> Option<PidFd> {
    match target {
        ProcessTarget::Name(name) => pids_named(name).into_iter().find_map(|pid| {
            let pidfd = PidFd::open(pid).ok()?;
            // The pid may have been reused between the scan and the open:
            // the pidfd pins it, so look at the name once more.
            (comm(pid).as_deref() == Some(name.as_str()) && !is_zombie(pid)).then_some(pidfd)
        }),
        ProcessTarget::Pidfile(path) => {
            let pid = read_pidfile(path)?;
            let pidfd = PidFd::open(pid).ok()?;
            (!is_zombie(pid)).then_some(pidfd)
        }
    }
}

/// The pids whose `/proc/PID/comm` is `name`, zombies left out.
pub fn pids_named(name: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| comm(pid).as_deref() == Some(name) && !is_zombie(pid))
        .collect()
}

fn comm(pid: i32) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(s.trim_end_matches('\n').to_owned())
}

/// Whether `/proc/PID/stat` says Z (or X); unknown counts as not a zombie.
fn is_zombie(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ...": comm may contain spaces and parens; the state
    // follows the last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .is_some_and(|c| c == 'Z' || c == 'X')
}

fn read_pidfile(path: &PathBuf) -> Option<i32> {
    let s = std::fs::read_to_string(path).ok()?;
    s.trim().parse::<i32>().ok().filter(|&p| p > 0)
}

/// Reads a tracked file like keepalived: missing or unreadable is 0; the
/// first 127 bytes parsed as `strtol(buf, NULL, 0)`; `None` (ignore) when the
/// number is outside `i32::MIN..=i32::MAX + 1`.
pub fn read_track_file(path: &Path) -> Option<i64> {
    use std::io::Read;
    let mut buf = [0u8; 127];
    let Ok(mut f) = std::fs::File::open(path) else {
        return Some(0);
    };
    let n = f.read(&mut buf).unwrap_or(0);
    parse_track_value(&buf[..n])
}

/// `strtol(s, NULL, 0)` with keepalived's range check (see
/// [`read_track_file`]).
pub fn parse_track_value(s: &[u8]) -> Option<i64> {
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let rest = &s[i..];
    let (radix, digits) = match rest {
        [b'0', b'x' | b'X', d, ..] if d.is_ascii_hexdigit() => (16, &rest[2..]),
        [b'0', ..] => (8, rest),
        _ => (10, rest),
    };
    let mut value: i64 = 0;
    for &b in digits {
        let Some(d) = char::from(b).to_digit(radix) else {
            break;
        };
        // Past the accepted range: strtol would set ERANGE or the check
        // below would reject it; either way keepalived ignores the value.
        value = value
            .checked_mul(i64::from(radix))?
            .checked_add(i64::from(d))?;
        if value > i64::from(i32::MAX) + 1 {
            return None;
        }
    }
    let value = if negative { -value } else { value };
    (i64::from(i32::MIN)..=i64::from(i32::MAX) + 1)
        .contains(&value)
        .then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_values_parse_like_strtol_base_0() {
        let p = |s: &str| parse_track_value(s.as_bytes());
        assert_eq!(p("5\n"), Some(5));
        assert_eq!(p("  -12 apples"), Some(-12));
        assert_eq!(p("+7"), Some(7));
        assert_eq!(p("0x1f"), Some(31));
        assert_eq!(p("010"), Some(8), "leading 0 is octal");
        assert_eq!(p("09"), Some(0), "octal stops at 9");
        assert_eq!(p(""), Some(0));
        assert_eq!(p("maintenance"), Some(0));
        assert_eq!(p("0x"), Some(0));
        assert_eq!(
            p("2147483648"),
            Some(2_147_483_648),
            "INT32_MAX + 1 is accepted"
        );
        assert_eq!(p("2147483649"), None);
        assert_eq!(p("-2147483649"), None);
        assert_eq!(p("99999999999999999999999"), None);
    }

    #[test]
    fn a_missing_track_file_reads_as_zero() {
        assert_eq!(
            read_track_file(Path::new("/nonexistent/vrrp-agent/w")),
            Some(0)
        );
    }
}
