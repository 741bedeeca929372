//! "Service dies" (issue 10): the Redis hot standby, both daemons.
//!
//! Each trial builds a fresh lab: r1 (priority 200) and r2 (priority 100),
//! each with a redis-server of its own (r2 a replica of r1, no persistence,
//! `repl-diskless-sync-delay 0`), the daemon under test with a health check
//! on it and the notify scripts of `examples/redis/` (`notify_master`
//! promotes with `REPLICAOF NO ONE`), and a client writing an increasing
//! counter through the VIP every millisecond. redis-server on r1 is
//! SIGKILLed (host and daemon stay up). Measured at the client: the write
//! outage (last acknowledged write before the kill to the first after it)
//! and the acknowledged writes lost (the client's last acknowledged counter
//! minus what the promoted Redis holds when the client reaches it).
//!
//! Variants, at 100 ms and 1 s adverts (VRRPv3), trials interleaved:
//! - keepalived, the tutorial config: `vrrp_script` `redis-cli ping`,
//!   interval 1, fall 2, rise 2, weight 0 (FAULT);
//! - keepalived at its best: `vrrp_track_process` (the proc connector);
//! - vrrp-agent with a `process` check (pidfd);
//! - vrrp-agent with a `tcp` check at 100 ms;
//! - vrrp-agent with a `process` check and a client that sends `WAIT 1 100`
//!   after each write and counts it only when a replica has it.
//!
//! Each node's redis-server runs under a process name of its own (a
//! symlink): the lab's hosts share one pid namespace, so a check by process
//! name must not see the peer's Redis.
//!
//! Also the CPU cost of the checks themselves: a lone router whose daemon
//! runs 100 `tcp` checks at 100 ms, or 10 `exec` checks (the examples'
//! `redis-check.sh`) at 1 s, measured like the steady cells.

use std::{
    fmt::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::Path,
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tests::redis::{self, Writer};

use super::{
    daemon::{self, Kind, VIP},
    measure::{Ctx, P_BACKUP, P_MASTER, cpu_ns, wait_for},
    report::{f3, pct},
};
use crate::lab::{Host, Lab};

/// How the service is watched (and how the client writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// keepalived, `vrrp_script` `redis-cli ping`, interval 1, fall 2.
    KaScript,
    /// keepalived, `vrrp_track_process`.
    KaProcess,
    /// keepalived, `vrrp_script` `pgrep -x`, interval 1, fall 1: the
    /// fastest process check keepalived can run in a network namespace.
    KaPgrep,
    /// vrrp-agent, `process` check.
    AgentProcess,
    /// vrrp-agent, `tcp` check every 100 ms.
    AgentTcp,
    /// vrrp-agent, `process` check; the client sends `WAIT 1 100`.
    AgentProcessWait,
}

impl Variant {
    /// Every variant, in report order.
    pub const ALL: [Variant; 6] = [
        Variant::KaScript,
        Variant::KaProcess,
        Variant::KaPgrep,
        Variant::AgentProcess,
        Variant::AgentTcp,
        Variant::AgentProcessWait,
    ];

    /// The daemon.
    pub fn kind(self) -> Kind {
        match self {
            Variant::KaScript | Variant::KaProcess | Variant::KaPgrep => Kind::Keepalived,
            _ => Kind::Agent,
        }
    }

    /// Report label.
    pub fn label(self) -> &'static str {
        match self {
            Variant::KaScript => "keepalived, vrrp_script redis-cli ping (tutorial)",
            Variant::KaProcess => "keepalived, vrrp_track_process",
            Variant::KaPgrep => "keepalived, vrrp_script pgrep -x, interval 1, fall 1",
            Variant::AgentProcess => "vrrp-agent, process check",
            Variant::AgentTcp => "vrrp-agent, tcp check 100 ms",
            Variant::AgentProcessWait => "vrrp-agent, process check; client WAIT 1 100",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Variant::KaScript => "keepalived_script",
            Variant::KaProcess => "keepalived_track_process",
            Variant::KaPgrep => "keepalived_script_pgrep",
            Variant::AgentProcess => "agent_process",
            Variant::AgentTcp => "agent_tcp",
            Variant::AgentProcessWait => "agent_process_wait",
        }
    }

    /// keepalived's `vrrp_track_process` cannot run in a network namespace
    /// (see the notes): its failure is the finding, not a harness error.
    pub fn fails_in_a_namespace(self) -> bool {
        self == Variant::KaProcess
    }

    fn wait(self) -> Option<Duration> {
        (self == Variant::AgentProcessWait).then_some(Duration::from_millis(100))
    }
}

/// One trial.
#[derive(Clone, Debug)]
pub struct Trial {
    /// Client-visible write outage, ms.
    pub outage_ms: f64,
    /// Acknowledged writes the promoted Redis did not have.
    pub lost: u64,
    /// From the kill to the VIP on r2 alone, ms.
    pub vip_ms: Option<f64>,
}

/// Trials per (variant, advert interval ms).
pub type Runs = Vec<(Variant, u64, Result<Vec<Trial>, String>)>;

/// The daemon's CPU with checks only: (label, kind, result in % of one core).
pub type CpuRuns = Vec<(&'static str, Kind, Result<f64, String>)>;

const SCRIPTS: [&str; 4] = [
    "redis-check.sh",
    "redis-master.sh",
    "redis-backup.sh",
    "redis-fault.sh",
];
/// The nodes' addresses.
pub(crate) const ADDRS: [&str; 2] = ["192.0.2.1", "192.0.2.2"];
const PORT: u16 = redis::PORT;

/// Copies the example scripts into `dir` (0755) once.
pub(crate) fn install_scripts(dir: &Path) -> anyhow::Result<()> {
    let examples = super::workspace_root().join("examples/redis");
    for s in SCRIPTS {
        let to = dir.join(s);
        if to.exists() {
            continue;
        }
        std::fs::copy(examples.join(s), &to)
            .with_context(|| format!("copying examples/redis/{s}"))?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// A process name unique to this run and node (at most 15 bytes).
fn comm(node: usize) -> String {
    format!("rds{}{}", std::process::id() % 1_000_000, ["a", "b"][node])
}

/// The daemon config of node `i` (0 = r1, the master) for `v`; the
/// agent's with `preempt = false` if `nopreempt`.
pub(crate) fn config(
    v: Variant,
    i: usize,
    interval_ms: u64,
    scripts: &Path,
    sock: &Path,
    nopreempt: bool,
) -> String {
    let peer = ADDRS[1 - i];
    let priority = [P_MASTER, P_BACKUP][i];
    let sh = |s: &str| scripts.join(s).display().to_string();
    let (master, backup, fault) = (
        format!("{} {PORT}", sh("redis-master.sh")),
        format!("{} {peer} {PORT}", sh("redis-backup.sh")),
        format!("{} {peer} {PORT}", sh("redis-fault.sh")),
    );
    match v.kind() {
        Kind::Agent => {
            let check = if v == Variant::AgentTcp {
                format!("kind = \"tcp\"\naddress = \"127.0.0.1:{PORT}\"\ninterval = \"100ms\"")
            } else {
                format!("kind = \"process\"\nprocess = \"{}\"", comm(i))
            };
            format!(
                "[global]\nrouter_id = \"r{i}\"\ncontrol_socket = \"{}\"\n\n\
                 [[check]]\nname = \"redis\"\n{check}\n\n\
                 [[instance]]\nname = \"REDIS\"\ninterface = \"eth0\"\nvrid = {}\npriority = {priority}\n\
                 version = 3\nadvert_interval = \"{interval_ms}ms\"\nvirtual_ips = [\"{VIP}/24\"]\n\
                 track = [{{ check = \"redis\" }}]\n{}\
                 notify_master = \"{master}\"\nnotify_backup = \"{backup}\"\nnotify_fault = \"{fault}\"\n",
                sock.display(),
                daemon::VRID,
                if nopreempt { "preempt = false\n" } else { "" }
            )
        }
        Kind::Keepalived => {
            let script = |cmd: &str, fall: u8| {
                (
                    format!(
                        "vrrp_script chk_redis {{\n    script \"{cmd}\"\n    interval 1\n    \
                         fall {fall}\n    rise {fall}\n}}\n"
                    ),
                    "track_script {\n        chk_redis\n    }",
                )
            };
            let (def, track) = if v == Variant::KaScript {
                script("/usr/bin/redis-cli ping", 2)
            } else if v == Variant::KaPgrep {
                script(&format!("/usr/bin/pgrep -x {}", comm(i)), 1)
            } else {
                (
                    format!(
                        "vrrp_track_process redis_alive {{\n    process {}\n    weight 0\n}}\n",
                        comm(i)
                    ),
                    "track_process {\n        redis_alive\n    }",
                )
            };
            format!(
                "global_defs {{\n    router_id r{i}\n    vrrp_version 3\n    script_user root\n}}\n{def}\
                 vrrp_instance REDIS {{\n    state BACKUP\n    interface eth0\n    virtual_router_id {}\n    \
                 priority {priority}\n    advert_int {}\n    virtual_ipaddress {{\n        {VIP}/24\n    }}\n    \
                 {track}\n    notify_master \"{master}\"\n    notify_backup \"{backup}\"\n    \
                 notify_fault \"{fault}\"\n}}\n",
                daemon::VRID,
                interval_ms as f64 / 1000.0
            )
        }
    }
}

/// Starts node `i`'s redis-server (a replica of the other node for `i` = 1)
/// and waits until it answers.
pub(crate) fn start_redis(
    lab: &mut Lab,
    host: &Host,
    cli: &Host,
    i: usize,
    dir: &Path,
) -> anyhow::Result<usize> {
    let data = dir.join(format!("data{i}"));
    std::fs::create_dir_all(&data)?;
    let conf = redis::server_config(
        &data,
        &[ADDRS[i], VIP],
        &dir.join(format!("redis{i}.pid")),
        (i == 1).then_some(ADDRS[0]),
    );
    let argv = redis::server_argv(dir, &format!("redis{i}"), &conf, Some(&comm(i)))?;
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let log = std::fs::File::create(dir.join(format!("redis{i}.log")))?;
    let idx = lab.spawn(&host.ns, &argv, log.into())?;
    redis::wait_ready(&cli.ns, ADDRS[i], Duration::from_secs(10))?;
    Ok(idx)
}

/// One trial of `v` at `interval_ms`.
pub fn trial(ctx: &Ctx, v: Variant, interval_ms: u64) -> anyhow::Result<Trial> {
    let mut lab = Lab::new("vb")?;
    let r1 = lab.host("r1", &["192.0.2.1/24"])?;
    let r2 = lab.host("r2", &["192.0.2.2/24"])?;
    let cli = lab.host("cli", &["192.0.2.100/24"])?;
    let dir = ctx.dir.join(lab.lan());
    std::fs::create_dir_all(&dir)?;
    install_scripts(&ctx.dir)?;
    for h in [&r1, &r2] {
        lab.exec(
            &h.ns,
            &["sysctl", "-q", "-w", "net.ipv4.ip_nonlocal_bind=1"],
        )?;
    }
    let redis1 = start_redis(&mut lab, &r1, &cli, 0, &dir)?;
    start_redis(&mut lab, &r2, &cli, 1, &dir)?;
    let hosts = [&r1, &r2];
    let start = |lab: &mut Lab, i: usize| {
        let name = format!("r{}", i + 1);
        let conf = config(
            v,
            i,
            interval_ms,
            &ctx.dir,
            &dir.join(format!("{name}.sock")),
            false,
        );
        daemon::start_config(lab, v.kind(), &ctx.agent, hosts[i], &name, &conf, &dir)
    };
    let holds = |lab: &Lab, h: &Host| super::measure::held(lab, h, &[VIP.to_owned()].into());
    start(&mut lab, 0)?;
    if !wait_for(Duration::from_secs(20), Duration::from_millis(20), || {
        holds(&lab, &r1) == 1
    }) {
        let log = std::fs::read_to_string(dir.join("r1.log")).unwrap_or_default();
        let why = log
            .lines()
            .filter(|l| {
                ["FAULT", "Failed", "ERROR", "invalid"]
                    .iter()
                    .any(|w| l.contains(w))
            })
            .map(|l| l.split_once(": ").map_or(l, |(_, m)| m))
            .take(2)
            .collect::<Vec<_>>()
            .join("; ");
        // No local paths in the report: a file is named by its base name.
        let why: Vec<&str> = why
            .split(' ')
            .map(|w| {
                if w.starts_with('/') {
                    w.rsplit('/').next().unwrap_or(w)
                } else {
                    w
                }
            })
            .collect();
        let why = why.join(" ");
        bail!("r1 never took the VIP ({why})");
    }
    start(&mut lab, 1)?;
    let synced = wait_for(Duration::from_secs(20), Duration::from_millis(20), || {
        redis::replica_in_sync(&cli.ns, ADDRS[1])
    });
    if !synced {
        bail!("r2's Redis never synced from r1");
    }
    // r2's daemon is up (the agent attaches XDP first, which takes a
    // while) and BACKUP; its notify_backup runs REPLICAOF r1 again.
    let backup = || match v.kind() {
        Kind::Agent => {
            crate::demo::state_of(&ctx.agent, &lab, &r2, &dir, "r2").as_deref() == Some("BACKUP")
        }
        Kind::Keepalived => std::fs::read_to_string(dir.join("r2.log"))
            .is_ok_and(|l| l.contains("Entering BACKUP STATE")),
    };
    if !wait_for(Duration::from_secs(20), Duration::from_millis(20), backup) {
        bail!("r2 did not become BACKUP");
    }
    sleep(Duration::from_millis(3 * interval_ms + 200));
    if holds(&lab, &r1) != 1 || holds(&lab, &r2) != 0 {
        bail!("the pair did not settle with r1 as master");
    }
    let writer = Writer::start(&cli.ns, VIP, Duration::from_millis(1), v.wait())?;
    if !writer.wait_acked(300, Duration::from_secs(10)) {
        bail!(
            "writes through the VIP do not go through: {:?}",
            writer.stop()
        );
    }
    let at_kill = writer.acked();
    let t0 = Instant::now();
    lab.signal(redis1, libc::SIGKILL)?;
    // Reaped at once, as a service manager would: a zombie still matches
    // `pgrep` (keepalived's script), though not the checks of either daemon.
    let _ = lab.wait(redis1);
    let mut vip_ms = None;
    let resumed = wait_for(Duration::from_secs(20), Duration::from_millis(1), || {
        if vip_ms.is_none() && holds(&lab, &r2) == 1 && holds(&lab, &r1) == 0 {
            vip_ms = Some(t0.elapsed().as_secs_f64() * 1000.0);
        }
        writer.acked() >= at_kill + 100 && vip_ms.is_some()
    });
    let report = writer.stop();
    if !resumed {
        bail!(
            "writes did not resume within 20 s (last error {:?}); role of r2: {:?}",
            report.last_error,
            redis::role(&cli.ns, ADDRS[1])
        );
    }
    let o = report
        .outages
        .iter()
        .find(|o| o.last_acked >= at_kill)
        .context("no outage recorded at the kill")?;
    Ok(Trial {
        outage_ms: o.ms,
        lost: o.lost(),
        vip_ms,
    })
}

/// The scenario: `trials` per variant and interval, variants interleaved.
pub fn run(ctx: &Ctx, variants: &[Variant], intervals: &[u64], trials: usize) -> Runs {
    let mut runs: Runs = Vec::new();
    for &interval in intervals {
        let mut cells: Vec<(Variant, Vec<Trial>, Option<String>)> =
            variants.iter().map(|&v| (v, Vec::new(), None)).collect();
        for _ in 0..trials {
            for (v, ok, err) in &mut cells {
                if err.is_some() && ok.is_empty() {
                    // Failed outright (keepalived's vrrp_track_process in a
                    // network namespace): once is enough.
                    continue;
                }
                match trial(ctx, *v, interval) {
                    Ok(t) => {
                        eprintln!(
                            "bench: service dies, {:<48} {interval:>4} ms adverts: write outage {:>8.1} ms, lost {}",
                            v.label(),
                            t.outage_ms,
                            t.lost
                        );
                        ok.push(t);
                    }
                    Err(e) => {
                        eprintln!("bench: service dies, {} failed: {e:#}", v.label());
                        *err = Some(format!("{e:#}"));
                    }
                }
            }
        }
        runs.extend(cells.into_iter().map(|(v, ok, err)| {
            let r = match err {
                Some(e) if ok.is_empty() => Err(e),
                _ => Ok(ok),
            };
            (v, interval, r)
        }));
    }
    runs
}

/// What the check-only daemon runs.
#[derive(Clone, Copy, Debug)]
pub enum Load {
    /// 100 `tcp` checks at 100 ms.
    Tcp100,
    /// 10 `exec` checks (`redis-check.sh`) at 1 s.
    Exec10,
}

impl Load {
    fn label(self) -> &'static str {
        match self {
            Load::Tcp100 => "100 tcp checks at 100 ms",
            Load::Exec10 => "10 exec checks (redis-check.sh) at 1 s",
        }
    }
}

fn load_config(load: Load, kind: Kind, scripts: &Path, sock: &Path) -> Option<String> {
    let check = scripts.join("redis-check.sh").display().to_string();
    match (kind, load) {
        (Kind::Agent, _) => {
            let (n, body) = match load {
                Load::Tcp100 => (
                    100,
                    format!("kind = \"tcp\"\naddress = \"127.0.0.1:{PORT}\"\ninterval = \"100ms\""),
                ),
                Load::Exec10 => (
                    10,
                    format!(
                        "kind = \"exec\"\ncommand = [\"{check}\", \"{PORT}\"]\ninterval = \"1s\""
                    ),
                ),
            };
            let mut s = format!(
                "[global]\nrouter_id = \"r1\"\ncontrol_socket = \"{}\"\n",
                sock.display()
            );
            let mut track = Vec::new();
            for c in 0..n {
                let _ = write!(s, "\n[[check]]\nname = \"c{c}\"\n{body}\n");
                track.push(format!("{{ check = \"c{c}\" }}"));
            }
            let _ = write!(
                s,
                "\n[[instance]]\nname = \"REDIS\"\ninterface = \"eth0\"\nvrid = {}\npriority = {P_MASTER}\n\
                 version = 3\nadvert_interval = \"1s\"\nvirtual_ips = [\"{VIP}/24\"]\ntrack = [{}]\n",
                daemon::VRID,
                track.join(", ")
            );
            Some(s)
        }
        // keepalived's vrrp_script intervals are whole seconds, and it has
        // no TCP check in its VRRP process.
        (Kind::Keepalived, Load::Tcp100) => None,
        (Kind::Keepalived, Load::Exec10) => {
            let mut s =
                "global_defs {\n    router_id r1\n    vrrp_version 3\n    script_user root\n}\n"
                    .to_owned();
            for c in 0..10 {
                let _ = write!(
                    s,
                    "vrrp_script c{c} {{\n    script \"{check} {PORT}\"\n    interval 1\n}}\n"
                );
            }
            let track: String = (0..10).map(|c| format!("        c{c}\n")).collect();
            let _ = write!(
                s,
                "vrrp_instance REDIS {{\n    state BACKUP\n    interface eth0\n    virtual_router_id {}\n    \
                 priority {P_MASTER}\n    advert_int 1\n    virtual_ipaddress {{\n        {VIP}/24\n    }}\n    \
                 track_script {{\n{track}    }}\n}}\n",
                daemon::VRID
            );
            Some(s)
        }
    }
}

/// User + system CPU of the reaped children of every process of the group
/// (exec checks run as children), in ns (10 ms ticks).
fn children_ns(pgid: i32) -> u64 {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return 0;
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let f: Vec<&str> = s.get(s.rfind(')')? + 2..)?.split_whitespace().collect();
            // After the name: state(0) ppid(1) pgrp(2) … cutime(13) cstime(14).
            (f.get(2)?.parse::<i32>().ok()? == pgid)
                .then(|| Some(f.get(13)?.parse::<u64>().ok()? + f.get(14)?.parse::<u64>().ok()?))
                .flatten()
        })
        .sum::<u64>()
        * 10_000_000
}

/// CPU of a lone router's daemon running `load`, over `window`, in % of one
/// core, its exec children included.
pub fn check_cpu(ctx: &Ctx, kind: Kind, load: Load, window: Duration) -> anyhow::Result<f64> {
    let mut lab = Lab::new("vb")?;
    let r1 = lab.host("r1", &["192.0.2.1/24"])?;
    let cli = lab.host("cli", &["192.0.2.100/24"])?;
    let dir = ctx.dir.join(lab.lan());
    std::fs::create_dir_all(&dir)?;
    install_scripts(&ctx.dir)?;
    lab.exec(
        &r1.ns,
        &["sysctl", "-q", "-w", "net.ipv4.ip_nonlocal_bind=1"],
    )?;
    start_redis(&mut lab, &r1, &cli, 0, &dir)?;
    let conf = load_config(load, kind, &ctx.dir, &dir.join("r1.sock"))
        .with_context(|| format!("{} has no equivalent", kind.name()))?;
    let idx = daemon::start_config(&mut lab, kind, &ctx.agent, &r1, "r1", &conf, &dir)?;
    let vip: std::collections::HashSet<String> = [VIP.to_owned()].into();
    if !wait_for(Duration::from_secs(20), Duration::from_millis(50), || {
        super::measure::held(&lab, &r1, &vip) == 1
    }) {
        bail!("r1 never took the VIP");
    }
    sleep(Duration::from_secs(2));
    let pid = lab.pid(idx)?;
    let total = |p| cpu_ns(p) + children_ns(p);
    let (c0, t0) = (total(pid), Instant::now());
    sleep(window);
    let (c1, secs) = (total(pid), t0.elapsed().as_secs_f64());
    Ok(c1.saturating_sub(c0) as f64 / 1e9 / secs * 100.0)
}

/// Every check-load cell for both daemons (where keepalived has one).
pub fn run_cpu(ctx: &Ctx, window: Duration) -> CpuRuns {
    let mut out = Vec::new();
    for load in [Load::Tcp100, Load::Exec10] {
        for kind in Kind::BOTH {
            if matches!((kind, load), (Kind::Keepalived, Load::Tcp100)) {
                continue;
            }
            let r = check_cpu(ctx, kind, load, window);
            match &r {
                Ok(p) => eprintln!("bench: {:<10} {}: CPU {p:.2}%", kind.name(), load.label()),
                Err(e) => eprintln!("bench: {} {} failed: {e:#}", kind.name(), load.label()),
            }
            out.push((load.label(), kind, r.map_err(|e| format!("{e:#}"))));
        }
    }
    out
}

/// The section (markdown).
pub fn markdown(runs: &Runs, cpu: &CpuRuns) -> String {
    if runs.is_empty() && cpu.is_empty() {
        return String::new();
    }
    let mut m = String::from(
        "\n## 10. Service dies: the Redis hot standby\n\n\
         r1 (priority 200) and r2 (priority 100) each run a redis-server (r2 a replica of r1) and \
         the daemon with a health check on it and the notify scripts of `examples/redis/` \
         (`notify_master` = `REPLICAOF NO ONE`); a client writes an increasing counter through the \
         VIP every millisecond. redis-server on r1 is SIGKILLed; host and daemon stay up. \
         *Write outage*: from the client's last acknowledged write before the kill to its first \
         after (the VIP moved, r2's Redis was promoted). *Lost*: acknowledged writes the promoted \
         Redis does not have. *Kill → VIP*: until r2 alone holds the VIP. p50 / p99 / max; \
         VRRPv3; lost as max (sum over trials).\n\n\
         | variant | adverts | trials | write outage ms | kill → VIP ms | lost writes |\n\
         |---|---|---|---|---|---|\n",
    );
    for (v, interval, r) in runs {
        let adverts = if *interval >= 1000 {
            format!("{} s", interval / 1000)
        } else {
            format!("{interval} ms")
        };
        match r {
            Ok(t) => {
                let o: Vec<f64> = t.iter().map(|t| t.outage_ms).collect();
                let vip: Vec<f64> = t.iter().filter_map(|t| t.vip_ms).collect();
                let lost_max = t.iter().map(|t| t.lost).max().unwrap_or(0);
                let lost_sum: u64 = t.iter().map(|t| t.lost).sum();
                let _ = writeln!(
                    m,
                    "| {} | {adverts} | {} | {} | {} | {lost_max} ({lost_sum}) |",
                    v.label(),
                    t.len(),
                    f3(pct(&o)),
                    f3(pct(&vip))
                );
            }
            Err(e) => {
                let _ = writeln!(
                    m,
                    "| {} | {adverts} | failed: {} | | | |",
                    v.label(),
                    e.lines().next().unwrap_or("")
                );
            }
        }
    }
    m.push_str(&goals(runs));
    m.push_str(SERVICE_NOTES);
    if !cpu.is_empty() {
        m.push_str(
            "\n### The checks' own cost\n\nA lone router whose daemon runs only checks (all \
             tracked, one instance at 1 s adverts), against a local redis-server; CPU in % of one \
             core over the window, exec children included.\n\n| load | daemon | CPU % |\n|---|---|---|\n",
        );
        for (label, kind, r) in cpu {
            let v = r.as_ref().map_or_else(
                |e| format!("failed: {}", e.lines().next().unwrap_or("")),
                |p| format!("{p:.2}"),
            );
            let _ = writeln!(m, "| {label} | {} | {v} |", kind.name());
        }
        m.push_str(
            "\nkeepalived has no `tcp` check in its VRRP process and its `vrrp_script` interval \
             is whole seconds; the tutorials' `script \"</dev/tcp/127.0.0.1/6379\"` forks a shell \
             per check.\n",
        );
    }
    m
}

/// Issue 10's goals, checked on the p50 write outage at 100 ms adverts.
fn goals(runs: &Runs) -> String {
    let p50 = |want: Variant| {
        runs.iter().find_map(|(v, i, r)| {
            let t = r.as_ref().ok().filter(|_| *v == want && *i == 100)?;
            let o: Vec<f64> = t.iter().map(|t| t.outage_ms).collect();
            pct(&o).map(|p| p[0])
        })
    };
    let (Some(agent), Some(tutorial)) = (p50(Variant::AgentProcess), p50(Variant::KaScript)) else {
        return String::new();
    };
    let met = |ok: bool| if ok { "met" } else { "**not met**" };
    let mut m = format!(
        "\nGoals (issue 10, p50 at 100 ms adverts): vrrp-agent (process) at least 10x shorter \
         than the keepalived tutorial config: {:.1} vs {:.1} ms, {:.0}x, {}; under 100 ms: {}",
        agent,
        tutorial,
        tutorial / agent.max(1e-9),
        met(agent * 10.0 <= tutorial),
        met(agent < 100.0)
    );
    if let Some(best) = p50(Variant::KaPgrep) {
        let _ = write!(
            m,
            "; shorter than keepalived's best that runs here (pgrep): {agent:.1} vs {best:.1} ms, {}",
            met(agent < best)
        );
    }
    m.push_str(".\n");
    m
}

const SERVICE_NOTES: &str = "\n\
**keepalived's `vrrp_track_process`** listens to the kernel's process-events connector, which \
only the initial network namespace receives: in a namespace keepalived 2.2.7 logs `Failed to \
set/clear process event listen - errno 111` and the instance stays in FAULT (\"tracked process \
quorum not achieved\"). It cannot run in this lab, nor in a container with a network namespace \
of its own. On a host it learns of the exit at once, as the agent's pidfd does (not measured \
here). The `pgrep -x` row is the fastest process check keepalived can run here \
(`vrrp_script` intervals are whole seconds).\n\n\
**What asynchronous replication costs.** Redis acknowledges a write before its replica has \
it. When the master dies, writes it acknowledged in the last moment (in flight to the replica, \
or still in its output buffer) are not on the replica that is promoted: the *lost* column. A \
faster failover does not change that number, a slower one only adds outage. In this lab it is 0 \
in every trial: Redis queues a write for the replica in the same event-loop iteration as the \
reply to the client, and the kernel still delivers what a SIGKILLed process had written to its \
sockets, so a crash loses only what the replica had not been sent, here less than a millisecond. \
The loss appears when the replica lags (a slow or lossy link, a busy replica, a partition instead \
of a crash), which this scenario does not create. \
`min-replicas-to-write 1` with `min-replicas-max-lag N` makes the master refuse writes when no \
replica has acknowledged within N seconds: it bounds the loss to about N seconds of writes (and \
costs availability when the replica is down), it does not make it zero. A client that must not \
lose a write sends `WAIT 1 <ms>` after it and treats a reply of 0 as not replicated (retry, or \
report it). In the `WAIT 1 100` row the client sends `WAIT 1 100` after every write, and *lost* \
counts only the writes WAIT confirmed on the replica: none can be lost, since the promoted \
replica has each of them. The price: a replica round trip per write, and after the failover the \
new master has no replica, so every WAIT times out (100 ms) until the old node rejoins: writes \
still succeed, unconfirmed. That is also why its *write outage* is longer: the first write \
after the failover is acknowledged only once its WAIT has timed out.\n";

/// The section (JSON).
pub fn json(runs: &Runs, cpu: &CpuRuns) -> Value {
    let err = |e: &String| json!({ "error": e });
    json!({
        "service_dies": runs.iter().map(|(v, interval, r)| json!({
            "variant": v.key(), "label": v.label(), "interval_ms": interval,
            "trials": r.as_ref().map_or_else(err, |t| Value::from(t.iter().map(|t| json!({
                "write_outage_ms": t.outage_ms, "lost_writes": t.lost, "kill_to_vip_ms": t.vip_ms,
            })).collect::<Vec<_>>())),
        })).collect::<Vec<_>>(),
        "check_cpu": cpu.iter().map(|(label, k, r)| json!({
            "load": label, "daemon": k.name(),
            "cpu_pct": r.as_ref().map_or_else(err, |p| json!(p)),
        })).collect::<Vec<_>>(),
    })
}
