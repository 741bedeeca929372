//! The fault table (issue 9): the fault suite's scenarios run against both
//! daemons in identical labs, counted the same way. r1 (priority 200) is
//! the master, r2 (priority 100) the backup, a client probes the VIP.
//!
//! Counted per run, over the whole scenario (from the fault's start to a
//! few seconds after it ends):
//! - **takeovers**: times r2 acquired the VIP (`ip monitor address` on
//!   both routers), against what the scenario should cause;
//! - **two holders**: time both routers held the VIP at once;
//! - **client lost**: ICMP echo requests (every 0.5 ms) without a reply;
//! - **convergence**: from the fault's end to the last change (a VIP
//!   added or removed, or the end of the client's last silence over 10 ms);
//!   none if the run does not end with exactly one holder, or the client
//!   still gets no answer 3 s after the fault.

use std::{
    fmt::Write as _,
    io::{BufRead as _, BufReader},
    net::Ipv4Addr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread::{JoinHandle, sleep},
    time::Duration,
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::{
    daemon::{Inst, Kind, Setup, VIP, VRID},
    measure::{Ctx, Pair, held, ms, wait_for},
    wire::{Prober, now_ns},
};
use crate::lab::{Host, Lab};

/// One fault scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// The backup is stopped (SIGSTOP) for 1 s.
    Starve,
    /// The master is stopped for 2 s, then resumes.
    Hang,
    /// The master's bridge port leaves the bridge for 3 s.
    SplitHeal,
    /// 100 SIGHUPs to each router at 10 ms adverts.
    Reloads,
    /// The master's config file is replaced by garbage, then SIGHUP.
    BadReload,
    /// 20 link flaps, master and backup in turn.
    Flaps,
    /// IPv6 instance; the bridge starts snooping MLD with a querier.
    Ipv6Snoop,
    /// 25 % of the master's adverts dropped for a while (20 ms adverts).
    Loss,
}

impl Scenario {
    /// All, in report order.
    pub const ALL: [Scenario; 8] = [
        Scenario::Starve,
        Scenario::Hang,
        Scenario::SplitHeal,
        Scenario::Reloads,
        Scenario::BadReload,
        Scenario::Flaps,
        Scenario::Ipv6Snoop,
        Scenario::Loss,
    ];

    /// Report name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Starve => "backup starved 1 s (SIGSTOP)",
            Scenario::Hang => "master hung 2 s (SIGSTOP), resumed",
            Scenario::SplitHeal => "split brain 3 s, healed",
            Scenario::Reloads => "100 reloads each at 10 ms adverts",
            Scenario::BadReload => "bad reload of the master",
            Scenario::Flaps => "20 link flaps",
            Scenario::Ipv6Snoop => "IPv6, bridge starts MLD snooping with a querier",
            Scenario::Loss => "25 % loss of the master's adverts (20 ms adverts)",
        }
    }

    /// JSON key.
    pub fn key(self) -> &'static str {
        match self {
            Scenario::Starve => "backup_starved",
            Scenario::Hang => "master_hung",
            Scenario::SplitHeal => "split_brain_heal",
            Scenario::Reloads => "reload_storm",
            Scenario::BadReload => "bad_reload",
            Scenario::Flaps => "link_flaps",
            Scenario::Ipv6Snoop => "ipv6_mld_snooping",
            Scenario::Loss => "advert_loss",
        }
    }

    fn setup(self) -> Setup {
        match self {
            Scenario::Reloads => Setup::single(3, 10, 0),
            Scenario::Loss => Setup::single(3, 20, 0),
            Scenario::Ipv6Snoop => Setup {
                version: 3,
                interval_ms: 100,
                instances: vec![Inst {
                    vrid: VRID,
                    vips: vec!["fe80::51/64".into(), format!("{VIP6}/64")],
                }],
            },
            _ => Setup::single(3, 100, 0),
        }
    }

    /// Takeovers by r2 the scenario should cause (None: depends on timing).
    fn expected(self) -> Option<f64> {
        match self {
            Scenario::Hang | Scenario::SplitHeal => Some(1.0),
            Scenario::Flaps | Scenario::Loss => None,
            _ => Some(0.0),
        }
    }
}

const VIP6: &str = "2001:db8::10";
const LOSS_PERCENT: u32 = 25;

/// What one run of a scenario counted.
#[derive(Clone, Debug)]
pub struct FaultRun {
    /// Times r2 acquired the VIP.
    pub takeovers: usize,
    /// Takeovers the scenario should cause (for loss: what the RFC's
    /// three-missed-adverts rule implies at the measured loss rate).
    pub expected: Option<f64>,
    /// Time with both routers holding the VIP, ms.
    pub two_holders_ms: f64,
    /// Client echo requests without a reply (None: no IPv4 probe).
    pub lost: Option<u64>,
    /// Fault end to the last change, ms; None if it did not end with one
    /// holder, or the client still got no answers at the end.
    pub converge_ms: Option<f64>,
    /// r1's daemon still runs at the end.
    pub r1_alive: bool,
}

impl FaultRun {
    fn json(&self) -> Value {
        json!({
            "takeovers": self.takeovers, "expected_takeovers": self.expected,
            "two_holders_ms": self.two_holders_ms, "client_lost": self.lost,
            "convergence_ms": self.converge_ms, "master_daemon_alive": self.r1_alive,
        })
    }
}

/// Watches which of two routers hold one address (`ip monitor address`),
/// time-stamping each change as it is read.
struct Holders {
    initial: [bool; 2],
    events: Arc<Mutex<Vec<(i64, usize, bool)>>>,
    procs: Vec<Child>,
    threads: Vec<JoinHandle<()>>,
}

impl Holders {
    fn start(lab: &Lab, hosts: [&Host; 2], vip: &str) -> anyhow::Result<Holders> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut h = Holders {
            initial: [false; 2],
            events: events.clone(),
            procs: Vec::new(),
            threads: Vec::new(),
        };
        let needle = format!(" {vip}/");
        for (i, host) in hosts.iter().enumerate() {
            let mut child = Command::new("ip")
                .args(["-n", &host.ns, "monitor", "address"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .context("ip monitor")?;
            let out = child.stdout.take().context("ip monitor stdout")?;
            h.procs.push(child);
            let (events, needle) = (events.clone(), needle.clone());
            h.threads.push(std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if line.contains(&needle)
                        && let Ok(mut v) = events.lock()
                    {
                        v.push((now_ns(), i, !line.starts_with("Deleted")));
                    }
                }
            }));
        }
        // Subscribed by now (it starts within milliseconds).
        sleep(Duration::from_millis(200));
        let set = std::collections::HashSet::from([vip.to_owned()]);
        for (i, host) in hosts.iter().enumerate() {
            h.initial[i] = held(lab, host, &set) == 1;
        }
        Ok(h)
    }

    /// (r2 acquisitions, two-holder ns, last change time, state at `until`)
    /// over changes up to `until`.
    fn analyse(&self, until: i64) -> (usize, i64, Option<i64>, [bool; 2]) {
        let mut ev = self.events.lock().map(|v| v.clone()).unwrap_or_default();
        ev.sort_by_key(|e| e.0);
        let mut state = self.initial;
        let (mut acquired, mut both_ns, mut last) = (0, 0, None);
        let mut prev = ev.first().map_or(until, |e| e.0);
        for &(t, i, has) in ev.iter().filter(|e| e.0 <= until) {
            if state == [true, true] {
                both_ns += t - prev;
            }
            if i == 1 && has && !state[1] {
                acquired += 1;
            }
            if state[i] != has {
                last = Some(t);
            }
            state[i] = has;
            prev = t;
        }
        if state == [true, true] {
            both_ns += until - prev;
        }
        (acquired, both_ns, last, state)
    }
}

impl Drop for Holders {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.kill();
            let _ = p.wait();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Drops `percent` % of the IPv4 VRRP frames entering the bridge from
/// `port` (nftables, bridge family, once per frame at ingress).
fn add_loss(lab: &Lab, port: &str, percent: u32) -> anyhow::Result<()> {
    let rules = format!(
        "table bridge vrrp_loss {{ chain drop_vrrp {{ type filter hook prerouting priority 0; policy accept; \
         iifname \"{port}\" ip protocol 112 counter; \
         iifname \"{port}\" ip protocol 112 numgen random mod 100 < {percent} counter drop; }}; }}"
    );
    lab.exec(lab.lan(), &["nft", &rules]).map(drop)
}

/// Removes the loss table; returns (frames seen, frames dropped).
fn remove_loss(lab: &Lab) -> anyhow::Result<(u64, u64)> {
    let out = lab.exec(lab.lan(), &["nft", "list", "table", "bridge", "vrrp_loss"])?;
    let text = String::from_utf8_lossy(&out.stdout);
    let packets: Vec<u64> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|x| *x == "packets")?;
            w.next()?.parse().ok()
        })
        .collect();
    lab.exec(
        lab.lan(),
        &["nft", "delete", "table", "bridge", "vrrp_loss"],
    )?;
    match packets[..] {
        [seen, dropped] => Ok((seen, dropped)),
        _ => bail!("cannot read the loss counters:\n{text}"),
    }
}

/// Takeovers the RFC's rule implies when each of `adverts` adverts is lost
/// with probability `p`: Master_Down_Interval (3 × interval + Skew_Time)
/// expires after three losses in a row, so each run of three or more
/// losses costs one: adverts × (1 − p) × p³.
pub fn expected_takeovers(adverts: u64, p: f64) -> f64 {
    adverts as f64 * (1.0 - p) * p.powi(3)
}

/// Runs `scenario` once with `kind` on both routers; `loss_window` is how
/// long the loss scenario drops adverts.
pub fn run(
    ctx: &Ctx,
    kind: Kind,
    scenario: Scenario,
    loss_window: Duration,
) -> anyhow::Result<FaultRun> {
    let setup = scenario.setup();
    let interval = Duration::from_millis(setup.interval_ms);
    let mut pair = Pair::new_master_first(ctx, "vb", kind, setup)?;
    if !wait_for(Duration::from_secs(20), Duration::from_millis(20), || {
        pair.converged()
    }) {
        bail!("{} did not converge\n{}", kind.name(), pair.log_tail());
    }
    let v6 = scenario == Scenario::Ipv6Snoop;
    let holders = Holders::start(&pair.lab, [&pair.r1, &pair.r2], if v6 { VIP6 } else { VIP })?;
    let prober = if v6 {
        None
    } else {
        let vip: Ipv4Addr = VIP.parse()?;
        Some(Prober::start(
            &pair.cli.ns,
            vip,
            Duration::from_micros(500),
        )?)
    };
    sleep(Duration::from_millis(300));
    let r1 = pair.r1_idx.context("r1 not running")?;
    let r2 = pair.r2_idx;
    let t_a = now_ns();
    let mut expected = scenario.expected();
    match scenario {
        Scenario::Starve => {
            pair.lab.signal_group(r2, libc::SIGSTOP)?;
            sleep(Duration::from_secs(1));
            pair.lab.signal_group(r2, libc::SIGCONT)?;
        }
        Scenario::Hang => {
            pair.lab.signal_group(r1, libc::SIGSTOP)?;
            sleep(Duration::from_secs(2));
            pair.lab.signal_group(r1, libc::SIGCONT)?;
        }
        Scenario::SplitHeal => {
            let (lan, port) = (pair.lab.lan().to_owned(), pair.r1.port.clone());
            pair.lab.ip(&lan, &["link", "set", &port, "nomaster"])?;
            sleep(Duration::from_secs(3));
            pair.lab
                .ip(&lan, &["link", "set", &port, "master", "br0"])?;
        }
        Scenario::Reloads => {
            for _ in 0..100 {
                pair.lab.signal(r1, libc::SIGHUP)?;
                sleep(interval);
                pair.lab.signal(r2, libc::SIGHUP)?;
                sleep(interval);
            }
        }
        Scenario::BadReload => {
            let ext = if kind == Kind::Agent { "toml" } else { "conf" };
            let conf = pair.dir.join(format!("r1-{}.{ext}", pair.starts));
            std::fs::write(&conf, "}}} not a configuration {{{\n[global\n")?;
            pair.lab.signal(r1, libc::SIGHUP)?;
        }
        Scenario::Flaps => {
            let (down, up) = ([20u64, 150, 450, 60, 800], [30u64, 300, 100, 600]);
            for i in 0..20 {
                let ns = if i % 2 == 0 { &pair.r1.ns } else { &pair.r2.ns };
                pair.lab.ip(ns, &["link", "set", "eth0", "down"])?;
                sleep(Duration::from_millis(down[i % down.len()]));
                pair.lab.ip(ns, &["link", "set", "eth0", "up"])?;
                sleep(Duration::from_millis(up[i % up.len()]));
            }
        }
        Scenario::Ipv6Snoop => {
            // The querier's delay comes from the interval in force when it
            // is turned on: set it first (1 s), then wait it out.
            let lan = pair.lab.lan().to_owned();
            for (opt, val) in [
                ("mcast_query_response_interval", "100"),
                ("mcast_snooping", "1"),
                ("mcast_querier", "1"),
            ] {
                pair.lab
                    .ip(&lan, &["link", "set", "br0", "type", "bridge", opt, val])?;
            }
            sleep(Duration::from_millis(1500));
        }
        Scenario::Loss => {
            add_loss(&pair.lab, &pair.r1.port, LOSS_PERCENT)?;
            sleep(loss_window);
            let (seen, dropped) = remove_loss(&pair.lab)?;
            let p = dropped as f64 / (seen.max(1)) as f64;
            expected = Some(expected_takeovers(seen, p));
        }
    }
    let t_end = now_ns();
    sleep(Duration::from_secs(3));
    let t_b = now_ns();
    let (takeovers, both_ns, last_change, end) = holders.analyse(t_b);
    let mut last = last_change.filter(|&t| t > t_end).unwrap_or(t_end);
    let mut cut_off = false;
    let lost = prober.as_ref().map(|p| {
        let (replies, sent) = (p.replies(), p.sent());
        let within = |v: &[i64]| v.iter().filter(|&&t| t >= t_a && t <= t_b).count();
        // The end of the client's last silence over 10 ms after the fault:
        // requests went out and none was answered (a prober that did not
        // run for a while is no silence of the VIP).
        for w in replies.windows(2) {
            if w[1] > t_end
                && w[1] <= t_b
                && w[1] - w[0] > 10_000_000
                && sent
                    .iter()
                    .any(|&s| s > w[0] + 1_000_000 && s < w[1] - 5_000_000)
            {
                last = last.max(w[1]);
            }
        }
        // Still silent at the end: not converged within the window.
        let last_reply = replies
            .iter()
            .rev()
            .find(|&&t| t <= t_b)
            .copied()
            .unwrap_or(t_a);
        if t_b - last_reply > 10_000_000
            && sent.iter().any(|&s| s > last_reply + 5_000_000 && s < t_b)
        {
            cut_off = true;
        }
        within(&sent).saturating_sub(within(&replies)) as u64
    });
    let r1_alive = !pair.lab.exited(r1);
    Ok(FaultRun {
        takeovers,
        expected,
        two_holders_ms: ms(both_ns),
        lost,
        converge_ms: (end[0] != end[1] && !cut_off).then(|| ms(last - t_end)),
        r1_alive,
    })
}

/// Runs of one scenario for one daemon.
pub type Runs = Vec<(Scenario, Kind, Result<Vec<FaultRun>, String>)>;

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut s, mut n) = (0.0, 0);
    for x in v {
        s += x;
        n += 1;
    }
    (n > 0).then(|| s / f64::from(n))
}

/// The fault table (markdown).
pub fn markdown(runs: &Runs) -> String {
    let mut m = String::from(
        "\n## 7. Fault table (issue 9)\n\n\
         Each scenario in a fresh lab per run, both routers running the same daemon (r1 priority \
         200 master, r2 priority 100 backup, 100 ms adverts unless said), agent and keepalived \
         runs interleaved. **Takeovers** = times r2 acquired the VIP (`ip monitor address` on \
         both routers), against what the scenario should cause (hung master and split brain: \
         one; loss: what the three-missed-adverts rule implies at the measured loss rate, \
         runs × (1 − p) × p³ over the adverts; flaps: depends on timing). **Two holders** = \
         time both routers held the VIP. **Client lost** = echo requests to the VIP (every \
         0.5 ms) without a reply, from the fault's start to 3 s after its end. **Convergence** \
         = fault end to the last change (VIP added/removed, or the end of the client's last \
         silence over 10 ms); `never` if the run did not end with exactly one holder or the \
         client still got no answer 3 s after the fault. \
         Means over runs; worst run in brackets.\n\n\
         | scenario | daemon | runs | takeovers | expected | two holders ms | client lost | convergence ms | master daemon alive |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for (sc, kind, r) in runs {
        match r {
            Ok(v) if !v.is_empty() => {
                let worst = |f: &dyn Fn(&FaultRun) -> Option<f64>| {
                    v.iter()
                        .filter_map(f)
                        .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))))
                };
                let fmt = |f: &dyn Fn(&FaultRun) -> Option<f64>, d: usize| {
                    mean(v.iter().filter_map(f)).map_or("–".to_owned(), |x| {
                        format!("{x:.d$} ({:.d$})", worst(f).unwrap_or(x))
                    })
                };
                let never = v.iter().filter(|r| r.converge_ms.is_none()).count();
                let conv = fmt(&|r| r.converge_ms, 0);
                let conv = if never > 0 {
                    format!("**never in {never}/{}** (others {conv})", v.len())
                } else {
                    conv
                };
                let exp = mean(v.iter().filter_map(|r| r.expected))
                    .map_or("–".to_owned(), |e| format!("{e:.1}"));
                let alive = v.iter().filter(|r| r.r1_alive).count();
                let _ = writeln!(
                    m,
                    "| {} | {} | {} | {} | {exp} | {} | {} | {conv} | {alive}/{} |",
                    sc.name(),
                    kind.name(),
                    v.len(),
                    fmt(&|r| Some(r.takeovers as f64), 1),
                    fmt(&|r| Some(r.two_holders_ms), 0),
                    fmt(&|r| r.lost.map(|l| l as f64), 0),
                    v.len()
                );
            }
            Ok(_) => {}
            Err(e) => {
                let _ = writeln!(
                    m,
                    "| {} | {} | failed: {} | | | | | | |",
                    sc.name(),
                    kind.name(),
                    e.lines().next().unwrap_or("")
                );
            }
        }
    }
    m
}

/// Means of (excess takeovers, two holders ms, client lost, convergence
/// ms with "never" as infinite) over the runs of one scenario and daemon.
fn means(v: &[FaultRun]) -> [f64; 4] {
    let n = v.len().max(1) as f64;
    let sum = |f: &dyn Fn(&FaultRun) -> f64| v.iter().map(f).sum::<f64>() / n;
    [
        sum(&|r| {
            r.expected
                .map_or(0.0, |e| (r.takeovers as f64 - e).max(0.0))
        }),
        sum(&|r| r.two_holders_ms),
        sum(&|r| r.lost.map_or(0.0, |l| l as f64)),
        sum(&|r| r.converge_ms.unwrap_or(f64::INFINITY)),
    ]
}

/// The goal row: no scenario where the agent is worse than keepalived
/// (excess takeovers, two holders, client lost, convergence; beyond 20 %
/// and a small absolute margin: 0.5 takeovers, 20 ms, 20 requests).
pub fn goals(runs: &Runs) -> String {
    let get = |sc: Scenario, kind: Kind| {
        runs.iter().find_map(|(s, k, r)| {
            (*s == sc && *k == kind)
                .then(|| r.as_ref().ok().filter(|v| !v.is_empty()).map(|v| means(v)))
                .flatten()
        })
    };
    let mut compared = 0;
    let mut worse = Vec::new();
    for sc in Scenario::ALL {
        let (Some(a), Some(k)) = (get(sc, Kind::Agent), get(sc, Kind::Keepalived)) else {
            continue;
        };
        compared += 1;
        let margin = [0.5, 20.0, 20.0, 20.0];
        if (0..4).any(|i| a[i] > k[i] * 1.2 + margin[i]) {
            worse.push(sc.key());
        }
    }
    if compared == 0 {
        return String::new();
    }
    format!(
        "| no row of the fault table worse than keepalived's | {} of {compared} scenarios worse{} | {} |\n",
        worse.len(),
        if worse.is_empty() {
            String::new()
        } else {
            format!(": {}", worse.join(", "))
        },
        if worse.is_empty() { "yes" } else { "**no**" }
    )
}

/// The fault runs as JSON.
pub fn json(runs: &Runs) -> Value {
    Value::from(
        runs.iter()
            .map(|(sc, kind, r)| {
                json!({
                    "scenario": sc.key(),
                    "daemon": kind.name(),
                    "runs": match r {
                        Ok(v) => Value::from(v.iter().map(FaultRun::json).collect::<Vec<_>>()),
                        Err(e) => json!({ "error": e }),
                    },
                })
            })
            .collect::<Vec<_>>(),
    )
}

/// One line per scenario and daemon for the console.
pub fn line(sc: Scenario, kind: Kind, r: &anyhow::Result<FaultRun>) -> String {
    match r {
        Ok(f) => format!(
            "bench: {:<10} fault {:<18} takeovers {} (expected {}), two holders {:.0} ms, client lost {}, convergence {}",
            kind.name(),
            sc.key(),
            f.takeovers,
            f.expected.map_or("–".to_owned(), |e| format!("{e:.1}")),
            f.two_holders_ms,
            f.lost.map_or("–".to_owned(), |l| l.to_string()),
            f.converge_ms
                .map_or("never".to_owned(), |c| format!("{c:.0} ms"))
        ),
        Err(e) => format!("bench: {} fault {} failed: {e:#}", kind.name(), sc.key()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_timeline() {
        // r1 holds; r2 takes the VIP at 10, r1 drops it at 15, takes it
        // back at 30, r2 drops it at 32.
        let ev = vec![(30, 0, true), (10, 1, true), (15, 0, false), (32, 1, false)];
        let h = Holders {
            initial: [true, false],
            events: Arc::new(Mutex::new(ev)),
            procs: Vec::new(),
            threads: Vec::new(),
        };
        let (acquired, both, last, end) = h.analyse(100);
        assert_eq!(acquired, 1);
        assert_eq!(both, 5 + 2);
        assert_eq!(last, Some(32));
        assert_eq!(end, [true, false]);
        // Changes after `until` are ignored.
        let (acquired, _, last, end) = h.analyse(12);
        assert_eq!((acquired, last, end), (1, Some(10), [true, true]));
    }

    fn run(takeovers: usize, lost: u64, converge: Option<f64>) -> FaultRun {
        FaultRun {
            takeovers,
            expected: Some(0.0),
            two_holders_ms: 0.0,
            lost: Some(lost),
            converge_ms: converge,
            r1_alive: true,
        }
    }

    #[test]
    fn table_and_goal() {
        let runs: Runs = vec![
            (
                Scenario::BadReload,
                Kind::Agent,
                Ok(vec![run(0, 0, Some(0.0))]),
            ),
            (
                Scenario::BadReload,
                Kind::Keepalived,
                Ok(vec![run(1, 90, Some(130.0)), run(1, 96, None)]),
            ),
            (Scenario::Starve, Kind::Agent, Ok(vec![run(1, 0, None)])),
            (
                Scenario::Starve,
                Kind::Keepalived,
                Ok(vec![run(0, 0, Some(0.0))]),
            ),
            (Scenario::Loss, Kind::Agent, Err("nft: no".into())),
        ];
        let md = markdown(&runs);
        assert!(
            md.contains("| bad reload of the master | keepalived | 2 | 1.0 (1.0) | 0.0 |"),
            "{md}"
        );
        assert!(md.contains("**never in 1/2** (others 130 (130))"), "{md}");
        assert!(md.contains("failed: nft: no"), "{md}");
        let g = goals(&runs);
        assert!(g.contains("1 of 2 scenarios worse: backup_starved"), "{g}");
        assert_eq!(json(&runs).as_array().map(Vec::len), Some(5));
    }

    #[test]
    fn loss_bound() {
        assert!((expected_takeovers(1000, 0.5) - 62.5).abs() < 1e-9);
        assert_eq!(expected_takeovers(1000, 0.0), 0.0);
    }
}
