//! Per-packet cost of the XDP program by BPF_PROG_TEST_RUN (run by
//! `cargo xtask bench xdp`; needs root).
//!
//! Each cell runs one program over one frame `REPEAT` times inside the
//! kernel, which reports the mean time per run in whole ns. The empty
//! XDP_PASS program (`vrrp_baseline`, built the same way) measures the cost
//! of the test-run loop itself.
//!
//! Robust against a busy machine: rounds are interleaved. In every round
//! each cell runs right next to a run of the baseline (baseline first in
//! even rounds, second in odd ones), and the cells run in an order rotated
//! by one each round, so noise and cache or frequency drift hit the
//! baseline and the cell alike, and no cell always runs first. A cell's
//! result is the distribution over rounds of (cell − its paired baseline).
//!
//! Per-step breakdown: besides the agent's program, the bench loads variants
//! of the same object that return right after one step
//! (`vrrp_common::step`, a frozen `.rodata` global the verifier resolves, so
//! the agent's program keeps no branch of the exits). A step's cost is the
//! difference between the variant that stops after it and the one that
//! stops before it.
//!
//! The event cell cannot run a million times in a row (the ring buffer would
//! fill and we would time the "full" path), so it runs in batches that fit
//! the ring, drained between batches.
//!
//! `XDP_BENCH_ROUNDS` (default 21) and `XDP_BENCH_REPEAT` (default 200000)
//! override the sizes.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::net::{IpAddr, Ipv4Addr};

use aya::{
    Ebpf,
    maps::{Array, HashMap, RingBuf},
};
use tests::{
    frames::{Advert, Checksum, Envelope, udp_frame},
    xdp,
};
use vrrp_common::{
    FAMILY_V4, VRID_F_DELIVER_ALL, VipEntry, VridConfig, VridKey, XDP_PROGRAM, maps, step,
    vip_index_v4,
};

/// Events per batch: fits the 256 KiB ring (each record takes 120 + 8 bytes).
const EVENT_BATCH: u32 = 2000;
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const HOST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

/// Which frame a cell sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Frame {
    Other,
    ToVip,
    Steady,
    Event,
    BadChecksum,
    Ttl,
}

/// One measured (program variant, frame) pair.
struct Cell {
    name: &'static str,
    /// `None`: the agent's program; else the step it stops after.
    stop: Option<u32>,
    frame: Frame,
    verdict: u32,
    /// Goal: at most this many ns over the baseline.
    goal_ns: Option<f64>,
    /// Paired deltas (cell − baseline), one per round.
    deltas: Vec<f64>,
    /// The cell's own ns/run, one per round.
    abs: Vec<f64>,
}

impl Cell {
    fn new(name: &'static str, stop: Option<u32>, frame: Frame, verdict: u32) -> Self {
        Self {
            name,
            stop,
            frame,
            verdict,
            goal_ns: None,
            deltas: Vec::new(),
            abs: Vec::new(),
        }
    }

    fn goal(mut self, ns: f64) -> Self {
        self.goal_ns = Some(ns);
        self
    }
}

/// A cell's (median, mean) delta.
type MedMean = (f64, f64);

/// min, median, max, mean.
fn summary(v: &[f64]) -> (f64, f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let mean = s.iter().sum::<f64>() / s.len() as f64;
    (s[0], s[s.len() / 2], s[s.len() - 1], mean)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One BPF_PROG_TEST_RUN of `repeat` runs; the kernel's ns/run.
fn once(
    ebpf: &mut Ebpf,
    program: &str,
    frame: &[u8],
    repeat: u32,
    verdict: u32,
) -> anyhow::Result<f64> {
    let r = xdp::run(ebpf, program, frame, repeat)?;
    anyhow::ensure!(
        r.action == verdict,
        "{program}: verdict {} (expected {verdict})",
        r.action
    );
    Ok(r.ns_per_run as f64)
}

/// Runs in batches that fit the ring buffer, drained in between; the
/// median batch. `repeat` runs in all.
fn once_events(ebpf: &mut Ebpf, frame: &[u8], repeat: u32) -> anyhow::Result<f64> {
    let batches = (repeat / EVENT_BATCH).max(1) as usize;
    let mut samples = Vec::with_capacity(batches);
    drain(ebpf)?;
    for _ in 0..batches {
        samples.push(once(ebpf, XDP_PROGRAM, frame, EVENT_BATCH, XDP_PASS)?);
        let n = drain(ebpf)?;
        anyhow::ensure!(
            n == EVENT_BATCH,
            "expected {EVENT_BATCH} events, drained {n} (ring full?)"
        );
    }
    Ok(summary(&samples).1)
}

/// Empties the ring buffer; returns how many records it held.
fn drain(ebpf: &mut Ebpf) -> anyhow::Result<u32> {
    let mut rb = RingBuf::try_from(ebpf.map_mut(maps::EVENTS).expect("EVENTS map"))?;
    let mut n = 0;
    while rb.next().is_some() {
        n += 1;
    }
    Ok(n)
}

/// Loads a variant and installs one VIP and two VRIDs, as the agent would.
fn load_variant(stop: Option<u32>, ifindex: u32) -> anyhow::Result<Ebpf> {
    let mut ebpf = xdp::load_stopping_after(xdp::VRRP_OBJECT, XDP_PROGRAM, stop)?;
    let vip = u32::from_ne_bytes(VIP.octets());
    HashMap::<_, u32, u32>::try_from(ebpf.map_mut(maps::VIPS_V4).expect("VIPS_V4"))?
        .insert(vip, 0, 0)?;
    let mut addr = [0u8; 16];
    addr[..4].copy_from_slice(&VIP.octets());
    Array::<_, VipEntry>::try_from(ebpf.map_mut(maps::VIP_TABLE).expect("VIP_TABLE"))?.set(
        vip_index_v4(VIP.octets()),
        VipEntry {
            addr,
            slot: 0,
            family: FAMILY_V4,
            ..VipEntry::default()
        },
        0,
    )?;
    // VRID 9: steady state (suppression); VRID 10: every advert is an event.
    let v3 = VridConfig {
        version: 3,
        ..Default::default()
    };
    xdp::configure_vrid(&mut ebpf, VridKey::new(ifindex, 9, FAMILY_V4), v3, true)?;
    let deliver_all = VridConfig {
        flags: VRID_F_DELIVER_ALL,
        slot: 1,
        ..v3
    };
    xdp::configure_vrid(
        &mut ebpf,
        VridKey::new(ifindex, 10, FAMILY_V4),
        deliver_all,
        true,
    )?;
    Ok(ebpf)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    anyhow::ensure!(
        xdp::objects_available(),
        "XDP objects not built (AYA_BUILD_SKIP set?)"
    );
    let rounds: usize = env_or("XDP_BENCH_ROUNDS", 21);
    let repeat: u32 = env_or("XDP_BENCH_REPEAT", 200_000);
    let ifindex = nix::net::if_::if_nametoindex("lo")?;
    let load_before = loadavg();

    let other = udp_frame(
        IpAddr::V4(HOST),
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 8)),
        18,
    );
    let to_vip = udp_frame(IpAddr::V4(HOST), IpAddr::V4(VIP), 18);
    // keepalived's default v3 IPv4 form (RFC 5798 pseudo-header): the program
    // tries the message-only form first, so this is the longer path.
    let advert = Envelope::v4(9).frame(&Advert::v3(9, 100, &[IpAddr::V4(VIP)]));
    let event_advert = Envelope::v4(10).frame(&Advert::v3(10, 100, &[IpAddr::V4(VIP)]));
    let mut bad = Advert::v3(9, 100, &[IpAddr::V4(VIP)]);
    bad.checksum = Checksum::Corrupt;
    let bad = Envelope::v4(9).frame(&bad);
    let mut ttl = Envelope::v4(9);
    ttl.ttl = 64;
    let ttl = ttl.frame(&Advert::v3(9, 100, &[IpAddr::V4(VIP)]));
    let bytes = |f: Frame| -> &[u8] {
        match f {
            Frame::Other => &other,
            Frame::ToVip => &to_vip,
            Frame::Steady => &advert,
            Frame::Event => &event_advert,
            Frame::BadChecksum => &bad,
            Frame::Ttl => &ttl,
        }
    };

    use Frame::*;
    let mut cells = vec![
        Cell::new("non-VRRP, not to a VIP", None, Other, XDP_PASS).goal(3.0),
        Cell::new("to a VIP (counted)", None, ToVip, XDP_PASS).goal(8.0),
        Cell::new(
            "valid advert, suppressed (steady state)",
            None,
            Steady,
            XDP_PASS,
        )
        .goal(60.0),
        Cell::new("valid advert + ring-buffer event", None, Event, XDP_PASS),
        Cell::new("invalid advert: bad checksum", None, BadChecksum, XDP_DROP),
        Cell::new("invalid advert: TTL 64", None, Ttl, XDP_DROP),
        // Step variants (indices 6..).
        Cell::new(
            "non-VRRP: stop after parse",
            Some(step::PARSE),
            Other,
            XDP_PASS,
        ),
        Cell::new(
            "to a VIP: stop after parse",
            Some(step::PARSE),
            ToVip,
            XDP_PASS,
        ),
        Cell::new(
            "to a VIP: stop after VIP lookup",
            Some(step::VIP_LOOKUP),
            ToVip,
            XDP_PASS,
        ),
        Cell::new(
            "advert: stop after parse",
            Some(step::PARSE),
            Steady,
            XDP_PASS,
        ),
        Cell::new(
            "advert: stop after header checks",
            Some(step::HEADER),
            Steady,
            XDP_PASS,
        ),
        Cell::new(
            "advert: stop after checksum",
            Some(step::CHECKSUM),
            Steady,
            XDP_PASS,
        ),
        Cell::new(
            "advert: stop after VRID lookup",
            Some(step::VRID_LOOKUP),
            Steady,
            XDP_PASS,
        ),
        Cell::new(
            "advert: stop after timestamp",
            Some(step::TIMESTAMP),
            Steady,
            XDP_PASS,
        ),
        Cell::new(
            "advert: stop after LAST_SEEN",
            Some(step::LAST_SEEN),
            Steady,
            XDP_PASS,
        ),
    ];

    let mut base = xdp::load(xdp::BASELINE_OBJECT, xdp::BASELINE_PROGRAM)?;
    // One load per variant (each with its own maps, set up alike).
    let mut variants: Vec<(Option<u32>, Ebpf)> = Vec::new();
    for c in &cells {
        if !variants.iter().any(|(s, _)| *s == c.stop) {
            variants.push((c.stop, load_variant(c.stop, ifindex)?));
        }
    }
    // Prime LAST_SEEN so the advert cells measure the steady state.
    for (_, e) in &mut variants {
        xdp::run(e, XDP_PROGRAM, &advert, 1)?;
    }

    let n = cells.len();
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let c = &mut cells[i];
            let frame = bytes(c.frame);
            let (_, ebpf) = variants
                .iter_mut()
                .find(|(s, _)| *s == c.stop)
                .expect("variant loaded");
            let cell = |ebpf: &mut Ebpf| {
                if c.frame == Event {
                    once_events(ebpf, frame, repeat)
                } else {
                    once(ebpf, XDP_PROGRAM, frame, repeat, c.verdict)
                }
            };
            let mut baseline = || once(&mut base, xdp::BASELINE_PROGRAM, &other, repeat, XDP_PASS);
            let (b, t) = if round % 2 == 0 {
                let b = baseline()?;
                (b, cell(ebpf)?)
            } else {
                let t = cell(ebpf)?;
                (baseline()?, t)
            };
            c.abs.push(t);
            c.deltas.push(t - b);
        }
    }

    println!(
        "BPF_PROG_TEST_RUN on {}; {rounds} interleaved rounds x {repeat} runs per cell; load average before/after: {} / {}",
        cpu_model(),
        load_before,
        loadavg()
    );
    println!();
    println!(
        "| case | ns/packet median | Δ over empty program: min / median / max (mean) | goal |"
    );
    println!("|---|---:|---:|---|");
    let mut missed = 0;
    for c in &cells[..6] {
        let (_, med, _, _) = summary(&c.abs);
        let (dmin, dmed, dmax, dmean) = summary(&c.deltas);
        let goal = match c.goal_ns {
            Some(g) if dmed <= g => format!("<= +{g:.0} ok"),
            Some(g) => {
                missed += 1;
                format!("<= +{g:.0} MISSED")
            }
            None => "–".to_owned(),
        };
        println!(
            "| {} | {med:.0} | {dmin:+.0} / {dmed:+.0} / {dmax:+.0} ({dmean:+.1}) | {goal} |",
            c.name
        );
    }
    let base_abs: Vec<f64> = cells[0]
        .abs
        .iter()
        .zip(&cells[0].deltas)
        .map(|(a, d)| a - d)
        .collect();
    let (bmin, bmed, bmax, _) = summary(&base_abs);
    println!(
        "| baseline (empty XDP_PASS) | {bmed:.0} | (its own spread: {bmin:.0} / {bmed:.0} / {bmax:.0}) | – |"
    );

    // Per-step costs: differences of the variants' median deltas (and of
    // their means, which resolve below the kernel's 1 ns granularity).
    let stat = |name: &str| -> MedMean {
        let c = cells.iter().find(|c| c.name == name).expect("cell");
        let (_, med, _, mean) = summary(&c.deltas);
        (med, mean)
    };
    let zero = (0.0, 0.0);
    let steps: [(&str, MedMean, MedMean); 12] = [
        (
            "parse (non-VRRP frame)",
            zero,
            stat("non-VRRP: stop after parse"),
        ),
        (
            "VIP match, miss",
            stat("non-VRRP: stop after parse"),
            stat("non-VRRP, not to a VIP"),
        ),
        (
            "VIP match, hit",
            stat("to a VIP: stop after parse"),
            stat("to a VIP: stop after VIP lookup"),
        ),
        (
            "per-VIP counter",
            stat("to a VIP: stop after VIP lookup"),
            stat("to a VIP (counted)"),
        ),
        ("parse (VRRP frame)", zero, stat("advert: stop after parse")),
        (
            "IPv4 header checksum + VRRP header checks",
            stat("advert: stop after parse"),
            stat("advert: stop after header checks"),
        ),
        (
            "VRRP checksum",
            stat("advert: stop after header checks"),
            stat("advert: stop after checksum"),
        ),
        (
            "VRID lookup (+ count, interval, link-local checks)",
            stat("advert: stop after checksum"),
            stat("advert: stop after VRID lookup"),
        ),
        (
            "config checks + timestamp",
            stat("advert: stop after VRID lookup"),
            stat("advert: stop after timestamp"),
        ),
        (
            "LAST_SEEN update",
            stat("advert: stop after timestamp"),
            stat("advert: stop after LAST_SEEN"),
        ),
        (
            "counters, suppression exit",
            stat("advert: stop after LAST_SEEN"),
            stat("valid advert, suppressed (steady state)"),
        ),
        (
            "ring-buffer event (instead of suppression)",
            stat("valid advert, suppressed (steady state)"),
            stat("valid advert + ring-buffer event"),
        ),
    ];
    println!();
    println!("Per step (difference between the variants stopping after and before it):");
    println!();
    println!("| step | ns (from medians) | ns (from means) |");
    println!("|---|---:|---:|");
    for (name, before, after) in steps {
        println!(
            "| {name} | {:+.0} | {:+.1} |",
            after.0 - before.0,
            after.1 - before.1
        );
    }
    println!();
    println!("| variant | Δ min / median / max (mean) |");
    println!("|---|---:|");
    for c in &cells[6..] {
        let (dmin, dmed, dmax, dmean) = summary(&c.deltas);
        println!(
            "| {} | {dmin:+.0} / {dmed:+.0} / {dmax:+.0} ({dmean:+.1}) |",
            c.name
        );
    }
    // Order check: in even rounds the baseline ran first, in odd ones
    // second; a bench whose result depended on the order would show it here.
    let order = cells
        .iter()
        .map(|c| {
            let half = |parity| {
                let v: Vec<f64> = c
                    .deltas
                    .iter()
                    .enumerate()
                    .filter(|(r, _)| r % 2 == parity)
                    .map(|(_, d)| *d)
                    .collect();
                summary(&v).1
            };
            ((half(0) - half(1)).abs(), c.name)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((skew, name)) = order
        && rounds >= 2
    {
        println!();
        println!(
            "Order check: largest difference between the median deltas of the rounds with the baseline first and second: {skew:.0} ns ({name})"
        );
    }
    println!();
    println!(
        "(the kernel reports whole ns per run: single differences of 1 ns are noise; the means of many rounds resolve finer)"
    );
    if missed > 0 {
        println!("{missed} goal(s) missed");
    }
    Ok(())
}
