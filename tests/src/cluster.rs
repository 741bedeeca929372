//! Running vrrp-agent (and keepalived) in a lab of network namespaces, and
//! watching what a user would see: instance state, VIPs on interfaces, and a
//! client's ARP / neighbour entry for the VIP.

use std::{
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use anyhow::bail;

use crate::netns::{ChildGuard, Lan, Netns, TempDir, unique_name};

/// Path of the `vrrp-agent` binary under test: `$VRRP_AGENT_BIN`, or the
/// one next to this test executable (`target/<profile>/vrrp-agent`), which
/// `cargo xtask test` builds first.
pub fn agent_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("VRRP_AGENT_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let bin = profile_dir.join("vrrp-agent");
    assert!(
        bin.exists(),
        "{} not found: build it first (`cargo build -p vrrp-agent`, done by `cargo xtask test`) or set VRRP_AGENT_BIN",
        bin.display()
    );
    bin
}

/// One running vrrp-agent.
pub struct Agent {
    /// Its namespace name.
    pub ns: String,
    /// Its control socket.
    pub socket: PathBuf,
    /// Its config file.
    pub config: PathBuf,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
    /// The process; killed on drop.
    pub child: ChildGuard,
}

impl Agent {
    /// Writes `config_toml` (which must use `control_socket = "{SOCKET}"`
    /// as a placeholder, or no control_socket at all) and starts the agent
    /// in `ns`.
    pub fn start(
        ns: &Netns,
        dir: &TempDir,
        config_toml: &str,
        extra_args: &[&str],
    ) -> anyhow::Result<Agent> {
        let name = unique_name("agent");
        let socket = dir.path().join(format!("{name}.sock"));
        let config = dir.path().join(format!("{name}.toml"));
        let log = dir.path().join(format!("{name}.log"));
        let text = if config_toml.contains("{SOCKET}") {
            config_toml.replace("{SOCKET}", &socket.display().to_string())
        } else if config_toml.contains("control_socket") {
            config_toml.to_owned()
        } else {
            format!(
                "{}\n",
                config_toml.replacen(
                    "[global]",
                    &format!("[global]\ncontrol_socket = \"{}\"", socket.display()),
                    1
                )
            )
        };
        std::fs::write(&config, text)?;
        let bin = agent_bin();
        let mut args = vec!["--log-level", "debug", "run", "--config"];
        let config_str = config.display().to_string();
        args.push(&config_str);
        args.extend_from_slice(extra_args);
        let child = ns.spawn(&bin.display().to_string(), &args, Some(&log))?;
        Ok(Agent {
            ns: ns.name().to_owned(),
            socket,
            config,
            log,
            child,
        })
    }

    /// `vrrp-agent status --json`, parsed; `None` if no daemon answers.
    pub fn status(&self) -> Option<serde_json::Value> {
        let out = Command::new(agent_bin())
            .args(["status", "--json", "--socket"])
            .arg(&self.socket)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// State of instance `name` (`"MASTER"`, `"BACKUP"`, …).
    pub fn state(&self, instance: &str) -> Option<String> {
        let s = self.status()?;
        s["instances"]
            .as_array()?
            .iter()
            .find(|i| i["name"] == instance)
            .and_then(|i| i["state"].as_str().map(str::to_owned))
    }

    /// Waits until instance `name` is in `state`; fails with the log tail.
    pub fn wait_state(
        &self,
        instance: &str,
        state: &str,
        timeout: Duration,
    ) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        loop {
            if self.state(instance).as_deref() == Some(state) {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > timeout {
                bail!(
                    "{} in {}: instance {instance} not {state} after {timeout:?} (now {:?})\n--- log tail ---\n{}",
                    self.config.display(),
                    self.ns,
                    self.state(instance),
                    self.log_tail(40)
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last `n` lines of the agent's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        // aya's loader logs hundreds of relocation lines at debug level;
        // the agent's own lines are what a failure needs.
        let lines: Vec<&str> = text.lines().filter(|l| !l.contains(" aya_obj::")).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Sends `sig` to the agent.
    pub fn signal(&self, sig: nix::sys::signal::Signal) -> anyhow::Result<()> {
        self.child.signal(sig)
    }

    /// Waits for the agent to exit (after a signal); true if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if self.child.exited() {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

/// Addresses configured on `ifname` in `ns` (`ip -br addr` words after the state).
pub fn addresses(ns: &Netns, ifname: &str) -> Vec<String> {
    ns.ip(&["-br", "addr", "show", "dev", ifname])
        .map(|out| out.split_whitespace().skip(2).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Whether `ns` holds `addr` (no prefix) on `ifname`.
pub fn has_address(ns: &Netns, ifname: &str, addr: &str) -> bool {
    addresses(ns, ifname)
        .iter()
        .any(|a| a.split('/').next() == Some(addr))
}

/// The link-layer address `ns` has cached for `addr` on `eth0`, if any
/// (ARP for IPv4, neighbour cache for IPv6), in any state but FAILED/INCOMPLETE.
pub fn neigh_mac(ns: &Netns, addr: &str) -> Option<String> {
    let out = ns.ip(&["neigh", "show", addr, "dev", "eth0"]).ok()?;
    let mut words = out.split_whitespace();
    while let Some(w) = words.next() {
        if w == "lladdr" {
            return words.next().map(str::to_owned);
        }
    }
    None
}

/// `eth0`'s MAC in `ns`, as `ip` prints it.
pub fn mac_string(ns: &Netns) -> String {
    ns.mac_string("eth0").unwrap_or_default()
}

/// The config of one VRRPv3 instance, `VI_1`, VRID 51 on `eth0`, at
/// `priority`, adverts every `interval`; `vips` is the body of the
/// `virtual_ips` array (e.g. `"192.0.2.10/24"`) and `extra` lines are
/// appended to the instance. `{SOCKET}` is filled in by [`Lab::agent`].
pub fn one_instance_config(priority: u8, interval: &str, vips: &str, extra: &str) -> String {
    format!(
        r#"[global]
router_id = "r{priority}"
control_socket = "{{SOCKET}}"

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = {priority}
version = 3
advert_interval = "{interval}"
virtual_ips = [{vips}]
{extra}
"#
    )
}

/// Polls `f` every 5 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if f() {
            return Some(t0.elapsed());
        }
        thread::sleep(Duration::from_millis(5));
    }
    None
}

/// Sends one ping from `ns` to `addr` (refreshes the client's ARP entry).
pub fn ping(ns: &Netns, addr: &str) -> bool {
    let (prog, args): (&str, Vec<&str>) = ("ping", vec!["-c", "1", "-W", "1", addr]);
    ns.exec(prog, &args).is_ok()
}

/// A LAN with `routers` routers (192.0.2.1, .2, ...) and a client (192.0.2.100).
pub struct Lab {
    /// The bridge and the hosts (routers first, the client last).
    pub lan: Lan,
    /// Configs, sockets and logs.
    pub dir: TempDir,
}

impl Lab {
    /// Builds the LAN; `tag` prefixes the namespace names.
    pub fn new(tag: &str, routers: usize) -> Lab {
        let lan = Lan::new(tag, routers + 1).expect("lab");
        for (i, h) in lan.hosts.iter().enumerate() {
            let last = if i == routers { 100 } else { i + 1 };
            h.sysctl("net.ipv6.conf.eth0.accept_dad", "0")
                .expect("sysctl");
            h.addr_add("eth0", &format!("192.0.2.{last}/24"))
                .expect("addr");
            h.addr_add("eth0", &format!("2001:db8::{last}/64"))
                .expect("addr");
        }
        Lab {
            lan,
            dir: TempDir::new("e2e").expect("tempdir"),
        }
    }

    /// Router `i` (address 192.0.2.<i+1>, 2001:db8::<i+1>).
    pub fn router(&self, i: usize) -> &Netns {
        &self.lan.hosts[i]
    }

    /// The client (192.0.2.100, 2001:db8::100).
    pub fn client(&self) -> &Netns {
        self.lan.hosts.last().expect("client")
    }

    /// Starts vrrp-agent on router `i`.
    pub fn agent(&self, i: usize, config: &str) -> Agent {
        Agent::start(self.router(i), &self.dir, config, &[]).expect("start agent")
    }
}

/// Exactly one of `hosts` holds `addr`; returns its index.
pub fn sole_holder(hosts: &[&Netns], addr: &str) -> Option<usize> {
    let holders: Vec<usize> = (0..hosts.len())
        .filter(|&i| has_address(hosts[i], "eth0", addr))
        .collect();
    (holders.len() == 1).then(|| holders[0])
}

/// Waits until host `want` alone holds `addr`.
pub fn wait_holder(hosts: &[&Netns], addr: &str, want: usize) {
    let ok = wait_until(Duration::from_secs(10), || {
        sole_holder(hosts, addr) == Some(want)
    });
    assert!(
        ok.is_some(),
        "{addr} not held by host {want} alone: holder {:?}",
        sole_holder(hosts, addr)
    );
}
