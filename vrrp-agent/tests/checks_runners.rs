//! The check runners against real processes, sockets and files, without
//! root (the `user` test needs root and says so when skipped).
//!
//! Every wait has a generous guard so a broken runner fails the test
//! instead of hanging it; no assertion is about how fast something was seen.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::{
    io::Write,
    net::TcpListener,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use tokio::sync::mpsc;
use vrrp_agent::checks::{
    CheckEvent, CheckKind, CheckSpec, Outcome, ProcessTarget, Runners,
    run::{OUTPUT_LIMIT, exec_once},
    spec::resolve_user,
    state::Failure,
};

const GUARD: Duration = Duration::from_secs(20);

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("vrrp-checks-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills and reaps a spawned process on drop.
struct Spawned(std::process::Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spec(kind: CheckKind, interval_ms: u64) -> CheckSpec {
    let mut s = CheckSpec::new("t", kind);
    s.interval = Duration::from_millis(interval_ms);
    s.timeout = s.interval;
    s
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// Waits for the next event whose outcome satisfies `want`.
async fn until(rx: &mut mpsc::Receiver<CheckEvent>, want: impl Fn(&Outcome) -> bool) -> CheckEvent {
    tokio::time::timeout(GUARD, async {
        loop {
            let ev = rx.recv().await.expect("runner ended");
            if want(&ev.outcome) {
                return ev;
            }
        }
    })
    .await
    .expect("no such event within the guard")
}

fn is_failure(o: &Outcome) -> bool {
    matches!(o, Outcome::Failure(_))
}

fn running(pid: u32) -> bool {
    // Gone, or a zombie someone else must reap, is "not running".
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn read_pid(path: &Path) -> u32 {
    for _ in 0..2000 {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no pid in {}", path.display());
}

#[tokio::test]
async fn tcp_follows_a_listener_opened_and_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let runners = Runners::spawn(&[spec(CheckKind::Tcp { address }, 20)], tx);
    let ev = until(&mut rx, |o| *o == Outcome::Success).await;
    assert_eq!(&*ev.check, "t");
    drop(listener);
    let ev = until(&mut rx, is_failure).await;
    assert!(
        matches!(ev.outcome, Outcome::Failure(Failure::Connect(_))),
        "{ev:?}"
    );
    // Open again on the same port: up again.
    let _listener = TcpListener::bind(address).unwrap();
    until(&mut rx, |o| *o == Outcome::Success).await;
    runners.shutdown().await;
}

#[tokio::test]
async fn exec_true_false_and_exit_codes() {
    let t = Duration::from_secs(5);
    assert_eq!(
        exec_once(&argv(&["true"]), None, t).await.0,
        Outcome::Success
    );
    assert_eq!(
        exec_once(&argv(&["false"]), None, t).await.0,
        Outcome::Failure(Failure::Exit(1))
    );
    assert_eq!(
        exec_once(&argv(&["sh", "-c", "exit 7"]), None, t).await.0,
        Outcome::Failure(Failure::Exit(7))
    );
    assert!(matches!(
        exec_once(&argv(&["/nonexistent/check"]), None, t).await.0,
        Outcome::Failure(Failure::Spawn(_))
    ));
}

#[tokio::test]
async fn exec_hung_is_killed_with_its_group_counted_and_reaped() {
    let dir = TempDir::new("hung");
    let (parent, child) = (dir.path("parent"), dir.path("child"));
    let script = format!(
        "sleep 1000 & echo $! > {}; echo $$ > {}; wait",
        child.display(),
        parent.display()
    );
    let (outcome, _) = exec_once(
        &argv(&["sh", "-c", &script]),
        None,
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(outcome, Outcome::Failure(Failure::TimedOut));
    let (parent_pid, child_pid) = (read_pid(&parent), read_pid(&child));
    // Our child was reaped: not even a zombie of ours is left.
    assert!(
        !Path::new(&format!("/proc/{parent_pid}")).exists(),
        "the timed-out check is still in /proc"
    );
    // What it started was killed with it (its process group).
    for _ in 0..2000 {
        if !running(child_pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        !running(child_pid),
        "the check's own child survived the timeout"
    );
}

#[tokio::test]
async fn exec_timeout_counts_as_a_failure_through_the_runner() {
    let mut s = spec(
        CheckKind::Exec {
            command: argv(&["sleep", "1000"]),
            user: None,
        },
        200,
    );
    s.timeout = Duration::from_millis(100);
    let (tx, mut rx) = mpsc::channel(16);
    let runners = Runners::spawn(&[s], tx);
    let ev = until(&mut rx, |_| true).await;
    assert_eq!(ev.outcome, Outcome::Failure(Failure::TimedOut));
    runners.shutdown().await;
}

#[tokio::test]
async fn exec_output_is_bounded_and_environment_cleared() {
    let t = Duration::from_secs(10);
    let (outcome, out) = exec_once(
        &argv(&["sh", "-c", "head -c 100000 /dev/zero; echo oops >&2"]),
        None,
        t,
    )
    .await;
    assert_eq!(
        outcome,
        Outcome::Success,
        "a chatty check is not blocked on a full pipe"
    );
    assert_eq!(out.stdout.len(), OUTPUT_LIMIT);
    assert_eq!(out.stderr, b"oops\n");

    // cargo sets CARGO_PKG_NAME for test binaries: it must not leak through.
    assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
    let (_, out) = exec_once(&argv(&["env"]), None, t).await;
    let env = String::from_utf8_lossy(&out.stdout);
    assert!(!env.contains("CARGO_PKG_NAME"), "{env}");
    assert!(env.contains("PATH=/usr/local/sbin:"), "{env}");
}

#[tokio::test]
async fn exec_runs_as_the_configured_user() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root to change user");
        return;
    }
    let creds = resolve_user("nobody").expect("user nobody");
    let (outcome, out) =
        exec_once(&argv(&["id", "-u"]), Some(&creds), Duration::from_secs(5)).await;
    assert_eq!(outcome, Outcome::Success);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        creds.uid.to_string()
    );
    let (_, out) = exec_once(&argv(&["id", "-G"]), Some(&creds), Duration::from_secs(5)).await;
    let groups = String::from_utf8_lossy(&out.stdout);
    assert!(
        !groups.split_whitespace().any(|g| g == "0"),
        "root group kept: {groups}"
    );
}

#[tokio::test]
async fn process_by_pidfile_sees_a_kill() {
    let dir = TempDir::new("pidfile");
    let sleeper = Spawned(Command::new("sleep").arg("1000").spawn().unwrap());
    let pidfile = dir.path("sleep.pid");
    std::fs::write(&pidfile, format!("{}\n", sleeper.0.id())).unwrap();
    // A long interval: the failure must come from the pidfd, not a poll.
    let s = spec(CheckKind::Process(ProcessTarget::Pidfile(pidfile)), 60_000);
    let (tx, mut rx) = mpsc::channel(16);
    let runners = Runners::spawn(&[s], tx);
    until(&mut rx, |o| *o == Outcome::Success).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sleeper.0.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Not reaped yet: a zombie is not a running process.
    let ev = until(&mut rx, is_failure).await;
    assert_eq!(ev.outcome, Outcome::Failure(Failure::NoProcess));
    runners.shutdown().await;
}

#[tokio::test]
async fn process_by_name_sees_a_kill_and_a_restart() {
    let dir = TempDir::new("byname");
    // A copy of sleep under a name no other process has.
    let name = format!("vsl{}", std::process::id() % 1_000_000);
    let bin = dir.path(&name);
    std::fs::copy("/bin/sleep", &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let first = Spawned(Command::new(&bin).arg("1000").spawn().unwrap());
    let s = spec(CheckKind::Process(ProcessTarget::Name(name.clone())), 50);
    let (tx, mut rx) = mpsc::channel(64);
    let runners = Runners::spawn(&[s], tx);
    until(&mut rx, |o| *o == Outcome::Success).await;
    drop(first);
    until(&mut rx, is_failure).await;
    // Restarted: found again by the scan.
    let _second = Spawned(Command::new(&bin).arg("1000").spawn().unwrap());
    until(&mut rx, |o| *o == Outcome::Success).await;
    runners.shutdown().await;
}

#[tokio::test]
async fn file_is_reread_when_rewritten() {
    let dir = TempDir::new("file");
    let path = dir.path("weight");
    std::fs::write(&path, "0\n").unwrap();
    // A long interval: the re-reads must come from inotify.
    let s = spec(CheckKind::File { path: path.clone() }, 60_000);
    let (tx, mut rx) = mpsc::channel(16);
    let runners = Runners::spawn(&[s], tx);
    until(&mut rx, |o| *o == Outcome::Value(0)).await;
    std::fs::write(&path, "5\n").unwrap();
    until(&mut rx, |o| *o == Outcome::Value(5)).await;
    // Replaced by rename, the way config management writes files.
    let tmp = dir.path("weight.tmp");
    let mut f = std::fs::File::create(&tmp).unwrap();
    f.write_all(b"-20").unwrap();
    drop(f);
    std::fs::rename(&tmp, &path).unwrap();
    until(&mut rx, |o| *o == Outcome::Value(-20)).await;
    std::fs::remove_file(&path).unwrap();
    until(&mut rx, |o| *o == Outcome::Value(0)).await;
    runners.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_a_running_exec() {
    let mut s = spec(
        CheckKind::Exec {
            command: argv(&["sleep", "1000"]),
            user: None,
        },
        60_000,
    );
    s.timeout = Duration::from_secs(60);
    let (tx, _rx) = mpsc::channel(16);
    let runners = Runners::spawn(&[s], tx);
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(GUARD, runners.shutdown())
        .await
        .expect("shutdown waited for the check to finish");
}

#[tokio::test]
async fn reload_restarts_only_changed_checks() {
    let dir = TempDir::new("reload");
    let path = dir.path("w");
    std::fs::write(&path, "1").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = spec(
        CheckKind::Tcp {
            address: listener.local_addr().unwrap(),
        },
        20,
    );
    let mut keep = spec(CheckKind::File { path: path.clone() }, 60_000);
    keep.name = "keep".into();
    let (tx, mut rx) = mpsc::channel(64);
    let mut runners = Runners::spawn(&[tcp, keep.clone()], tx);
    let (mut tcp_up, mut file_read) = (false, false);
    while !(tcp_up && file_read) {
        let ev = until(&mut rx, |_| true).await;
        tcp_up |= ev.outcome == Outcome::Success;
        file_read |= ev.outcome == Outcome::Value(1);
    }

    // "t" changes kind; "keep" is unchanged and must not be restarted (a
    // restarted file check would report its value again at once).
    let mut changed = spec(CheckKind::File { path: path.clone() }, 60_000);
    changed.name = "t".into();
    runners.reload(&[changed, keep]).await;
    let ev = until(&mut rx, |o| matches!(o, Outcome::Value(_))).await;
    assert_eq!(
        &*ev.check, "t",
        "the changed check restarted as a file check"
    );
    let mut names: Vec<&str> = runners.names().collect();
    names.sort();
    assert_eq!(names, ["keep", "t"]);
    std::fs::write(&path, "2").unwrap();
    // Both see the rewrite; the first Value(2) from either proves they run,
    // and no stale tcp result may arrive after the reload.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = until(&mut rx, |_| true).await;
        assert!(
            matches!(ev.outcome, Outcome::Value(_)),
            "stale event {ev:?}"
        );
        assert!(
            !(&*ev.check == "keep" && ev.outcome == Outcome::Value(1)),
            "the unchanged check was restarted"
        );
        if ev.outcome == Outcome::Value(2) {
            seen.push(ev.check.to_string());
        }
    }
    seen.sort();
    assert_eq!(seen, ["keep", "t"]);
    runners.shutdown().await;
}
