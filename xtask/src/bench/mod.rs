//! `cargo xtask bench`: vrrp-agent side by side with keepalived.
//!
//! `bench` (and `bench --quick`, a reduced run that `cargo xtask test` uses
//! so the harness never rots) builds the agent in release mode and runs it
//! and keepalived in identical network-namespace labs: failover when the
//! master host dies, graceful handover, the takeover path, steady-state CPU
//! and RSS, a flood of invalid VRRP at a backup, the fault table (issue 9's
//! scenarios, [`faults`]), start to first advert and a mass failover
//! ([`mass`]). It writes `bench-report/report.md`, `results.json` and
//! `failover.svg`. `--only faults,mass` runs just the named sections.
//!
//! `bench xdp` builds and runs the `xdp_bench` example of the `tests` crate
//! (which loads the XDP objects with aya and times them by
//! BPF_PROG_TEST_RUN), so xtask itself does not depend on aya.

mod chart;
pub(crate) mod daemon;
mod faults;
mod mass;
pub(crate) mod measure;
mod report;
pub(crate) mod service;
mod wire;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use daemon::{Kind, Setup};
use measure::{Ctx, How};
pub use report::Results;

/// Arguments of `cargo xtask bench`.
#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    which: Option<Which>,
    /// A reduced run (few trials, short windows) that finishes in under two minutes.
    #[arg(long)]
    quick: bool,
    /// Where the report goes (default: `bench-report/` in the workspace;
    /// `--quick` defaults to `<target dir>/bench-quick/` so it never
    /// overwrites the committed full report).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only these sections (comma-separated: failover, steady, flood,
    /// xdp, faults, start, mass); the report holds just those.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

#[derive(Subcommand)]
enum Which {
    /// XDP per-packet cost by BPF_PROG_TEST_RUN, against an empty XDP_PASS baseline.
    Xdp,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.which {
        Some(Which::Xdp) => xdp().map(drop),
        None => compare(args.quick, args.out, &args.only),
    }
}

/// Runs the quick comparison (for `cargo xtask test`).
pub fn quick() -> anyhow::Result<()> {
    compare(true, None, &[])
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn need_root(what: &str) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("{what} needs root (network namespaces, raw sockets, XDP)");
    }
    Ok(())
}

/// How much of everything a run does.
struct Plan {
    /// Trials of the host-dies failover at 1 s (v2), 100 ms, 10 ms.
    kill: [usize; 3],
    /// Trials with 100 VIPs (takeover path).
    kill_100: usize,
    /// Graceful-stop trials at 100 ms and 10 ms.
    stop: usize,
    /// Steady-state cells: (version, interval ms).
    steady_intervals: Vec<(u8, u64)>,
    /// Steady-state window.
    window: Duration,
    /// Flood duration.
    flood: Duration,
    /// Run `bench xdp` too.
    xdp: bool,
    /// Fault scenarios and runs of each per daemon.
    faults: (Vec<faults::Scenario>, usize),
    /// How long the loss scenario drops adverts.
    loss_window: Duration,
    /// Start-to-first-advert trials per daemon.
    start: usize,
    /// Mass failover: instances (4 VIPs each) and trials per daemon.
    mass: (u8, usize),
    /// Service dies (Redis): variants, advert intervals (ms), trials each.
    service: (Vec<service::Variant>, Vec<u64>, usize),
    /// The checks' own CPU cost: the window, if measured.
    check_cpu: Option<Duration>,
}

/// Offered flood rate; the report gives the achieved rate per daemon.
const FLOOD_PPS: u64 = 300_000;

/// Sections `--only` accepts.
const SECTIONS: [&str; 8] = [
    "failover", "steady", "flood", "xdp", "faults", "start", "mass", "service",
];

fn compare(quick: bool, out: Option<PathBuf>, only: &[String]) -> anyhow::Result<()> {
    if let Some(bad) = only.iter().find(|o| !SECTIONS.contains(&o.as_str())) {
        bail!(
            "--only: no section {bad:?} (sections: {})",
            SECTIONS.join(", ")
        );
    }
    crate::setup::run()?;
    need_root("cargo xtask bench")?;
    let started = Instant::now();
    let plan = if quick {
        Plan {
            kill: [1, 3, 3],
            kill_100: 2,
            stop: 2,
            steady_intervals: vec![(3, 10)],
            window: Duration::from_secs(2),
            flood: Duration::from_millis(1500),
            xdp: false,
            faults: (vec![faults::Scenario::Starve], 1),
            loss_window: Duration::from_secs(3),
            start: 1,
            mass: (16, 1),
            service: (
                vec![service::Variant::KaScript, service::Variant::AgentProcess],
                vec![100],
                1,
            ),
            check_cpu: None,
        }
    } else {
        Plan {
            kill: [5, 20, 20],
            kill_100: 20,
            stop: 10,
            steady_intervals: vec![(2, 1000), (3, 100), (3, 10)],
            window: Duration::from_secs(10),
            flood: Duration::from_secs(6),
            xdp: true,
            faults: (faults::Scenario::ALL.to_vec(), 2),
            loss_window: Duration::from_secs(10),
            start: 10,
            mass: (255, 3),
            service: (service::Variant::ALL.to_vec(), vec![100, 1000], 5),
            check_cpu: Some(Duration::from_secs(10)),
        }
    };
    let out = out.unwrap_or_else(|| {
        if quick {
            target_dir().join("bench-quick")
        } else {
            workspace_root().join("bench-report")
        }
    });
    if std::env::var_os("AYA_BUILD_SKIP").is_some() {
        eprintln!("bench: ignoring AYA_BUILD_SKIP: the agent is benchmarked with its XDP program");
        // SAFETY: no other thread exists yet in this process (nothing has
        // been spawned), so nothing reads the environment concurrently.
        unsafe { std::env::remove_var("AYA_BUILD_SKIP") };
    }
    eprintln!("bench: building vrrp-agent (release)");
    let agent = crate::demo::build_agent()?;
    let scratch = Scratch::new()?;
    let ctx = Ctx {
        agent: agent.clone(),
        dir: scratch.0.clone(),
    };
    let mut res = Results::new(quick, &agent);
    let wants = |section: &str| only.is_empty() || only.iter().any(|o| o == section);
    eprintln!("bench: CPU {}", report::cpu_model());

    // 1-3: failover, graceful stop, takeover path.
    let cells: Vec<(How, Setup, usize)> = vec![
        (How::Kill, Setup::single(2, 1000, 0), plan.kill[0]),
        (How::Kill, Setup::single(3, 100, 0), plan.kill[1]),
        (How::Kill, Setup::single(3, 10, 0), plan.kill[2]),
        (How::Kill, Setup::single(3, 100, 99), plan.kill_100),
        (How::Stop, Setup::single(3, 100, 0), plan.stop),
        (How::Stop, Setup::single(3, 10, 0), plan.stop),
    ];
    for (how, setup, trials) in cells.into_iter().filter(|_| wants("failover")) {
        for kind in Kind::BOTH {
            let r = measure::failover(&ctx, kind, &setup, how, trials);
            if let Err(e) = &r {
                eprintln!("bench: {} {how:?} failed: {e:#}", kind.name());
            }
            res.failover(how, &setup, kind, r.map_err(|e| format!("{e:#}")));
        }
    }
    // 4: steady state.
    for &(version, interval) in plan.steady_intervals.iter().filter(|_| wants("steady")) {
        for n in [1u8, 255] {
            let setup = if n == 1 {
                Setup::single(version, interval, 0)
            } else {
                Setup::many(version, interval, n)
            };
            for kind in Kind::BOTH {
                let r = measure::steady(&ctx, kind, &setup, plan.window);
                match &r {
                    Ok(s) => eprintln!(
                        "bench: {:<10} steady {n:>3} x {interval:>4} ms: master {:.2}% {} KiB, backup {:.2}% {} KiB{}",
                        kind.name(),
                        s.master_cpu,
                        s.master_rss,
                        s.backup_cpu,
                        s.backup_rss,
                        if s.stable { "" } else { " (UNSTABLE)" }
                    ),
                    Err(e) => eprintln!("bench: {} steady failed: {e:#}", kind.name()),
                }
                res.steady(&setup, kind, r.map_err(|e| format!("{e:#}")));
            }
        }
    }
    // 5: flood at a backup.
    let setup = Setup::single(3, 100, 0);
    for kind in Kind::BOTH.into_iter().filter(|_| wants("flood")) {
        let r = measure::flood_backup(&ctx, kind, &setup, FLOOD_PPS, plan.flood);
        match &r {
            Ok(f) => eprintln!(
                "bench: {:<10} flood {:.0} pps: backup CPU {:.1}%, false adverts {}, handover {:?} ms",
                kind.name(),
                f.pps,
                f.backup_cpu,
                f.false_adverts,
                f.handover_ms
            ),
            Err(e) => eprintln!("bench: {} flood failed: {e:#}", kind.name()),
        }
        res.flood(kind, r.map_err(|e| format!("{e:#}")));
    }
    // 6: XDP per-packet costs.
    // 7-9: faults, start-up, mass failover (issue 9).
    if wants("faults") {
        res.faults = run_faults(&ctx, &plan);
    }
    if wants("start") {
        res.start = rounds(plan.start, |kind| {
            let r = mass::start_once(&ctx, kind);
            match &r {
                Ok(v) => eprintln!("bench: {:<10} start to first advert {v:.2} ms", kind.name()),
                Err(e) => eprintln!("bench: {} start failed: {e:#}", kind.name()),
            }
            r
        });
    }
    if wants("mass") {
        let (n, trials) = plan.mass;
        res.mass = rounds(trials, |kind| {
            let r = mass::mass_once(&ctx, kind, n);
            match &r {
                Ok(t) => eprintln!(
                    "bench: {:<10} mass failover {n} x 4 VIPs: {}/{} announced, last {:.2} ms after the deadline",
                    kind.name(),
                    t.announce_ms.len(),
                    t.vips,
                    t.announce_ms.iter().copied().fold(f64::NAN, f64::max)
                ),
                Err(e) => eprintln!("bench: {} mass failover failed: {e:#}", kind.name()),
            }
            r
        });
    }
    if wants("service") {
        let (variants, intervals, trials) = &plan.service;
        res.service = service::run(&ctx, variants, intervals, *trials);
        if let Some(window) = plan.check_cpu {
            res.check_cpu = service::run_cpu(&ctx, window);
        }
    }
    if plan.xdp && wants("xdp") {
        match xdp() {
            Ok(t) => res.xdp = Some(t),
            Err(e) => eprintln!("bench: bench xdp failed: {e:#}"),
        }
    }
    res.elapsed_s = started.elapsed().as_secs_f64();
    drop(scratch);
    res.write(&out)?;
    println!("{}", res.summary_table());
    println!("report: {}", out.join("report.md").display());
    if let Some(e) = res.first_error() {
        bail!("some benchmarks failed (see the report): {e}");
    }
    Ok(())
}

/// `trials` rounds of `f` for each daemon, interleaved (agent, keepalived,
/// agent, …); a daemon whose every trial failed gets the last error.
fn rounds<T>(
    trials: usize,
    mut f: impl FnMut(Kind) -> anyhow::Result<T>,
) -> Vec<(Kind, Result<Vec<T>, String>)> {
    let mut got: Vec<(Kind, Vec<T>, Option<String>)> =
        Kind::BOTH.iter().map(|&k| (k, Vec::new(), None)).collect();
    for _ in 0..trials {
        for (kind, ok, err) in &mut got {
            match f(*kind) {
                Ok(v) => ok.push(v),
                Err(e) => *err = Some(format!("{e:#}")),
            }
        }
    }
    got.into_iter()
        .map(|(k, ok, err)| match err {
            Some(e) if ok.is_empty() => (k, Err(e)),
            _ => (k, Ok(ok)),
        })
        .collect()
}

/// The fault table: every scenario of the plan, runs interleaved by daemon.
fn run_faults(ctx: &Ctx, plan: &Plan) -> faults::Runs {
    let (scenarios, runs) = &plan.faults;
    scenarios
        .iter()
        .flat_map(|&sc| {
            rounds(*runs, |kind| {
                let r = faults::run(ctx, kind, sc, plan.loss_window);
                eprintln!("{}", faults::line(sc, kind, &r));
                r
            })
            .into_iter()
            .map(move |(k, r)| (sc, k, r))
        })
        .collect()
}

/// Configs and logs of one run (`/tmp/vrrp-bench-<pid>`), removed on drop;
/// creating one also removes those of runs whose process is gone.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Scratch> {
        let tmp = std::env::temp_dir();
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            for e in rd.filter_map(Result::ok) {
                let name = e.file_name();
                let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("vrrp-bench-")) else {
                    continue;
                };
                if pid.parse::<u32>().is_ok() && !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = tmp.join(format!("vrrp-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the XDP per-packet benchmark; returns its table.
fn xdp() -> anyhow::Result<String> {
    crate::setup::run()?;
    need_root("bench xdp (BPF_PROG_TEST_RUN)")?;
    let root = workspace_root();
    println!("building and running the xdp_bench example (release)...");
    let out = Command::new(env!("CARGO"))
        .current_dir(&root)
        .env_remove("AYA_BUILD_SKIP")
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "tests",
            "--example",
            "xdp_bench",
        ])
        .output()
        .context("running cargo")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{stdout}");
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        bail!("xdp_bench failed ({})", out.status);
    }
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let report = dir.join("xdp.md");
    std::fs::write(&report, format!("# XDP per-packet cost\n\n{stdout}"))
        .with_context(|| format!("writing {}", report.display()))?;
    println!("report: {}", report.display());
    Ok(stdout)
}
