//! The two daemons under test, configured identically: vrrp-agent (TOML) and
//! keepalived 2.2.7 (`vrrp_instance` blocks), started in a lab host.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Stdio,
};

use anyhow::Context as _;

use crate::lab::{Host, Lab};

/// Which daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// vrrp-agent.
    Agent,
    /// keepalived.
    Keepalived,
}

impl Kind {
    /// Both, in report order.
    pub const BOTH: [Kind; 2] = [Kind::Agent, Kind::Keepalived];

    /// Report name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Agent => "vrrp-agent",
            Kind::Keepalived => "keepalived",
        }
    }
}

/// One VRRP instance.
#[derive(Clone, Debug)]
pub struct Inst {
    /// VRID (also names the instance).
    pub vrid: u8,
    /// Virtual IPs (CIDR).
    pub vips: Vec<String>,
}

/// A router's whole configuration.
#[derive(Clone, Debug)]
pub struct Setup {
    /// VRRP version (2 or 3).
    pub version: u8,
    /// Advertisement interval in milliseconds.
    pub interval_ms: u64,
    /// The instances.
    pub instances: Vec<Inst>,
}

/// The VRID used by single-instance benchmarks.
pub const VRID: u8 = 51;
/// Its first VIP (the one the client probes).
pub const VIP: &str = "192.0.2.10";

impl Setup {
    /// One instance (VRID 51) with `extra_vips + 1` VIPs: 192.0.2.10 then
    /// 203.0.113.1, .2, …
    pub fn single(version: u8, interval_ms: u64, extra_vips: u8) -> Setup {
        let mut vips = vec![format!("{VIP}/24")];
        vips.extend((1..=extra_vips).map(|i| format!("203.0.113.{i}/24")));
        Setup {
            version,
            interval_ms,
            instances: vec![Inst { vrid: VRID, vips }],
        }
    }

    /// `n` instances, VRIDs 1..=n, one VIP each (198.51.100.v, and
    /// 203.0.113.1 for VRID 255).
    pub fn many(version: u8, interval_ms: u64, n: u8) -> Setup {
        let instances = (1..=n)
            .map(|v| Inst {
                vrid: v,
                vips: vec![if v == 255 {
                    "203.0.113.1/24".to_owned()
                } else {
                    format!("198.51.100.{v}/24")
                }],
            })
            .collect();
        Setup {
            version,
            interval_ms,
            instances,
        }
    }

    /// Every VIP, without prefix length.
    pub fn all_vips(&self) -> Vec<String> {
        self.instances
            .iter()
            .flat_map(|i| i.vips.iter())
            .map(|v| v.split('/').next().unwrap_or(v).to_owned())
            .collect()
    }

    /// RFC 5798 §6.1 (and RFC 3768 §6.1 for v2, in whole seconds):
    /// Skew_Time for a router of `priority`, in ms.
    pub fn skew_ms(&self, priority: u8) -> f64 {
        let p = 256.0 - f64::from(priority);
        if self.version == 2 {
            p / 256.0 * 1000.0
        } else {
            p * self.interval_ms as f64 / 256.0
        }
    }

    /// Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time, in ms.
    pub fn master_down_ms(&self, priority: u8) -> f64 {
        3.0 * self.interval_ms as f64 + self.skew_ms(priority)
    }

    fn agent_toml(&self, name: &str, priority: u8, socket: &Path) -> String {
        let mut s = format!(
            "[global]\nrouter_id = \"{name}\"\ncontrol_socket = \"{}\"\n",
            socket.display()
        );
        for i in &self.instances {
            let vips: Vec<String> = i.vips.iter().map(|v| format!("\"{v}\"")).collect();
            s.push_str(&format!(
                "\n[[instance]]\nname = \"VI_{}\"\ninterface = \"eth0\"\nvrid = {}\npriority = {priority}\n\
                 version = {}\nadvert_interval = \"{}ms\"\nvirtual_ips = [{}]\n",
                i.vrid,
                i.vrid,
                self.version,
                self.interval_ms,
                vips.join(", ")
            ));
        }
        s
    }

    fn keepalived_conf(&self, name: &str, priority: u8) -> String {
        let mut s = format!(
            "global_defs {{\n    router_id {name}\n    vrrp_version {}\n}}\n",
            self.version
        );
        let interval = if self.version == 2 {
            format!("{}", self.interval_ms / 1000)
        } else {
            format!("{}", self.interval_ms as f64 / 1000.0)
        };
        for i in &self.instances {
            s.push_str(&format!(
                "vrrp_instance VI_{} {{\n    state BACKUP\n    interface eth0\n    virtual_router_id {}\n    \
                 priority {priority}\n    advert_int {interval}\n    virtual_ipaddress {{\n",
                i.vrid, i.vrid
            ));
            for v in &i.vips {
                s.push_str(&format!("        {v}\n"));
            }
            s.push_str("    }\n}\n");
        }
        s
    }
}

/// Starts `kind` on `host` with `setup` at `priority`; files go to `dir`.
/// Returns the lab's child index.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per daemon kind; a struct would only rename the arguments"
)]
pub fn start(
    lab: &mut Lab,
    kind: Kind,
    agent_bin: &Path,
    host: &Host,
    name: &str,
    setup: &Setup,
    priority: u8,
    dir: &Path,
) -> anyhow::Result<usize> {
    let config = match kind {
        Kind::Agent => setup.agent_toml(name, priority, &dir.join(format!("{name}.sock"))),
        Kind::Keepalived => setup.keepalived_conf(name, priority),
    };
    start_config(lab, kind, agent_bin, host, name, &config, dir)
}

/// Starts `kind` on `host` with the config text `config` (TOML for the
/// agent, whose control socket should be `<dir>/<name>.sock`; keepalived.conf
/// for keepalived); files go to `dir`. Returns the lab's child index.
pub fn start_config(
    lab: &mut Lab,
    kind: Kind,
    agent_bin: &Path,
    host: &Host,
    name: &str,
    config: &str,
    dir: &Path,
) -> anyhow::Result<usize> {
    let log = File::create(dir.join(format!("{name}.log")))
        .with_context(|| format!("creating a log in {}", dir.display()))?;
    let path = |ext: &str| -> PathBuf { dir.join(format!("{name}.{ext}")) };
    let s = |p: &PathBuf| p.display().to_string();
    match kind {
        Kind::Agent => {
            let conf = path("toml");
            std::fs::write(&conf, config)?;
            let (bin, conf) = (s(&agent_bin.to_path_buf()), s(&conf));
            lab.spawn(
                &host.ns,
                &[&bin, "--log-level", "info", "run", "--config", &conf],
                Stdio::from(log),
            )
        }
        Kind::Keepalived => {
            let conf = path("conf");
            std::fs::write(&conf, config)?;
            let (pid, vpid, cpid) = (s(&path("pid")), s(&path("vrrp.pid")), s(&path("chk.pid")));
            lab.spawn(
                &host.ns,
                &[
                    "keepalived",
                    "--dont-fork",
                    "--log-console",
                    "--vrrp",
                    "--use-file",
                    &s(&conf),
                    "--pid",
                    &pid,
                    "--vrrp_pid",
                    &vpid,
                    "--checkers_pid",
                    &cpid,
                ],
                Stdio::from(log),
            )
        }
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> anyhow::Result<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next().context("short MAC")?, 16)?;
    }
    Ok(mac)
}
