//! A LAN of network namespaces for the demo and the benchmarks: one bridge
//! namespace and any number of hosts, each with an `eth0` plugged into the
//! bridge. Everything is removed on drop, including processes started in it.

use std::{
    os::unix::process::CommandExt as _,
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{Context as _, bail};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A bridge LAN; hosts are added with [`Lab::host`].
pub struct Lab {
    prefix: String,
    lan: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
}

/// One host of the lab.
#[derive(Clone, Debug)]
pub struct Host {
    /// Its network namespace.
    pub ns: String,
    /// MAC address of its `eth0`.
    pub mac: String,
    /// Its bridge port (the veth peer of `eth0`) in the bridge namespace.
    pub port: String,
}

impl Lab {
    /// Creates the bridge namespace. `tag` keeps names readable; the pid and
    /// a counter keep concurrent runs apart.
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        if n == 0 {
            reap_stale();
        }
        let prefix = format!("{tag}{}x{n}", std::process::id());
        let lan = format!("{prefix}-lan");
        let mut lab = Lab {
            prefix,
            lan: lan.clone(),
            namespaces: Vec::new(),
            children: Vec::new(),
        };
        lab.add_ns(&lan)?;
        lab.ip(
            &lan,
            &[
                "link",
                "add",
                "br0",
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ],
        )?;
        lab.ip(&lan, &["link", "set", "br0", "up"])?;
        Ok(lab)
    }

    fn add_ns(&mut self, ns: &str) -> anyhow::Result<()> {
        run(Command::new("ip").args(["netns", "add", ns]))?;
        self.namespaces.push(ns.to_owned());
        self.ip(ns, &["link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Adds a host with the given addresses (CIDR) on its `eth0`.
    pub fn host(&mut self, name: &str, addrs: &[&str]) -> anyhow::Result<Host> {
        let ns = format!("{}-{name}", self.prefix);
        self.add_ns(&ns)?;
        let port = format!("p{}", self.namespaces.len());
        run(Command::new("ip").args([
            "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port, "netns",
            &self.lan,
        ]))?;
        self.ip(&self.lan, &["link", "set", &port, "master", "br0"])?;
        self.ip(&self.lan, &["link", "set", &port, "up"])?;
        // No DAD delay for the IPv6 addresses we add, so tests need not wait.
        self.exec(&ns, &["sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0"])?;
        for addr in addrs {
            let mut args = vec!["addr", "add", addr, "dev", "eth0"];
            if addr.contains(':') {
                args.push("nodad");
            }
            self.ip(&ns, &args)?;
        }
        self.ip(&ns, &["link", "set", "eth0", "up"])?;
        let mac = self.mac_of(&ns)?;
        Ok(Host { ns, mac, port })
    }

    fn mac_of(&self, ns: &str) -> anyhow::Result<String> {
        let out = self.exec(ns, &["cat", "/sys/class/net/eth0/address"])?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// `ip <args>` inside `ns`.
    pub fn ip(&self, ns: &str, args: &[&str]) -> anyhow::Result<Output> {
        let mut cmd = Command::new("ip");
        cmd.arg("-n").arg(ns).args(args);
        run(&mut cmd)
    }

    /// Runs a command to completion inside `ns`; fails on a non-zero exit.
    pub fn exec(&self, ns: &str, argv: &[&str]) -> anyhow::Result<Output> {
        run(Command::new("ip").args(["netns", "exec", ns]).args(argv))
    }

    /// Runs a command inside `ns` and returns its output whatever the exit status.
    pub fn exec_any(&self, ns: &str, argv: &[&str]) -> anyhow::Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(argv)
            .output()
            .with_context(|| format!("running {argv:?} in {ns}"))
    }

    /// The bridge namespace.
    pub fn lan(&self) -> &str {
        &self.lan
    }

    /// Starts a long-running command inside `ns`, in a process group of its
    /// own (so that daemons that fork, like keepalived, are killed whole);
    /// killed when the lab drops. Returns its index for [`Lab::signal`].
    pub fn spawn(&mut self, ns: &str, argv: &[&str], log: Stdio) -> anyhow::Result<usize> {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {argv:?} in {ns}"))?;
        self.children.push(child);
        Ok(self.children.len() - 1)
    }

    /// Sends `signal` to a process started with [`Lab::spawn`] (`ip netns exec`
    /// execs the command, so the pid is the command's own).
    pub fn signal(&mut self, idx: usize, signal: i32) -> anyhow::Result<()> {
        let child = self.children.get_mut(idx).context("no such child")?;
        let pid = i32::try_from(child.id()).context("pid out of range")?;
        // SAFETY: kill(2) has no memory-safety preconditions.
        if unsafe { libc::kill(pid, signal) } != 0 {
            bail!("kill({pid}, {signal}) failed");
        }
        Ok(())
    }

    /// Sends `signal` to the whole process group of a spawned process.
    pub fn signal_group(&mut self, idx: usize, signal: i32) -> anyhow::Result<()> {
        let pid = self.pid(idx)?;
        // SAFETY: killpg(2) has no memory-safety preconditions; the group is
        // the one `spawn` created for this child.
        if unsafe { libc::killpg(pid, signal) } != 0 {
            bail!("killpg({pid}, {signal}) failed");
        }
        Ok(())
    }

    /// The pid (and process-group id) of a spawned process.
    pub fn pid(&self, idx: usize) -> anyhow::Result<i32> {
        let child = self.children.get(idx).context("no such child")?;
        i32::try_from(child.id()).context("pid out of range")
    }

    /// Whether a spawned process has exited (reaps it if so).
    pub fn exited(&mut self, idx: usize) -> bool {
        self.children
            .get_mut(idx)
            .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_)) | Err(_)))
    }

    /// Waits for a spawned process to exit; returns its exit code.
    pub fn wait(&mut self, idx: usize) -> anyhow::Result<Option<i32>> {
        let child = self.children.get_mut(idx).context("no such child")?;
        Ok(child.wait()?.code())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            if let Ok(None) = child.try_wait()
                && let Ok(pid) = i32::try_from(child.id())
            {
                // SAFETY: killpg(2) has no memory-safety preconditions; the
                // group is the one `spawn` created for this child.
                unsafe { libc::killpg(pid, libc::SIGKILL) };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Tags of the labs xtask makes (demo, bench failover / steady / flood).
const TAGS: [&str; 4] = ["vd", "vb", "vs", "vf"];

/// Removes labs left behind by an xtask that died without unwinding (Ctrl-C,
/// SIGKILL): namespaces named `<tag><pid>x<n>-…` whose pid is gone, and every
/// process still running in them.
fn reap_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(ns) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = TAGS.iter().find_map(|t| ns.strip_prefix(t)) else {
            continue;
        };
        let Some((pid, tail)) = rest.split_once('x') else {
            continue;
        };
        let well_formed = !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && tail
                .split_once('-')
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !well_formed || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(pids) = Command::new("ip").args(["netns", "pids", ns]).output() {
            for p in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                if let Ok(p) = p.parse::<i32>() {
                    // SAFETY: kill(2) has no memory-safety preconditions; p
                    // runs inside a namespace only an earlier xtask created.
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
            }
        }
        eprintln!("lab: removing {ns}, left behind by a previous run");
        let _ = Command::new("ip").args(["netns", "del", ns]).status();
    }
}

/// Moves the calling thread into network namespace `ns` (created by `ip
/// netns`). Only this thread changes namespace; sockets it opens afterwards
/// stay in `ns` whichever thread uses them.
pub fn enter_netns(ns: &str) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd as _;
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    // SAFETY: the fd is a valid open namespace file for the duration of the call.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!("setns({path}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn run(cmd: &mut Command) -> anyhow::Result<Output> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}
