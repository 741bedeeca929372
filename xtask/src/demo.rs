//! `cargo xtask demo`: watch a failover (`cargo xtask demo redis`: the Redis
//! hot standby, in [`crate::demo_redis`]).
//!
//! Two routers and a client on one bridge, each in its own network namespace.
//! `r1` (priority 150) holds the VIP; we show the client's ARP entry for it,
//! kill `r1` the hard way (process killed and link down together), and watch
//! `r2` take over and the client's ARP entry move to `r2`'s MAC.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::lab::{Host, Lab};

const VIP: &str = "192.0.2.10";
const INTERVAL_MS: u64 = 100;

/// Both demos' start: setup, the release agent, and the lab (r1 192.0.2.1,
/// r2 192.0.2.2, client 192.0.2.100).
pub(crate) fn prepare() -> anyhow::Result<(PathBuf, Lab, [Host; 3])> {
    crate::setup::run()?;
    step("Building vrrp-agent (release)");
    let agent = build_agent()?;

    step("Creating the lab: bridge + r1 + r2 + client, in network namespaces");
    let mut lab = Lab::new("vd")?;
    let r1 = lab.host("r1", &["192.0.2.1/24"])?;
    let r2 = lab.host("r2", &["192.0.2.2/24"])?;
    let client = lab.host("cli", &["192.0.2.100/24"])?;
    Ok((agent, lab, [r1, r2, client]))
}

pub fn run() -> anyhow::Result<()> {
    let (agent, mut lab, [r1, r2, client]) = prepare()?;
    println!("    r1     192.0.2.1    {}", r1.mac);
    println!("    r2     192.0.2.2    {}", r2.mac);
    println!("    client 192.0.2.100  {}", client.mac);

    let dir = tempdir()?;
    let mut agents = Vec::new();
    for (name, host, prio) in [("r1", &r1, 150), ("r2", &r2, 100)] {
        let conf = write_config(&dir, name, prio)?;
        let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
        let idx = lab.spawn(
            &host.ns,
            &[
                agent.to_str().context("agent path")?,
                "run",
                "--config",
                conf.to_str().context("config path")?,
            ],
            Stdio::from(log),
        )?;
        agents.push(idx);
    }
    step(&format!(
        "Starting two agents (VRRPv3, {INTERVAL_MS} ms adverts, VIP {VIP}): r1 priority 150, r2 priority 100"
    ));
    wait_for_state(
        &agent,
        &lab,
        &r1,
        &dir,
        "r1",
        "MASTER",
        Duration::from_secs(10),
    )?;
    wait_for_state(
        &agent,
        &lab,
        &r2,
        &dir,
        "r2",
        "BACKUP",
        Duration::from_secs(10),
    )?;
    println!("    r1 is MASTER, r2 is BACKUP");

    step("The client talks to the VIP; its ARP entry names the master's MAC");
    lab.exec_any(&client.ns, &["ping", "-c", "1", "-W", "1", VIP])?;
    let before = neigh_mac(&lab, &client)?;
    println!(
        "    client: {VIP} is-at {before}  ({})",
        who(&before, &r1, &r2)
    );
    if before != r1.mac {
        bail!(
            "the client's ARP entry does not point at r1; see the logs in {}",
            dir.display()
        );
    }

    step("Killing r1: agent SIGKILLed and its link cut at the same moment");
    let t0 = Instant::now();
    lab.signal(agents[0], libc::SIGKILL)?;
    lab.ip(&r1.ns, &["link", "set", "eth0", "down"])?;

    let deadline = t0 + Duration::from_secs(10);
    let mut took_over = None;
    let mut arp_moved = None;
    while Instant::now() < deadline && (took_over.is_none() || arp_moved.is_none()) {
        if took_over.is_none()
            && state_of(&agent, &lab, &r2, &dir, "r2").as_deref() == Some("MASTER")
        {
            took_over = Some(t0.elapsed());
        }
        if arp_moved.is_none() && neigh_mac(&lab, &client).is_ok_and(|m| m == r2.mac) {
            arp_moved = Some(t0.elapsed());
        }
        sleep(Duration::from_millis(2));
    }
    let (Some(took_over), Some(arp_moved)) = (took_over, arp_moved) else {
        bail!("no failover within 10 s; see the logs in {}", dir.display());
    };
    let skew_us = (256 - 100) * INTERVAL_MS * 1000 / 256;
    let down_ms = (3 * INTERVAL_MS * 1000 + skew_us) as f64 / 1000.0;
    println!(
        "    r2 became MASTER after {:.1} ms (RFC Master_Down_Interval: {down_ms:.1} ms)",
        ms(took_over)
    );
    println!(
        "    the client's ARP entry moved after {:.1} ms (gratuitous ARP from r2)",
        ms(arp_moved)
    );

    let after = neigh_mac(&lab, &client)?;
    println!(
        "    client: {VIP} is-at {after}  ({})",
        who(&after, &r1, &r2)
    );
    let ping = lab.exec_any(&client.ns, &["ping", "-c", "1", "-W", "1", VIP])?;
    println!(
        "    ping {VIP}: {}",
        if ping.status.success() {
            "answered by r2"
        } else {
            "no answer"
        }
    );

    step("Cleaning up (agents stopped, namespaces removed)");
    lab.signal(agents[1], libc::SIGTERM)?;
    let _ = lab.wait(agents[1]);
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
    if after != r2.mac {
        bail!("the client's ARP entry did not move to r2");
    }
    println!("\nDone: the VIP moved from r1 to r2 and the client followed.");
    Ok(())
}

pub(crate) fn step(msg: &str) {
    println!("\n==> {msg}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn who(mac: &str, r1: &Host, r2: &Host) -> &'static str {
    if mac == r1.mac {
        "r1"
    } else if mac == r2.mac {
        "r2"
    } else {
        "unknown"
    }
}

/// Builds the agent in release mode and returns the binary's path.
pub fn build_agent() -> anyhow::Result<PathBuf> {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--quiet",
            "--package",
            "vrrp-agent",
            "--bin",
            "vrrp-agent",
        ])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building vrrp-agent failed");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    Ok(target.join("release/vrrp-agent"))
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("vrrp-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn write_config(dir: &Path, name: &str, priority: u8) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}.toml"));
    let sock = dir.join(format!("{name}.sock"));
    std::fs::write(
        &path,
        format!(
            r#"[global]
router_id = "{name}"
control_socket = "{}"

[[instance]]
name = "VI_DEMO"
interface = "eth0"
vrid = 51
priority = {priority}
version = 3
advert_interval = "{INTERVAL_MS}ms"
virtual_ips = ["{VIP}/24"]
"#,
            sock.display()
        ),
    )?;
    Ok(path)
}

pub(crate) fn state_of(
    agent: &Path,
    lab: &Lab,
    host: &Host,
    dir: &Path,
    name: &str,
) -> Option<String> {
    let sock = dir.join(format!("{name}.sock"));
    let out = lab
        .exec_any(
            &host.ns,
            &[
                agent.to_str()?,
                "status",
                "--json",
                "--socket",
                sock.to_str()?,
            ],
        )
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(v["instances"][0]["state"].as_str()?.to_owned())
}

fn wait_for_state(
    agent: &Path,
    lab: &Lab,
    host: &Host,
    dir: &Path,
    name: &str,
    want: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if state_of(agent, lab, host, dir, name).as_deref() == Some(want) {
            return Ok(());
        }
        sleep(Duration::from_millis(20));
    }
    bail!(
        "{name} did not reach {want} within {timeout:?}; see {}/{name}.log",
        dir.display()
    )
}

/// The client's ARP entry for the VIP.
fn neigh_mac(lab: &Lab, client: &Host) -> anyhow::Result<String> {
    let out = lab.ip(&client.ns, &["neigh", "show", VIP, "dev", "eth0"])?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "lladdr" {
            return words
                .next()
                .map(str::to_owned)
                .context("malformed ip neigh output");
        }
    }
    bail!("no ARP entry for {VIP}")
}
