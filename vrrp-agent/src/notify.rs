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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!("vrrp-notify-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn script(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("notify.sh");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn log(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn runs_in_order_per_instance_without_blocking() {
        let d = TempDir::new("order");
        let dir = d.0.display();
        // The first call blocks until the test creates `go`: notify() must
        // return anyway, and the later calls must wait for it.
        let s = script(
            &d.0,
            &format!(
                "if [ \"$3\" = MASTER ]; then while [ ! -e {dir}/go ]; do sleep 0.01; done; fi\n\
                 echo \"$1 $2 $3 $4\" >> {dir}/log"
            ),
        );
        let n = Notifier::new(Duration::from_secs(60));
        n.notify(&s, "VI_1", "MASTER", 100);
        n.notify(&s, "VI_1", "BACKUP", 100);
        n.notify(&s, "VI_1", "FAULT", 100);
        // Still blocked: nothing logged although all three calls returned.
        assert!(log(&d.0).is_empty());
        std::fs::write(d.0.join("go"), "").unwrap();
        n.shutdown().await;
        assert_eq!(
            log(&d.0),
            [
                "INSTANCE VI_1 MASTER 100",
                "INSTANCE VI_1 BACKUP 100",
                "INSTANCE VI_1 FAULT 100"
            ]
        );
    }

    #[tokio::test]
    async fn hanging_script_is_killed_with_its_children() {
        let d = TempDir::new("hang");
        let dir = d.0.display();
        let s = script(
            &d.0,
            &format!(
                "echo \"start $3\" >> {dir}/log\n\
                 if [ \"$3\" = MASTER ]; then sleep 1000 & echo $! > {dir}/child; wait; fi\n\
                 echo \"end $3\" >> {dir}/log"
            ),
        );
        let n = Notifier::new(Duration::from_secs(2));
        n.notify(&s, "VI_1", "MASTER", 100);
        n.notify(&s, "VI_1", "BACKUP", 90);
        n.shutdown().await;
        // The hanging run never finished; the next one ran after it.
        assert_eq!(log(&d.0), ["start MASTER", "start BACKUP", "end BACKUP"]);
        // The script's own child was killed too (process group kill).
        let pid = std::fs::read_to_string(d.0.join("child"))
            .unwrap()
            .trim()
            .to_owned();
        let mut gone = false;
        for _ in 0..500 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Gone, or a zombie waiting for its new parent to reap it.
            if stat.is_empty() || stat.split(' ').nth(2) == Some("Z") {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(gone, "child {pid} of the killed script still alive");
    }

    #[tokio::test]
    async fn missing_script_is_reported() {
        let job = Job {
            script: "/nonexistent/notify.sh".into(),
            instance: "VI_1".into(),
            state: "MASTER".into(),
            priority: 1,
        };
        assert!(matches!(
            run_script(&job, Duration::from_secs(1)).await,
            Outcome::SpawnFailed(_)
        ));
        let d = TempDir::new("fail");
        let s = script(&d.0, "exit 3");
        let job = Job { script: s, ..job };
        match run_script(&job, Duration::from_secs(10)).await {
            Outcome::Exited(st) => assert_eq!(st.code(), Some(3)),
            other => panic!("{other:?}"),
        }
    }
}
