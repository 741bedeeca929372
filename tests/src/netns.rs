//! The network-namespace lab library of the project, used by the privileged
//! tests and by `xtask` (demo, bench): network namespaces, veth pairs, a
//! bridged LAN, running code inside a namespace, and child processes. Every
//! resource is an RAII guard, removed when it drops (also on panic): a
//! namespace with every process still in it, a child with its process group.
//!
//! Every name carries the creating process id and a counter, so runs at the
//! same time never collide; [`reap_stale`] removes the labs of a run that
//! died without unwinding (xtask calls it, its tags are in the names). Only
//! documentation addresses are used by the callers (see SPEC).
//!
//! Without the `agent` feature (xtask's build) nothing here needs vrrp-agent
//! or the eBPF toolchain.

#[cfg(feature = "agent")]
use std::future::Future;
use std::{
    fs::File,
    io,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::process::CommandExt as _,
    },
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
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

/// A name for a lab of `tag` that [`reap_stale`] recognises once this
/// process is gone: `<tag><pid>x<n>`.
pub fn lab_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}x{n}", std::process::id())
}

/// Runs a command, failing with its stderr if it exits non-zero.
pub fn run_cmd(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = run_output(Command::new(program).args(args))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` to completion (stdin closed), failing with its stderr if it
/// exits non-zero.
pub fn run_output(cmd: &mut Command) -> anyhow::Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
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
        Self::create(unique_name(prefix))
    }

    /// Creates the namespace `name` as given (the caller made it unique)
    /// and brings its loopback up.
    pub fn create(name: String) -> anyhow::Result<Self> {
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

    /// A command that runs `program` inside the namespace (`ip netns
    /// exec`, which execs it: the child's pid is the program's own).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs a command inside the namespace and waits; fails on a non-zero exit.
    pub fn exec(&self, program: &str, args: &[&str]) -> anyhow::Result<String> {
        let out = run_output(self.command(program).args(args))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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
        let (stdout, stderr) = match log {
            Some(path) => {
                let f = File::create(path).with_context(|| format!("create {}", path.display()))?;
                (Stdio::from(f.try_clone()?), Stdio::from(f))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        self.spawn_with(program, args, stdout, stderr)
    }

    /// [`Netns::spawn`] with the output streams given: the command runs in
    /// a process group of its own (so that daemons that fork, like
    /// keepalived, are signalled and killed whole).
    pub fn spawn_with(
        &self,
        program: &str,
        args: &[&str],
        stdout: Stdio,
        stderr: Stdio,
    ) -> anyhow::Result<ChildGuard> {
        let child = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
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
    #[cfg(feature = "agent")]
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
        parse_mac(&self.mac_string(ifname)?)
    }

    /// The MAC address of an interface, as `ip` prints it.
    pub fn mac_string(&self, ifname: &str) -> anyhow::Result<String> {
        let text = self.exec("cat", &[&format!("/sys/class/net/{ifname}/address")])?;
        Ok(text.trim().to_owned())
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
        if let Err(e) = delete_netns(&self.name) {
            eprintln!("warning: cannot delete netns {}: {e:#}", self.name);
        }
    }
}

/// Kills every process in namespace `name` (they would keep it alive after
/// `ip netns del`), then deletes it.
fn delete_netns(name: &str) -> anyhow::Result<()> {
    if let Ok(pids) = run_cmd("ip", &["netns", "pids", name]) {
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    run_cmd("ip", &["netns", "del", name]).map(drop)
}

/// Removes labs left behind by a run that died without unwinding (Ctrl-C,
/// SIGKILL): namespaces named by [`lab_name`] with one of `tags`
/// (`<tag><pid>x<n>-…`) whose pid is gone, and every process still in them.
pub fn reap_stale(tags: &[&str]) {
    let Ok(list) = run_cmd("ip", &["netns", "list"]) else {
        return;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = tags.iter().find_map(|t| ns.strip_prefix(t)) else {
            continue;
        };
        let Some((pid, tail)) = rest.split_once('x') else {
            continue;
        };
        let well_formed = digits(pid) && tail.split_once('-').is_some_and(|(n, _)| digits(n));
        if !well_formed || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        eprintln!("lab: removing {ns}, left behind by a previous run");
        let _ = delete_netns(ns);
    }
}

/// Moves the calling thread into the namespace named `name` (created by `ip
/// netns`). Only this thread changes namespace; sockets it opens afterwards
/// stay there whichever thread uses them.
pub fn enter_named(name: &str) -> anyhow::Result<()> {
    enter(&Path::new("/run/netns").join(name))
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
    add_veth(a, a_name, b, b_name)?;
    a.ip(&["link", "set", a_name, "up"])?;
    b.ip(&["link", "set", b_name, "up"])?;
    Ok(Veth {
        a: a_name.to_owned(),
        b: b_name.to_owned(),
    })
}

/// Creates a veth pair `a_name` (in `a`) <-> `b_name` (in `b`), both down.
fn add_veth(a: &Netns, a_name: &str, b: &Netns, b_name: &str) -> anyhow::Result<()> {
    let peer = ["type", "veth", "peer", "name", b_name, "netns", b.name()];
    a.ip(&[&["link", "add", a_name][..], &peer].concat())
        .map(drop)
}

/// A LAN: a bridge `br0` in its own namespace (multicast snooping off, so
/// 224.0.0.18 and ff02::12 always flood) with host namespaces, each
/// attached through its interface `eth0` to the bridge port `p<i>`.
#[derive(Debug)]
pub struct Lan {
    /// The host namespaces, in order. Dropped before the bridge.
    pub hosts: Vec<Netns>,
    /// The namespace holding the bridge.
    pub lan: Netns,
}

impl Lan {
    /// Builds the bridge and `n` hosts named `<prefix>h<i>...`, `eth0` up.
    pub fn new(prefix: &str, n: usize) -> anyhow::Result<Self> {
        let mut lan = Self::bridge(Netns::new(&format!("{prefix}lan"))?)?;
        for i in 0..n {
            let host = lan.attach(Netns::new(&format!("{prefix}h{i}-"))?)?;
            host.ip(&["link", "set", "eth0", "up"])?;
        }
        Ok(lan)
    }

    /// Creates the bridge in `lan`, with no hosts yet.
    pub fn bridge(lan: Netns) -> anyhow::Result<Self> {
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
        Ok(Self {
            hosts: Vec::new(),
            lan,
        })
    }

    /// Plugs `host` in: its new `eth0` (left down, to be configured first)
    /// is the veth peer of bridge port [`Lan::port`]`(i)`, which is up.
    pub fn attach(&mut self, host: Netns) -> anyhow::Result<&Netns> {
        let port = Self::port(self.hosts.len());
        add_veth(&self.lan, &port, &host, "eth0")?;
        self.lan.ip(&["link", "set", &port, "master", "br0"])?;
        self.lan.ip(&["link", "set", &port, "up"])?;
        self.hosts.push(host);
        Ok(&self.hosts[self.hosts.len() - 1])
    }

    /// The bridge port of host `i`.
    pub fn port(i: usize) -> String {
        format!("p{i}")
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

    /// The process id, which is also its process group's.
    pub fn pid(&self) -> anyhow::Result<Pid> {
        let id = self
            .id()
            .with_context(|| format!("{} already reaped", self.what))?;
        Ok(Pid::from_raw(i32::try_from(id)?))
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        nix::sys::signal::kill(self.pid()?, signal)
            .with_context(|| format!("kill({}, {signal})", self.what))
    }

    /// Sends `signal` to the whole process group (the process and what it forked).
    pub fn signal_group(&self, signal: Signal) -> anyhow::Result<()> {
        killpg(self.pid()?, signal).with_context(|| format!("killpg({}, {signal})", self.what))
    }

    /// Whether the process has exited (and reaps it).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_)) | Err(_)))
    }

    /// The exit code once the process has exited (see [`ChildGuard::exited`]).
    pub fn exit_code(&mut self) -> Option<i32> {
        self.child.as_mut()?.try_wait().ok()??.code()
    }

    /// Waits for the process to exit; its exit code (`None` if killed by a signal).
    pub fn wait(&mut self) -> anyhow::Result<Option<i32>> {
        let child = self.child.as_mut().context("already stopped")?;
        Ok(child.wait()?.code())
    }

    /// Kills the process group at once (SIGKILL) and reaps the process.
    pub fn kill(&mut self) {
        self.stop_after(None);
    }

    /// Stops the process now (SIGTERM, then SIGKILL after `grace`).
    pub fn stop(&mut self, grace: Duration) {
        self.stop_after(Some(grace));
    }

    fn stop_after(&mut self, grace: Option<Duration>) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let Ok(pgid) = i32::try_from(child.id()) else {
            return;
        };
        let pgid = Pid::from_raw(pgid);
        if let Some(grace) = grace {
            let _ = killpg(pgid, Signal::SIGTERM);
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
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
