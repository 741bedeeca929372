//! The `exec` runner: a command run as a user in its own process group,
//! killed with its group at the timeout, its output kept and logged sparingly
//! (see the [module doc](super)).

use std::{io, os::unix::process::ExitStatusExt, process::Stdio, time::Duration};

use tokio::io::{AsyncRead, AsyncReadExt};

use super::{OUTPUT_LIMIT, Runner};
use crate::checks::{
    spec::{Credentials, resolve_user},
    state::{Failure, Outcome},
};
use crate::cmdline::SAFE_PATH;

/// The shortest time between two logs of a check's output.
const OUTPUT_LOG_EVERY: Duration = Duration::from_secs(60);

impl Runner {
    pub(super) async fn run_exec(&self, command: &[String], user: Option<&str>) {
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
}

/// Logs a check's output when its result changes, else at most once a
/// minute.
#[derive(Default)]
struct OutputLog {
    last_result: Option<Outcome>,
    last_logged: Option<std::time::Instant>,
}

impl OutputLog {
    /// Whether to log this run's output at `now`: a new result, or a minute
    /// since the last log; never when there is nothing to show.
    fn should_log(&mut self, outcome: &Outcome, output: &Output, now: std::time::Instant) -> bool {
        let changed = self.last_result.as_ref() != Some(outcome);
        let due = self
            .last_logged
            .is_none_or(|t| now.saturating_duration_since(t) >= OUTPUT_LOG_EVERY);
        self.last_result = Some(outcome.clone());
        if !(changed || due) || (output.stdout.is_empty() && output.stderr.is_empty()) {
            return false;
        }
        self.last_logged = Some(now);
        true
    }

    fn maybe_log(&mut self, check: &str, outcome: &Outcome, output: &Output) {
        if !self.should_log(outcome, output, std::time::Instant::now()) {
            return;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_logged_on_change_or_once_a_minute() {
        let mut log = OutputLog::default();
        let out = Output {
            stdout: b"PONG".to_vec(),
            stderr: Vec::new(),
        };
        let t0 = std::time::Instant::now();
        let ok = Outcome::Success;
        let ko = Outcome::Failure(Failure::Exit(1));
        assert!(log.should_log(&ok, &out, t0), "first run");
        assert!(
            !log.should_log(&ok, &out, t0 + Duration::from_secs(1)),
            "same result"
        );
        assert!(
            log.should_log(&ko, &out, t0 + Duration::from_secs(2)),
            "new result"
        );
        assert!(!log.should_log(&ko, &out, t0 + Duration::from_secs(3)));
        assert!(
            log.should_log(&ko, &out, t0 + Duration::from_secs(62)),
            "a minute later"
        );
        assert!(
            !log.should_log(&ok, &Output::default(), t0 + Duration::from_secs(63)),
            "nothing to show"
        );
    }
}
