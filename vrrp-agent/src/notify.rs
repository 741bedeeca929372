//! Notify commands: an argv built by the agent ([`crate::config::Notify::commands`]):
//! `notify_master` and friends as written, the generic `notify` with
//! `INSTANCE <name> <STATE> <priority>` appended (keepalived's convention,
//! so existing scripts keep working), a group's with `GROUP <name> <STATE> 0`.
//!
//! [`Notifier::notify`] never blocks: it queues the call on the instance's own
//! task, which runs the scripts one after another in the order of the state
//! changes (a slow `MASTER` script is never overtaken by the following
//! `BACKUP` one). A script still running after the timeout (`global.notify_timeout`,
//! default 30 s) is killed with SIGKILL together with everything it started
//! (it runs in its own process group), and the queue moves on.

use std::{
    collections::HashMap,
    ffi::OsString,
    process::{ExitStatus, Stdio},
    sync::Mutex,
    time::Duration,
};

use tokio::{sync::mpsc, task::JoinHandle};

/// One queued script run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// Program and arguments (never empty).
    pub argv: Vec<OsString>,
    /// The queue: the instance (or `group <name>`) it runs for.
    pub instance: String,
    /// New state (`MASTER`, `BACKUP`, `FAULT`, `STOP`, ...), for the log.
    pub state: String,
}

impl Job {
    fn script(&self) -> std::path::Display<'_> {
        std::path::Path::new(self.argv.first().map_or("".as_ref(), |a| a.as_os_str())).display()
    }
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

    /// Queues `argv` on the queue of `instance` (runs after what is queued
    /// there); returns at once. Must be called inside a tokio runtime.
    pub fn notify(&self, instance: &str, state: &str, argv: Vec<OsString>) {
        if argv.is_empty() {
            return;
        }
        let job = Job {
            argv,
            instance: instance.to_owned(),
            state: state.to_owned(),
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
                instance = %job.instance, state = %job.state, script = %job.script(),
                status = %st, "notify script failed"
            ),
            Outcome::TimedOut => tracing::warn!(
                instance = %job.instance, state = %job.state, script = %job.script(),
                timeout_ms = timeout.as_millis() as u64, "notify script timed out; killed"
            ),
            Outcome::SpawnFailed(e) => tracing::warn!(
                instance = %job.instance, state = %job.state, script = %job.script(),
                error = %e, "cannot run notify script"
            ),
        }
    }
}

/// Runs one script to completion or until `timeout`, then kills its process group.
pub async fn run_script(job: &Job, timeout: Duration) -> Outcome {
    let Some((program, args)) = job.argv.split_first() else {
        return Outcome::SpawnFailed(std::io::ErrorKind::InvalidInput.into());
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", crate::cmdline::SAFE_PATH)
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
    use std::{
        os::unix::fs::PermissionsExt,
        path::{Path, PathBuf},
    };

    use super::*;

    fn argv(script: &Path, instance: &str, state: &str, priority: u8) -> Vec<OsString> {
        let mut v = vec![script.as_os_str().to_owned()];
        v.extend([
            "INSTANCE".into(),
            instance.into(),
            state.into(),
            priority.to_string().into(),
        ]);
        v
    }

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
        n.notify("VI_1", "MASTER", argv(&s, "VI_1", "MASTER", 100));
        n.notify("VI_1", "BACKUP", argv(&s, "VI_1", "BACKUP", 100));
        n.notify("VI_1", "FAULT", argv(&s, "VI_1", "FAULT", 100));
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
        n.notify("VI_1", "MASTER", argv(&s, "VI_1", "MASTER", 100));
        n.notify("VI_1", "BACKUP", argv(&s, "VI_1", "BACKUP", 90));
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
            argv: argv(Path::new("/nonexistent/notify.sh"), "VI_1", "MASTER", 1),
            instance: "VI_1".into(),
            state: "MASTER".into(),
        };
        assert!(matches!(
            run_script(&job, Duration::from_secs(1)).await,
            Outcome::SpawnFailed(_)
        ));
        let d = TempDir::new("fail");
        let s = script(&d.0, "exit 3");
        let job = Job {
            argv: vec![s.into()],
            ..job
        };
        match run_script(&job, Duration::from_secs(10)).await {
            Outcome::Exited(st) => assert_eq!(st.code(), Some(3)),
            other => panic!("{other:?}"),
        }
    }
}
