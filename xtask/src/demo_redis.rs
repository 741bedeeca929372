//! `cargo xtask demo redis`: the Redis hot standby, watched.
//!
//! Two nodes and a client on one bridge, each in its own network namespace.
//! Each node runs a redis-server (r2's replicates from r1's) and vrrp-agent
//! with a `process` check on its Redis, nopreempt, and the notify scripts of
//! `examples/redis/`. The client writes an increasing counter through the
//! VIP every millisecond. We SIGKILL redis-server on the master (the host
//! and the agent stay up), show how long the client could not write and how
//! many acknowledged writes the promoted replica did not have, then bring
//! the old Redis back and watch it rejoin as a replica while the VIP stays.

use std::{
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use tests::redis::{self, Writer};

use crate::{
    bench::{
        daemon::{self, Kind, VIP},
        service::{self, ADDRS, Variant},
    },
    demo::{prepare, state_of, step},
    lab::{Host, Lab},
};

const INTERVAL_MS: u64 = 100;

pub fn run() -> anyhow::Result<()> {
    let (agent, mut lab, [r1, r2, cli]) = prepare()?;
    let nodes = [&r1, &r2];
    let dir = std::env::temp_dir().join(format!("vrrp-demo-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = story(&mut lab, &agent, nodes, &cli, &dir);
    step("Cleaning up (agents and Redis stopped, namespaces removed)");
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    println!(
        "\nDone: Redis died on r1, r2 took the VIP and was promoted, and r1 came back as its replica."
    );
    Ok(())
}

fn story(
    lab: &mut Lab,
    agent: &std::path::Path,
    nodes: [&Host; 2],
    cli: &Host,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    service::install_scripts(dir)?;
    for h in nodes {
        // Redis listens on the VIP before its host holds it.
        lab.exec(
            &h.ns,
            &["sysctl", "-q", "-w", "net.ipv4.ip_nonlocal_bind=1"],
        )?;
    }
    step("Starting redis-server on r1 (master) and r2 (replica of r1)");
    let redis1 = service::start_redis(lab, nodes[0], cli, 0, dir)?;
    service::start_redis(lab, nodes[1], cli, 1, dir)?;
    if !wait(Duration::from_secs(20), || {
        redis::replica_in_sync(&cli.ns, ADDRS[1])
    }) {
        bail!("r2's Redis never synced from r1");
    }

    step(&format!(
        "Starting vrrp-agent on both ({INTERVAL_MS} ms adverts, VIP {VIP}, `process` check on redis-server, nopreempt)"
    ));
    let start = |lab: &mut Lab, i: usize| {
        let name = format!("r{}", i + 1);
        let sock = dir.join(format!("{name}.sock"));
        let conf = service::config(Variant::AgentProcess, i, INTERVAL_MS, dir, &sock, true);
        daemon::start_config(lab, Kind::Agent, agent, nodes[i], &name, &conf, dir)
    };
    start(lab, 0)?;
    let state = |lab: &Lab, i: usize| {
        state_of(agent, lab, nodes[i], dir, &format!("r{}", i + 1)).unwrap_or_else(|| "?".into())
    };
    if !wait(Duration::from_secs(20), || state(lab, 0) == "MASTER") {
        bail!("r1 did not become MASTER; see {}/r1.log", dir.display());
    }
    start(lab, 1)?;
    if !wait(Duration::from_secs(20), || state(lab, 1) == "BACKUP") {
        bail!("r2 did not become BACKUP; see {}/r2.log", dir.display());
    }
    roles(lab, &state, cli);

    step("The client writes `SET counter N` through the VIP every millisecond");
    let writer = Writer::start(&cli.ns, VIP, Duration::from_millis(1), None)?;
    rates(&writer, 2);

    step("SIGKILL redis-server on r1 (its host and its agent stay up)");
    let at_kill = writer.acked();
    let t0 = Instant::now();
    lab.signal(redis1, libc::SIGKILL)?;
    let _ = lab.wait(redis1);
    let (mut fault, mut master, mut promoted) = (None, None, None);
    let resumed = wait(Duration::from_secs(10), || {
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        if fault.is_none() && state(lab, 0) == "FAULT" {
            fault = Some(ms);
        }
        if master.is_none() && state(lab, 1) == "MASTER" {
            master = Some(ms);
        }
        if promoted.is_none() && redis::role(&cli.ns, ADDRS[1]).as_deref() == Some("master") {
            promoted = Some(ms);
        }
        writer.acked() > at_kill + 100 && promoted.is_some()
    });
    let show = |what: &str, t: Option<f64>| match t {
        Some(ms) => println!("    {ms:>7.1} ms  {what}"),
        None => println!("       ---     {what}: not seen"),
    };
    show(
        "r1's agent: FAULT (process check failed; priority-0 advert, VIP released)",
        fault,
    );
    show("r2's agent: MASTER (VIP added, gratuitous ARP)", master);
    show(
        "r2's Redis: master (notify_master ran REPLICAOF NO ONE)",
        promoted,
    );
    if !resumed {
        bail!(
            "writes did not resume through the VIP; see the logs in {}",
            dir.display()
        );
    }
    rates(&writer, 2);

    step("redis-server on r1 comes back (empty, as a master)");
    service::start_redis(lab, nodes[0], cli, 0, dir)?;
    let rejoined = wait(Duration::from_secs(20), || {
        state(lab, 0) == "BACKUP"
            && redis::role(&cli.ns, ADDRS[0]).as_deref() == Some("slave")
            && redis::replica_in_sync(&cli.ns, ADDRS[0])
    });
    if !rejoined {
        bail!(
            "r1 did not rejoin as a replica; see {}/r1.log",
            dir.display()
        );
    }
    println!("    r1's agent left FAULT as BACKUP; notify_backup made its Redis a replica of r2");
    sleep(Duration::from_secs(1));
    roles(lab, &state, cli);

    let report = writer.stop();
    let o = report
        .outages
        .iter()
        .find(|o| o.last_acked >= at_kill)
        .context("the client saw no write outage")?;
    step("What the client saw");
    println!(
        "    write outage: {:.1} ms (last acknowledged write before the kill to the first after)",
        o.ms
    );
    println!(
        "    acknowledged writes lost: {} (Redis replicates asynchronously: writes r1 acknowledged \
         but had not sent to r2 yet; `WAIT 1 <ms>` after a write closes that gap)",
        o.lost()
    );
    println!("    writes acknowledged in all: {}", report.acked);
    Ok(())
}

fn wait(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if f() {
            return true;
        }
        sleep(Duration::from_millis(5));
    }
    false
}

/// Each node's agent state and Redis role, and who holds the VIP.
fn roles(lab: &Lab, state: &dyn Fn(&Lab, usize) -> String, cli: &Host) {
    for (i, addr) in ADDRS.iter().enumerate() {
        let role = redis::role(&cli.ns, addr).unwrap_or_else(|| "down".into());
        println!("    r{}: agent {:<7} redis {role}", i + 1, state(lab, i));
    }
    let counters: Vec<String> = ADDRS
        .iter()
        .map(|addr| redis::counter(&cli.ns, addr).map_or("-".into(), |c| c.to_string()))
        .collect();
    println!("    counter on r1 / r2: {}", counters.join(" / "));
}

/// Prints the acknowledged writes per second for `secs` seconds.
fn rates(writer: &Writer, secs: u32) {
    for _ in 0..secs {
        let before = writer.acked();
        sleep(Duration::from_secs(1));
        println!(
            "    {:>5} writes/s  (counter {})",
            writer.acked() - before,
            writer.acked()
        );
    }
}
