//! A LAN of network namespaces for the demo and the benchmarks, on the
//! project's lab library (`tests::netns`, built without its `agent` feature,
//! so xtask needs no eBPF toolchain): one bridge namespace and any number of
//! hosts, each with an `eth0` plugged into the bridge. Namespaces and
//! processes are addressed by name and index, as the bench code keeps them.
//! Everything is removed on drop; labs left by an xtask that died are reaped
//! by the next one.

use std::{
    process::{Output, Stdio},
    sync::Once,
};

use anyhow::Context as _;
use nix::sys::signal::Signal;
use tests::netns::{self, ChildGuard, Lan, Netns};

/// Tags of the labs xtask makes (demo, bench failover / steady / flood).
const TAGS: [&str; 4] = ["vd", "vb", "vs", "vf"];

/// A bridge LAN; hosts are added with [`Lab::host`].
pub struct Lab {
    prefix: String,
    lan: Lan,
    children: Vec<ChildGuard>,
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
    /// Creates the bridge namespace `<tag><pid>x<n>-lan`; `tag` is one of
    /// [`TAGS`], so that a later run can reap it.
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        static REAP: Once = Once::new();
        REAP.call_once(|| netns::reap_stale(&TAGS));
        let prefix = netns::lab_name(tag);
        let lan = Lan::bridge(Netns::create(format!("{prefix}-lan"))?)?;
        Ok(Lab {
            prefix,
            lan,
            children: Vec::new(),
        })
    }

    /// Adds a host with the given addresses (CIDR) on its `eth0`.
    pub fn host(&mut self, name: &str, addrs: &[&str]) -> anyhow::Result<Host> {
        let port = Lan::port(self.lan.hosts.len());
        let host = self
            .lan
            .attach(Netns::create(format!("{}-{name}", self.prefix))?)?;
        // No DAD delay for the IPv6 addresses we add, so tests need not wait.
        host.sysctl("net.ipv6.conf.eth0.accept_dad", "0")?;
        for addr in addrs {
            host.addr_add("eth0", addr)?;
        }
        host.ip(&["link", "set", "eth0", "up"])?;
        receive_in_napi_thread(host, "eth0")?;
        let host = Host {
            ns: host.name().to_owned(),
            mac: host.mac_string("eth0")?,
            port,
        };
        receive_in_napi_thread(&self.lan.lan, &host.port)?;
        Ok(host)
    }

    /// `ip <args>` inside `ns`.
    pub fn ip(&self, ns: &str, args: &[&str]) -> anyhow::Result<Output> {
        netns::run_output(
            std::process::Command::new("ip")
                .arg("-n")
                .arg(ns)
                .args(args),
        )
    }

    /// Runs a command inside `ns`; fails unless it exits 0.
    pub fn exec(&self, ns: &str, argv: &[&str]) -> anyhow::Result<Output> {
        netns::run_output(&mut self.command(ns, argv)?)
    }

    /// Runs a command inside `ns` and returns its output whatever the exit status.
    pub fn exec_any(&self, ns: &str, argv: &[&str]) -> anyhow::Result<Output> {
        self.command(ns, argv)?
            .output()
            .with_context(|| format!("running {argv:?} in {ns}"))
    }

    fn command(&self, ns: &str, argv: &[&str]) -> anyhow::Result<std::process::Command> {
        let (program, args) = argv.split_first().context("empty command")?;
        let mut cmd = self.netns(ns)?.command(program);
        cmd.args(args);
        Ok(cmd)
    }

    fn netns(&self, ns: &str) -> anyhow::Result<&Netns> {
        std::iter::once(&self.lan.lan)
            .chain(&self.lan.hosts)
            .find(|n| n.name() == ns)
            .with_context(|| format!("no namespace {ns} in this lab"))
    }

    /// The bridge namespace.
    pub fn lan(&self) -> &str {
        self.lan.lan.name()
    }

    /// Starts a long-running command inside `ns`, in a process group of its
    /// own (so that daemons that fork, like keepalived, are killed whole);
    /// killed when the lab drops. Returns its index for [`Lab::signal`].
    pub fn spawn(&mut self, ns: &str, argv: &[&str], log: Stdio) -> anyhow::Result<usize> {
        let (program, args) = argv.split_first().context("empty command")?;
        let child = self
            .netns(ns)?
            .spawn_with(program, args, Stdio::null(), log)?;
        self.children.push(child);
        Ok(self.children.len() - 1)
    }

    fn child(&self, idx: usize) -> anyhow::Result<&ChildGuard> {
        self.children.get(idx).context("no such child")
    }

    /// Sends `signal` to a process started with [`Lab::spawn`] (`ip netns exec`
    /// execs the command, so the pid is the command's own).
    pub fn signal(&mut self, idx: usize, signal: i32) -> anyhow::Result<()> {
        self.child(idx)?.signal(Signal::try_from(signal)?)
    }

    /// Sends `signal` to the whole process group of a spawned process.
    pub fn signal_group(&mut self, idx: usize, signal: i32) -> anyhow::Result<()> {
        self.child(idx)?.signal_group(Signal::try_from(signal)?)
    }

    /// The pid (and process-group id) of a spawned process.
    pub fn pid(&self, idx: usize) -> anyhow::Result<i32> {
        Ok(self.child(idx)?.pid()?.as_raw())
    }

    /// Whether a spawned process has exited (reaps it if so).
    pub fn exited(&mut self, idx: usize) -> bool {
        self.children.get_mut(idx).is_none_or(ChildGuard::exited)
    }

    /// Waits for a spawned process to exit; returns its exit code.
    pub fn wait(&mut self, idx: usize) -> anyhow::Result<Option<i32>> {
        self.children.get_mut(idx).context("no such child")?.wait()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // At once, not with the tests' grace period: the bench tears down
        // many labs, and nothing in them needs a clean stop. The namespaces
        // (the fields) drop after this.
        self.children.iter_mut().for_each(ChildGuard::kill);
    }
}

/// Makes `ifname` (a veth) receive in its own NAPI kernel thread.
///
/// A veth hands a sent frame to its peer's receive path, and without NAPI
/// (the default) that path runs as softirq in the sender's context: a
/// daemon sending an advert would be charged the bridge's forwarding and
/// the peer host's whole receive, XDP program included. On a real link the
/// peer receives on its own host. With GRO on, a veth receives through
/// NAPI; with threaded NAPI, that poll runs in a `napi/<dev>` kthread that
/// belongs to no daemon. Every interface of the lab gets this, for
/// keepalived and vrrp-agent alike, so each daemon is charged its own send
/// (up to the veth's queue) and its own receive syscalls, as on hardware.
fn receive_in_napi_thread(ns: &Netns, ifname: &str) -> anyhow::Result<()> {
    ns.run(|| set_gro(ifname))
        .with_context(|| format!("GRO on {ifname} in {}", ns.name()))?;
    ns.exec(
        "sh",
        &["-c", &format!("echo 1 > /sys/class/net/{ifname}/threaded")],
    )
    .with_context(|| format!("threaded NAPI on {ifname} in {}", ns.name()))?;
    Ok(())
}

/// `ETHTOOL_SGRO` on `ifname` in the calling thread's namespace (no
/// dependency on the ethtool binary).
fn set_gro(ifname: &str) -> anyhow::Result<()> {
    const ETHTOOL_SGRO: u32 = 0x2c;
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    let mut value = EthtoolValue {
        cmd: ETHTOOL_SGRO,
        data: 1,
    };
    // SAFETY: plain socket(2); the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: an all-zero ifreq is a valid (empty) value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = ifname.as_bytes();
    anyhow::ensure!(name.len() < ifr.ifr_name.len(), "interface name too long");
    for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (&raw mut value).cast();
    // SAFETY: SIOCETHTOOL reads the ifreq and the ethtool_value it points
    // to; both live until the call returns.
    let r = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            libc::SIOCETHTOOL,
            &raw mut ifr,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

/// Moves the calling thread into network namespace `ns` (created by `ip
/// netns`). Only this thread changes namespace; sockets it opens afterwards
/// stay in `ns` whichever thread uses them.
pub fn enter_netns(ns: &str) -> anyhow::Result<()> {
    netns::enter_named(ns)
}
