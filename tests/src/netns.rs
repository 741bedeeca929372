//! RAII helpers for privileged tests: network namespaces, veth pairs, a
//! bridged LAN, running code inside a namespace, and child processes that
//! are killed when the test ends (also on panic).
//!
//! Every name carries the test process id and a counter, so tests running
//! at the same time (or leftovers of a crashed run) never collide. Only
//! documentation addresses are used by the callers (see SPEC).

use std::{
    fs::File,
    future::Future,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use nix::{
    sched::{CloneFlags, setns},
    sys::signal::{Signal, killpg},
    unistd::Pid,
};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call: `<prefix><pid>-<n>`.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}-{n}", std::process::id())
}

/// Runs a command, failing with its stderr if it exits non-zero.
pub fn run_cmd(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether the tests can create namespaces (root or CAP_SYS_ADMIN).
pub fn privileged() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A named network namespace (`ip netns add`), deleted on drop together
/// with every process still inside it.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `<prefix><pid>-<n>` and brings its loopback up.
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let name = unique_name(prefix);
        run_cmd("ip", &["netns", "add", &name])?;
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bind-mounted namespace file.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run_cmd("ip", &all)
    }

    /// Runs a command inside the namespace (`ip netns exec`) and waits.
    pub fn exec(&self, program: &str, args: &[&str]) -> anyhow::Result<String> {
        let mut all = vec!["netns", "exec", self.name.as_str(), program];
        all.extend_from_slice(args);
        run_cmd("ip", &all)
    }

    /// Sets a sysctl inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) -> anyhow::Result<()> {
        self.exec("sysctl", &["-q", "-w", &format!("{key}={value}")])
            .map(drop)
    }

    /// Adds an address (`cidr` like "192.0.2.1/24") to an interface.
    pub fn addr_add(&self, ifname: &str, cidr: &str) -> anyhow::Result<()> {
        let mut args = vec!["addr", "add", cidr, "dev", ifname];
        if cidr.contains(':') {
            // No duplicate address detection: the address is usable at once.
            args.push("nodad");
        }
        self.ip(&args).map(drop)
    }

    /// Starts a long-running command inside the namespace; it is killed
    /// (with its process group) when the guard drops. Output goes to
    /// `log`, if given.
    pub fn spawn(
        &self,
        program: &str,
        args: &[&str],
        log: Option<&Path>,
    ) -> anyhow::Result<ChildGuard> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program])
            .args(args)
            .stdin(Stdio::null());
        match log {
            Some(path) => {
                let f = File::create(path).with_context(|| format!("create {}", path.display()))?;
                cmd.stdout(f.try_clone()?).stderr(f);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {program} in {}", self.name))?;
        Ok(ChildGuard {
            child: Some(child),
            what: program.to_owned(),
        })
    }

    /// Runs `f` on a fresh thread that has entered this namespace
    /// (`setns` is per thread), and returns its result. A panic in `f`
    /// propagates to the caller.
    pub fn run<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let path = self.path();
        thread::scope(|s| {
            let h = s.spawn(move || {
                enter(&path).unwrap_or_else(|e| panic!("cannot enter {}: {e:#}", path.display()));
                f()
            });
            match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Like [`Netns::run`], with a current-thread tokio runtime built
    /// inside the namespace, so every socket the future opens lives there.
    pub fn run_async<F, Fut, R>(&self, f: F) -> R
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = R>,
        R: Send,
    {
        self.run(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
            rt.block_on(f())
        })
    }

    /// The MAC address of an interface in this namespace.
    pub fn mac(&self, ifname: &str) -> anyhow::Result<[u8; 6]> {
        let text = self.exec("cat", &[&format!("/sys/class/net/{ifname}/address")])?;
        parse_mac(text.trim())
    }

    /// The index of an interface in this namespace.
    pub fn ifindex(&self, ifname: &str) -> anyhow::Result<u32> {
        let text = self.exec("cat", &[&format!("/sys/class/net/{ifname}/ifindex")])?;
        text.trim()
            .parse()
            .with_context(|| format!("ifindex of {ifname}: {text:?}"))
    }

    /// Sends one raw Ethernet frame out of `ifname` in this namespace.
    pub fn send_frame(&self, ifname: &str, frame: &[u8]) -> anyhow::Result<()> {
        let ifname = ifname.to_owned();
        self.run(move || send_frame(&ifname, frame))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Processes keep a namespace alive after `ip netns del`: end them.
        if let Ok(pids) = run_cmd("ip", &["netns", "pids", &self.name]) {
            for pid in pids
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        if let Err(e) = run_cmd("ip", &["netns", "del", &self.name]) {
            eprintln!("warning: cannot delete netns {}: {e:#}", self.name);
        }
    }
}

/// Moves the calling thread into the namespace at `path`.
pub fn enter(path: &Path) -> anyhow::Result<()> {
    let f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    setns(f, CloneFlags::CLONE_NEWNET).context("setns")?;
    Ok(())
}

/// Parses "aa:bb:cc:dd:ee:ff".
pub fn parse_mac(s: &str) -> anyhow::Result<[u8; 6]> {
    let mut out = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        bail!("not a MAC address: {s:?}");
    }
    for (o, p) in out.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16).with_context(|| format!("not a MAC address: {s:?}"))?;
    }
    Ok(out)
}

/// Sends one raw frame through an AF_PACKET socket on `ifname` of the
/// calling thread's namespace.
pub fn send_frame(ifname: &str, frame: &[u8]) -> anyhow::Result<()> {
    let ifindex =
        nix::net::if_::if_nametoindex(ifname).with_context(|| format!("interface {ifname}"))?;
    // SAFETY: plain syscall; the result is checked before use.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error()).context("AF_PACKET socket");
    }
    // SAFETY: `raw` is a fresh descriptor owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = i32::try_from(ifindex)?;
    sll.sll_halen = 6;
    sll.sll_addr[..6].copy_from_slice(frame.get(..6).context("frame shorter than a MAC")?);
    // SAFETY: buffer and address are valid for the given lengths.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error()).context("sendto");
    }
    Ok(())
}

/// A veth pair between two namespaces (removed with them).
#[derive(Debug, Clone)]
pub struct Veth {
    /// Name of the end in the first namespace.
    pub a: String,
    /// Name of the end in the second namespace.
    pub b: String,
}

/// Creates a veth pair `a_name` (in `a`) <-> `b_name` (in `b`), both up.
pub fn veth_pair(a: &Netns, a_name: &str, b: &Netns, b_name: &str) -> anyhow::Result<Veth> {
    a.ip(&[
        "link",
        "add",
        a_name,
        "type",
        "veth",
        "peer",
        "name",
        b_name,
        "netns",
        b.name(),
    ])?;
    a.ip(&["link", "set", a_name, "up"])?;
    b.ip(&["link", "set", b_name, "up"])?;
    Ok(Veth {
        a: a_name.to_owned(),
        b: b_name.to_owned(),
    })
}

/// A LAN: a bridge `br0` in its own namespace (multicast snooping off, so
/// 224.0.0.18 and ff02::12 always flood) with `n` host namespaces, each
/// attached through its interface `eth0`.
#[derive(Debug)]
pub struct Lan {
    /// The host namespaces, in order. Dropped before the bridge.
    pub hosts: Vec<Netns>,
    /// The namespace holding the bridge.
    pub lan: Netns,
}

impl Lan {
    /// Builds the bridge and `n` hosts named `<prefix>h<i>...`.
    pub fn new(prefix: &str, n: usize) -> anyhow::Result<Self> {
        let lan = Netns::new(&format!("{prefix}lan"))?;
        lan.ip(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        lan.ip(&["link", "set", "br0", "up"])?;
        let mut hosts = Vec::with_capacity(n);
        for i in 0..n {
            let host = Netns::new(&format!("{prefix}h{i}-"))?;
            let port = format!("p{i}");
            veth_pair(&lan, &port, &host, "eth0")?;
            lan.ip(&["link", "set", &port, "master", "br0"])?;
            hosts.push(host);
        }
        Ok(Self { hosts, lan })
    }
}

/// A child process killed with its whole process group on drop: SIGTERM
/// first (keepalived cleans up its VIPs and children on it), SIGKILL if it
/// is still there after a grace period.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
    what: String,
}

impl ChildGuard {
    /// The process id.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process has exited (and reaps it).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// The exit code once the process has exited (see [`ChildGuard::exited`]).
    pub fn exit_code(&mut self) -> Option<i32> {
        self.child.as_mut()?.try_wait().ok()??.code()
    }

    /// Stops the process now (SIGTERM, then SIGKILL after `grace`).
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let Ok(pgid) = i32::try_from(child.id()) else {
            return;
        };
        let pgid = Pid::from_raw(pgid);
        let _ = killpg(pgid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        // The group may hold forked children even if the leader is gone.
        let _ = killpg(pgid, Signal::SIGKILL);
        if let Err(e) = child.wait() {
            eprintln!("warning: waiting for {}: {e}", self.what);
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `/tmp/<prefix><pid>-<n>`.
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(Self { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Starts keepalived (`--vrrp` only, foreground) inside `ns` with `config`
/// written to `dir`; its pid files and log live in `dir` too, so several
/// instances and a system keepalived never clash. Killed on drop.
pub fn keepalived(ns: &Netns, dir: &TempDir, config: &str) -> anyhow::Result<ChildGuard> {
    let name = unique_name("ka");
    let conf = dir.path().join(format!("{name}.conf"));
    std::fs::write(&conf, config).with_context(|| format!("write {}", conf.display()))?;
    let p = |suffix: &str| {
        dir.path()
            .join(format!("{name}.{suffix}"))
            .display()
            .to_string()
    };
    let (pid, vrrp_pid, chk_pid) = (p("pid"), p("vrrp.pid"), p("checkers.pid"));
    let log = dir.path().join(format!("{name}.log"));
    let conf = conf.display().to_string();
    ns.spawn(
        "keepalived",
        &[
            "--dont-fork",
            "--log-console",
            "--log-detail",
            "--vrrp",
            "--use-file",
            &conf,
            "--pid",
            &pid,
            "--vrrp_pid",
            &vrrp_pid,
            "--checkers_pid",
            &chk_pid,
        ],
        Some(&log),
    )
}

/// Whether keepalived is installed.
pub fn have_keepalived() -> bool {
    Command::new("keepalived")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}
