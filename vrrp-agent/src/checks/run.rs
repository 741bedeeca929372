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
//!
//! Each runner kind is one file under `run/`; this one holds the tasks'
//! lifecycle ([`Runners`]) and what they send ([`CheckEvent`]).

use std::{sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::MissedTickBehavior,
};

use super::{
    spec::{CheckKind, CheckSpec},
    state::Outcome,
};
#[cfg(doc)]
use crate::cmdline::SAFE_PATH;
use crate::{dataplane, proto::Instant};

mod exec;
mod file;
mod process;
mod tcp;

pub use exec::{Output, exec_once};
pub use file::{parse_track_value, read_track_file};
pub use process::pids_named;
pub use tcp::tcp_once;

/// Bytes of stdout and of stderr kept from an `exec` run.
pub const OUTPUT_LIMIT: usize = 4096;

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
    events: mpsc::Sender<CheckEvent>,
    running: Vec<Running>,
}

struct Running {
    spec: CheckSpec,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    fn start(spec: &CheckSpec, events: &mpsc::Sender<CheckEvent>) -> Running {
        let (stop, stopped) = watch::channel(false);
        let runner = Runner {
            name: Arc::from(spec.name.as_str()),
            spec: spec.clone(),
            events: events.clone(),
            stopped,
        };
        Running {
            spec: spec.clone(),
            stop,
            task: tokio::spawn(runner.run()),
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl Runners {
    /// Starts one task per check, each sending its results to `events`.
    /// A task ends when `events` is closed or on [`Runners::shutdown`].
    /// Must be called inside a tokio runtime.
    pub fn spawn(specs: &[CheckSpec], events: mpsc::Sender<CheckEvent>) -> Runners {
        let running = specs.iter().map(|s| Running::start(s, &events)).collect();
        Runners { events, running }
    }

    /// Applies a reloaded config: a check whose spec did not change keeps
    /// running untouched (no new first result, no gap); a removed or changed
    /// one is stopped (and waited for) before a changed or new one starts.
    pub async fn reload(&mut self, specs: &[CheckSpec]) {
        let (keep, stop): (Vec<Running>, Vec<Running>) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|r| specs.contains(&r.spec));
        for r in stop {
            r.stop().await;
        }
        self.running = keep;
        for spec in specs {
            if !self.running.iter().any(|r| r.spec == *spec) {
                self.running.push(Running::start(spec, &self.events));
            }
        }
    }

    /// The names of the running checks.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.running.iter().map(|r| r.spec.name.as_str())
    }

    /// Stops every task (a running `exec` is killed with its group) and
    /// waits for them.
    pub async fn shutdown(self) {
        for r in &self.running {
            let _ = r.stop.send(true);
        }
        for r in self.running {
            let _ = r.task.await;
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
}
