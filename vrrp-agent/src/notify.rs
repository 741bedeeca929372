//! Notify scripts: `notify INSTANCE <name> <STATE> <priority>`, keepalived's
//! generic `notify` argument convention, so existing scripts keep working.
//!
//! [`Notifier::notify`] never blocks: it queues the call on the instance's own
//! task, which runs the scripts one after another in the order of the state
//! changes (a slow `MASTER` script is never overtaken by the following
//! `BACKUP` one). A script still running after the timeout (`global.notify_timeout`,
//! default 30 s) is killed with SIGKILL together with everything it started
//! (it runs in its own process group), and the queue moves on.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::Mutex,
    time::Duration,
};

use tokio::{sync::mpsc, task::JoinHandle};

/// One queued script run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// Script path.
    pub script: PathBuf,
    /// Instance name.
    pub instance: String,
    /// New state (`MASTER`, `BACKUP`, `FAULT`, `STOP`, ...).
    pub state: String,
    /// Priority passed as the fourth argument.
    pub priority: u8,
}

/// How a script run ended.
#[derive(Debug)]
pub enum Outcome {
    /// It exited (successfully or not).
    Exited(ExitStatus),
    /// It was killed after the timeout.
    TimedOut,
    /// It could not be started.
    SpawnFailed(std::io::Error),
}

struct Queue {
    tx: mpsc::UnboundedSender<Job>,
    task: JoinHandle<()>,
}

/// Runs notify scripts asynchronously, in order per instance.
pub struct Notifier {
    timeout: Duration,
    queues: Mutex<HashMap<String, Queue>>,
}

impl Notifier {
    /// A notifier that kills scripts running longer than `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Notifier {
            timeout,
            queues: Mutex::new(HashMap::new()),
        }
    }

    /// Queues `script INSTANCE <instance> <state> <priority>`; returns at once.
    /// Must be called inside a tokio runtime.
    pub fn notify(&self, script: &Path, instance: &str, state: &str, priority: u8) {
        let job = Job {
            script: script.to_owned(),
            instance: instance.to_owned(),
            state: state.to_owned(),
            priority,
        };
        let Ok(mut queues) = self.queues.lock() else {
            tracing::error!(instance, "notify queue lock poisoned; script not run");
            return;
        };
        let timeout = self.timeout;
        let queue = queues.entry(instance.to_owned()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            Queue {
                tx,
                task: tokio::spawn(run_queue(rx, timeout)),
            }
        });
        if let Err(mpsc::error::SendError(job)) = queue.tx.send(job) {
            tracing::error!(instance = %job.instance, "notify queue closed; script not run");
        }
    }

    /// Waits until every queued script has finished (or was killed). Used on
    /// graceful stop so `STOP` notifications run before the process exits.
    pub async fn shutdown(self) {
        let queues = match self.queues.into_inner() {
            Ok(q) => q,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut tasks = Vec::new();
        for (_, q) in queues {
            drop(q.tx);
            tasks.push(q.task);
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

async fn run_queue(mut rx: mpsc::UnboundedReceiver<Job>, timeout: Duration) {
    while let Some(job) = rx.recv().await {
        match run_script(&job, timeout).await {
            Outcome::Exited(st) if st.success() => {
                tracing::debug!(instance = %job.instance, state = %job.state, "notify script done");
            }
            Outcome::Exited(st) => tracing::warn!(
                instance = %job.instance, state = %job.state, script = %job.script.display(),
                status = %st, "notify script failed"
            ),
            Outcome::TimedOut => tracing::warn!(
                instance = %job.instance, state = %job.state, script = %job.script.display(),
                timeout_ms = timeout.as_millis() as u64, "notify script timed out; killed"
            ),
            Outcome::SpawnFailed(e) => tracing::warn!(
                instance = %job.instance, state = %job.state, script = %job.script.display(),
                error = %e, "cannot run notify script"
            ),
        }
    }
}

/// Runs one script to completion or until `timeout`, then kills its process group.
pub async fn run_script(job: &Job, timeout: Duration) -> Outcome {
    let mut cmd = tokio::process::Command::new(&job.script);
    cmd.arg("INSTANCE")
        .arg(&job.instance)
        .arg(&job.state)
        .arg(job.priority.to_string())
        .stdin(Stdio::null())
        // Its own process group, so a timeout kills what the script started too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::SpawnFailed(e),
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(st)) => Outcome::Exited(st),
        Ok(Err(e)) => Outcome::SpawnFailed(e),
        Err(_) => {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill().await;
            Outcome::TimedOut
        }
    }
}
