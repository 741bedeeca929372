//! The measurements: failover (host dies), graceful stop, takeover path,
//! steady-state cost, and a flood at a backup. Every cell runs in a fresh
//! lab (bridge + r1 + r2 + client) with the same daemon on both routers: r1
//! at priority 200 (the master), r2 at priority 100 (the backup).

use std::{
    collections::HashSet,
    net::Ipv4Addr,
    path::PathBuf,
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::{
    daemon::{self, Kind, Setup, VIP, VRID},
    wire::{Capture, Prober, Seen, flood, now_ns},
};
use crate::lab::{Host, Lab};

/// Priorities of the two routers.
pub const P_MASTER: u8 = 200;
/// The backup's priority (Skew_Time and Master_Down_Interval use it).
pub const P_BACKUP: u8 = 100;

const R1_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const R2_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// Shared settings.
pub struct Ctx {
    /// The release vrrp-agent binary.
    pub agent: PathBuf,
    /// Where configs and logs go (removed at the end).
    pub dir: PathBuf,
}

pub(super) fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

/// Processes of a process group (a daemon started by [`Lab::spawn`], with
/// every process it forked).
fn group(pgid: i32) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| stat_fields(*pid).is_some_and(|f| f.get(2) == Some(&pgid.to_string())))
        .collect()
}

/// Fields of /proc/<pid>/stat after the command name (state is field 0).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// CPU time of every thread of every process of the group, in ns: the
/// scheduler's run time from `/proc/<pid>/task/<tid>/schedstat` (ns
/// resolution), or utime + stime from `/proc/<pid>/stat` (10 ms ticks) where
/// schedstat is missing.
pub(super) fn cpu_ns(pgid: i32) -> u64 {
    group(pgid)
        .iter()
        .map(|&p| {
            let sched: Option<u64> =
                std::fs::read_dir(format!("/proc/{p}/task"))
                    .ok()
                    .and_then(|rd| {
                        rd.filter_map(Result::ok)
                            .map(|t| {
                                let s = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
                                s.split_whitespace().next()?.parse::<u64>().ok()
                            })
                            .sum::<Option<u64>>()
                    });
            sched.unwrap_or_else(|| {
                stat_fields(p)
                    .and_then(|f| {
                        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
                    })
                    .map_or(0, |ticks| ticks * 10_000_000)
            })
        })
        .sum()
}

/// VmRSS of every process of the group, in KiB.
fn rss_kib(pgid: i32) -> u64 {
    group(pgid)
        .iter()
        .filter_map(|&p| {
            let s = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}

/// How many of `vips` (IPv4 or IPv6) `host` holds on eth0.
pub(super) fn held(lab: &Lab, host: &Host, vips: &HashSet<String>) -> usize {
    let Ok(out) = lab.ip(&host.ns, &["-o", "addr", "show", "dev", "eth0"]) else {
        return 0;
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.get(3)?.split('/').next().map(str::to_owned)
        })
        .filter(|a| vips.contains(a))
        .count()
}

pub(super) fn wait_for(timeout: Duration, step: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if f() {
            return true;
        }
        sleep(step);
    }
    false
}

/// A lab with r1, r2 and a client, running `kind` on both routers.
pub(super) struct Pair {
    pub(super) lab: Lab,
    pub(super) r1: Host,
    pub(super) r2: Host,
    pub(super) cli: Host,
    kind: Kind,
    pub(super) setup: Setup,
    pub(super) r1_idx: Option<usize>,
    pub(super) r2_idx: usize,
    pub(super) dir: PathBuf,
    pub(super) starts: u32,
}

impl Pair {
    /// The lab, r2 started first, then r1 (r1 then preempts).
    fn new(ctx: &Ctx, tag: &str, kind: Kind, setup: Setup) -> anyhow::Result<Pair> {
        Self::build(ctx, tag, kind, setup, false)
    }

    /// The lab with r1 started first and r2 only once r1 holds every VIP,
    /// so that many instances do not all hold an election at once.
    pub(super) fn new_master_first(
        ctx: &Ctx,
        tag: &str,
        kind: Kind,
        setup: Setup,
    ) -> anyhow::Result<Pair> {
        Self::build(ctx, tag, kind, setup, true)
    }

    fn build(
        ctx: &Ctx,
        tag: &str,
        kind: Kind,
        setup: Setup,
        master_first: bool,
    ) -> anyhow::Result<Pair> {
        let mut lab = Lab::new(tag)?;
        let r1 = lab.host("r1", &["192.0.2.1/24"])?;
        let r2 = lab.host("r2", &["192.0.2.2/24"])?;
        let cli = lab.host("cli", &["192.0.2.100/24"])?;
        let dir = ctx.dir.join(lab.lan());
        std::fs::create_dir_all(&dir)?;
        let mut r1_idx = None;
        if master_first {
            r1_idx = Some(daemon::start(
                &mut lab, kind, &ctx.agent, &r1, "r1-1", &setup, P_MASTER, &dir,
            )?);
            let vips: HashSet<String> = setup.all_vips().into_iter().collect();
            let t = Duration::from_secs(20) + Duration::from_millis(setup.interval_ms * 5);
            if !wait_for(t, Duration::from_millis(50), || {
                held(&lab, &r1, &vips) == vips.len()
            }) {
                eprintln!("bench: {}: r1 alone did not take every VIP", kind.name());
            }
        }
        let r2_idx = daemon::start(
            &mut lab, kind, &ctx.agent, &r2, "r2", &setup, P_BACKUP, &dir,
        )?;
        let mut pair = Pair {
            lab,
            r1,
            r2,
            cli,
            kind,
            setup,
            r1_idx,
            r2_idx,
            dir,
            starts: u32::from(master_first),
        };
        if !master_first {
            pair.start_r1(ctx)?;
        }
        Ok(pair)
    }

    pub(super) fn start_r1(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        // Whatever the killed daemon left behind goes: a fresh host.
        let ns = self.r1.ns.clone();
        self.lab.ip(&ns, &["addr", "flush", "dev", "eth0"])?;
        self.lab
            .ip(&ns, &["addr", "add", "192.0.2.1/24", "dev", "eth0"])?;
        self.lab.ip(&ns, &["link", "set", "eth0", "up"])?;
        self.starts += 1;
        let name = format!("r1-{}", self.starts);
        let idx = daemon::start(
            &mut self.lab,
            self.kind,
            &ctx.agent,
            &self.r1,
            &name,
            &self.setup,
            P_MASTER,
            &self.dir,
        )?;
        self.r1_idx = Some(idx);
        Ok(())
    }

    fn vips(&self) -> HashSet<String> {
        self.setup.all_vips().into_iter().collect()
    }

    /// r1 holds every VIP, r2 none.
    pub(super) fn converged(&self) -> bool {
        let vips = self.vips();
        held(&self.lab, &self.r1, &vips) == vips.len() && held(&self.lab, &self.r2, &vips) == 0
    }

    pub(super) fn log_tail(&self) -> String {
        let mut out = String::new();
        for f in ["r2.log".to_owned(), format!("r1-{}.log", self.starts)] {
            let text = std::fs::read_to_string(self.dir.join(&f)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!(
                "--- {f} ---\n{}\n",
                lines[lines.len().saturating_sub(10)..].join("\n")
            ));
        }
        out
    }
}

/// What ended a master's life in a trial.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum How {
    /// SIGKILL to the daemon and its link down.
    Kill,
    /// SIGTERM (priority-0 advert).
    Stop,
}

/// One failover or handover.
#[derive(Clone, Debug, Default)]
pub struct Trial {
    /// Last advert of r1 (Kill) or its priority-0 advert (Stop) to the first
    /// advert of r2, from the capture.
    pub detect_ms: f64,
    /// What the RFC allows for it: Master_Down_Interval (Kill) or
    /// Skew_Time (Stop).
    pub bound_ms: f64,
    /// Longest gap between two ICMP replies the client got.
    pub outage_ms: Option<f64>,
    /// First gratuitous ARP from r2, after the RFC deadline.
    pub first_garp_ms: Option<f64>,
    /// The first gratuitous ARP for the last of the VIPs, after the deadline.
    pub all_garp_ms: Option<f64>,
}

impl Trial {
    /// First advert after the RFC deadline (positive = late).
    pub fn late_ms(&self) -> f64 {
        self.detect_ms - self.bound_ms
    }

    /// As JSON.
    pub fn json(&self) -> Value {
        json!({
            "detect_ms": self.detect_ms, "bound_ms": self.bound_ms,
            "late_ms": self.late_ms(), "outage_ms": self.outage_ms,
            "first_garp_after_deadline_ms": self.first_garp_ms,
            "all_garp_after_deadline_ms": self.all_garp_ms,
        })
    }
}

/// Runs `trials` failovers (or handovers) of `kind` with `setup`.
pub fn failover(
    ctx: &Ctx,
    kind: Kind,
    setup: &Setup,
    how: How,
    trials: usize,
) -> anyhow::Result<Vec<Trial>> {
    let mut pair = Pair::new(ctx, "vb", kind, setup.clone())?;
    let cap = Capture::start(pair.lab.lan(), "br0")?;
    let vip: Ipv4Addr = VIP.parse()?;
    let probe = Prober::start(&pair.cli.ns, vip, Duration::from_micros(500))?;
    let interval = Duration::from_millis(setup.interval_ms);
    let mdi = setup.master_down_ms(P_BACKUP);
    let skew = setup.skew_ms(P_BACKUP);
    let r2_mac = daemon::parse_mac(&pair.r2.mac)?;
    let vips: HashSet<Ipv4Addr> = setup
        .all_vips()
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    let mut out = Vec::new();
    let mut failures = 0;
    while out.len() < trials {
        if failures > 3 {
            bail!(
                "{}: too many failed trials\n{}",
                kind.name(),
                pair.log_tail()
            );
        }
        if pair.r1_idx.is_none() {
            pair.start_r1(ctx)?;
        }
        // Steady state: r1 master with every VIP, r2 backup, the client
        // answered, and r2 heard a few adverts since.
        let settle = Duration::from_secs(10) + interval * 8;
        let ok = wait_for(settle, Duration::from_millis(5), || {
            let now = now_ns();
            let recent = |src: Ipv4Addr, within: Duration| {
                cap.snapshot().iter().rev().any(|s| match *s {
                    Seen::Advert {
                        t, src: s, vrid, ..
                    } => s == src && vrid == VRID && now - t < within.as_nanos() as i64,
                    _ => false,
                })
            };
            let answered = probe
                .replies()
                .last()
                .is_some_and(|&t| now - t < 20_000_000);
            recent(R1_IP, interval * 2)
                && !recent(R2_IP, interval * 4)
                && answered
                && pair.converged()
        });
        if !ok {
            failures += 1;
            eprintln!(
                "bench: {} did not settle (r1 master, r2 backup); retrying",
                kind.name()
            );
            if let Some(i) = pair.r1_idx.take() {
                let _ = pair.lab.signal_group(i, libc::SIGKILL);
                let _ = pair.lab.wait(i);
            }
            continue;
        }
        sleep(interval * 2 + Duration::from_millis(20));
        cap.clear();
        sleep(interval * 2);
        // Act right after an advert of r1: the same phase of the advert
        // cycle for every trial and both daemons, and the worst case for the
        // client (the backup waits the whole Master_Down_Interval).
        let _ = cap.next_advert_from(R1_IP, interval * 3);
        let r1 = pair.r1_idx.take().context("r1 not running")?;
        let t0 = now_ns();
        match how {
            How::Kill => {
                pair.lab.signal_group(r1, libc::SIGKILL)?;
                pair.lab.ip(&pair.r1.ns, &["link", "set", "eth0", "down"])?;
            }
            How::Stop => pair.lab.signal(r1, libc::SIGTERM)?,
        }
        let first_r2 = || {
            cap.snapshot().iter().find_map(|s| match *s {
                Seen::Advert { t, src, vrid, .. } if src == R2_IP && vrid == VRID && t > t0 => {
                    Some(t)
                }
                _ => None,
            })
        };
        let took = wait_for(
            Duration::from_millis((mdi * 3.0) as u64) + Duration::from_secs(3),
            Duration::from_millis(1),
            || first_r2().is_some(),
        );
        // The client gets answers again, and the GARP burst is over.
        let _ = wait_for(Duration::from_secs(3), Duration::from_millis(2), || {
            first_r2().is_some_and(|f| probe.replies().last().is_some_and(|&r| r > f))
        });
        sleep(Duration::from_millis(60));
        // r1 is gone (reap it; a stopping daemon gets a few seconds).
        if how == How::Stop
            && !wait_for(Duration::from_secs(5), Duration::from_millis(5), || {
                pair.lab.exited(r1)
            })
        {
            let _ = pair.lab.signal_group(r1, libc::SIGKILL);
        }
        let _ = pair.lab.wait(r1);
        let Some(first) = first_r2() else {
            failures += 1;
            eprintln!("bench: {}: r2 did not take over; retrying", kind.name());
            continue;
        };
        let _ = took;
        let seen = cap.snapshot();
        let (start, bound) = match how {
            How::Kill => {
                let last = seen.iter().rev().find_map(|s| match *s {
                    Seen::Advert { t, src, vrid, .. }
                        if src == R1_IP && vrid == VRID && t < first =>
                    {
                        Some(t)
                    }
                    _ => None,
                });
                (last, mdi)
            }
            How::Stop => {
                let p0 = seen.iter().find_map(|s| match *s {
                    Seen::Advert {
                        t, src, vrid, prio, ..
                    } if src == R1_IP && vrid == VRID && prio == 0 => Some(t),
                    _ => None,
                });
                (p0, skew)
            }
        };
        let Some(start) = start else {
            failures += 1;
            eprintln!(
                "bench: {}: no advert of r1 before the takeover (or no priority-0 advert); retrying",
                kind.name()
            );
            continue;
        };
        let deadline = start + (bound * 1e6) as i64;
        // First GARP per VIP from r2 after the kill.
        let mut firsts: Vec<i64> = Vec::new();
        let mut done: HashSet<Ipv4Addr> = HashSet::new();
        for s in &seen {
            if let Seen::Garp { t, ip, mac } = *s
                && t > t0
                && mac == r2_mac
                && vips.contains(&ip)
                && done.insert(ip)
            {
                firsts.push(t);
            }
        }
        let first_garp = firsts.iter().min().map(|&t| ms(t - deadline));
        let all_garp = (done.len() == vips.len())
            .then(|| firsts.iter().max().map(|&t| ms(t - deadline)))
            .flatten();
        // Longest silence the client saw around the event.
        let replies = probe.replies();
        let before = replies.iter().rev().find(|&&r| r <= t0).copied();
        let after = replies.iter().find(|&&r| r > first).copied();
        let outage = match (before, after) {
            (Some(b), Some(a)) => {
                let mut gap = 0;
                let mut prev = b;
                for &r in replies.iter().filter(|&&r| r > b && r <= a) {
                    gap = gap.max(r - prev);
                    prev = r;
                }
                Some(ms(gap))
            }
            _ => None,
        };
        probe.clear();
        let trial = Trial {
            detect_ms: ms(first - start),
            bound_ms: bound,
            outage_ms: outage,
            first_garp_ms: first_garp,
            all_garp_ms: all_garp,
        };
        eprintln!(
            "bench: {:<10} {:?} v{} {:>4} ms {:>3} VIPs: detect {:8.2} ms (bound {:7.2}), outage {}",
            kind.name(),
            how,
            setup.version,
            setup.interval_ms,
            vips.len(),
            trial.detect_ms,
            trial.bound_ms,
            trial
                .outage_ms
                .map_or("?".to_owned(), |o| format!("{o:.2} ms"))
        );
        out.push(trial);
    }
    Ok(out)
}

/// CPU and memory of master and backup at rest.
#[derive(Clone, Debug)]
pub struct Steady {
    /// CPU of the master, percent of one core.
    pub master_cpu: f64,
    /// CPU of the backup, percent of one core.
    pub backup_cpu: f64,
    /// RSS of the master, KiB.
    pub master_rss: u64,
    /// RSS of the backup, KiB.
    pub backup_rss: u64,
    /// Roles held through the whole window.
    pub stable: bool,
}

/// Steady-state cost of `kind` running `setup` on both routers.
pub fn steady(ctx: &Ctx, kind: Kind, setup: &Setup, window: Duration) -> anyhow::Result<Steady> {
    let pair = Pair::new_master_first(ctx, "vs", kind, setup.clone())?;
    let conv = wait_for(
        Duration::from_secs(20) + Duration::from_millis(setup.interval_ms * 5),
        Duration::from_millis(50),
        || pair.converged(),
    );
    if !conv {
        // Measured anyway: a daemon that cannot hold its roles at this load
        // is a result, reported as such ("roles held: no").
        eprintln!(
            "bench: {} with {} instances did not converge (r1 master of all, r2 backup of all); measuring anyway",
            kind.name(),
            setup.instances.len()
        );
    }
    // Let start-up work (VIPs, GARP bursts) finish.
    sleep(Duration::from_millis(1000 + setup.interval_ms * 2));
    let m = pair.lab.pid(pair.r1_idx.context("r1")?)?;
    let b = pair.lab.pid(pair.r2_idx)?;
    let (m0, b0, t0) = (cpu_ns(m), cpu_ns(b), Instant::now());
    sleep(window);
    let (m1, b1, secs) = (cpu_ns(m), cpu_ns(b), t0.elapsed().as_secs_f64());
    let pct = |d: u64| d as f64 / 1e9 / secs * 100.0;
    Ok(Steady {
        master_cpu: pct(m1.saturating_sub(m0)),
        backup_cpu: pct(b1.saturating_sub(b0)),
        master_rss: rss_kib(m),
        backup_rss: rss_kib(b),
        stable: conv && pair.converged(),
    })
}

/// A flood at the backup.
#[derive(Clone, Debug)]
pub struct Flood {
    /// Frames sent.
    pub sent: u64,
    /// Achieved rate.
    pub pps: f64,
    /// CPU of the backup during the flood, percent of one core.
    pub backup_cpu: f64,
    /// Adverts the backup sent before the master left (a false transition
    /// makes it advertise).
    pub false_adverts: usize,
    /// The backup held a VIP before the master left.
    pub false_vip: bool,
    /// Handover time after the master's graceful stop, under the flood.
    pub handover_ms: Option<f64>,
    /// Skew_Time, the RFC bound for that handover.
    pub skew_ms: f64,
    /// Bytes the backup wrote to its log during the flood.
    pub log_bytes: u64,
}

/// Floods r2 (the backup) with invalid and foreign-VRID VRRP at `rate` for
/// `duration`; two thirds in, r1 stops gracefully, and r2 must take over.
pub fn flood_backup(
    ctx: &Ctx,
    kind: Kind,
    setup: &Setup,
    rate: u64,
    duration: Duration,
) -> anyhow::Result<Flood> {
    let mut pair = Pair::new(ctx, "vf", kind, setup.clone())?;
    let cap = Capture::start(pair.lab.lan(), "br0")?;
    if !wait_for(Duration::from_secs(15), Duration::from_millis(20), || {
        pair.converged()
    }) {
        bail!("{} did not converge\n{}", kind.name(), pair.log_tail());
    }
    sleep(Duration::from_millis(500));
    let b = pair.lab.pid(pair.r2_idx)?;
    let log = pair.dir.join("r2.log");
    let log_size = || std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let log0 = log_size();
    let generator = flood(
        pair.lab.lan(),
        &pair.r2.port,
        daemon::parse_mac(&pair.r2.mac)?,
        VRID,
        rate,
        duration,
    );
    let (c0, t0) = (cpu_ns(b), Instant::now());
    let t0_ns = now_ns();
    sleep(duration * 2 / 3);
    let (c1, secs) = (cpu_ns(b), t0.elapsed().as_secs_f64());
    let false_vip = held(&pair.lab, &pair.r2, &pair.vips()) > 0;
    let t_stop = now_ns();
    let false_adverts = cap
        .snapshot()
        .iter()
        .filter(|s| matches!(s, Seen::Advert { src, t, .. } if *src == R2_IP && *t > t0_ns && *t < t_stop))
        .count();
    let r1 = pair.r1_idx.take().context("r1")?;
    pair.lab.signal(r1, libc::SIGTERM)?;
    let stats = generator
        .join()
        .map_err(|_| anyhow::anyhow!("flood thread panicked"))??;
    let log_bytes = log_size().saturating_sub(log0);
    let _ = wait_for(Duration::from_secs(3), Duration::from_millis(5), || {
        cap.snapshot()
            .iter()
            .any(|s| matches!(s, Seen::Advert { src, t, .. } if *src == R2_IP && *t > t_stop))
    });
    let seen = cap.snapshot();
    let p0 = seen.iter().find_map(|s| match *s {
        Seen::Advert { t, src, prio, .. } if src == R1_IP && prio == 0 && t >= t_stop => Some(t),
        _ => None,
    });
    let first = seen.iter().find_map(|s| match *s {
        Seen::Advert { t, src, .. } if src == R2_IP && t > t_stop => Some(t),
        _ => None,
    });
    let handover_ms = match (p0, first) {
        (Some(p), Some(f)) => Some(ms(f - p)),
        _ => None,
    };
    Ok(Flood {
        sent: stats.sent,
        pps: stats.sent as f64 / stats.secs.max(1e-9),
        backup_cpu: c1.saturating_sub(c0) as f64 / 1e9 / secs * 100.0,
        false_adverts,
        false_vip,
        handover_ms,
        skew_ms: setup.skew_ms(P_BACKUP),
        log_bytes,
    })
}
