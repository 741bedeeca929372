//! The `process` runner: found in `/proc` or by its pidfile, then watched
//! through a pidfd (see the [module doc](super)).

use std::path::PathBuf;

use super::Runner;
use crate::checks::{
    spec::ProcessTarget,
    state::{Failure, Outcome},
    sys::PidFd,
};

impl Runner {
    pub(super) async fn run_process(&self, target: &ProcessTarget) {
        let mut ticker = self.ticker();
        // The first look is now, not at the ticker's immediate first tick.
        ticker.reset();
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
