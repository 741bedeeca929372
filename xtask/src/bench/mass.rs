//! Start-up latency and mass failover (issue 9), both daemons.
//!
//! - **Start to first advert**: a lone router (priority 200, 10 ms adverts)
//!   is started by `ip netns exec`; from just before the exec to its first
//!   advert on the bridge (kernel timestamp). A non-owner first waits
//!   Master_Down_Interval as BACKUP (RFC 9568 §6.4.1), so the report also
//!   gives the start-up overhead beyond it.
//! - **Mass failover**: r1 masters `n` IPv6 instances (VRRPv3, 100 ms) with
//!   4 VIPs each (a link-local and three in 2001:db8:1::/64: there are not
//!   enough IPv4 documentation addresses for 1020 VIPs); r1's daemon is
//!   frozen and its bridge port cut off. Per VIP: r2's first neighbour
//!   advertisement for it, after that instance's RFC deadline (r1's last
//!   advert of the VRID + Master_Down_Interval).

use std::{
    collections::{HashMap, HashSet},
    fmt::Write as _,
    net::Ipv6Addr,
    thread::sleep,
    time::Duration,
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::{
    daemon::{self, Inst, Kind, Setup},
    measure::{Ctx, P_BACKUP, P_MASTER, Pair, held, ms, wait_for},
    report::{f3, pct},
    wire::{Capture, Seen, now_ns},
};
use crate::lab::Lab;

/// The lone router's setup for the start-up measurement.
pub fn start_setup() -> Setup {
    Setup::single(3, 10, 0)
}

/// Starts `kind` once on a lone router; exec to first advert, ms.
pub fn start_once(ctx: &Ctx, kind: Kind) -> anyhow::Result<f64> {
    let mut lab = Lab::new("vb")?;
    let r1 = lab.host("r1", &["192.0.2.1/24"])?;
    let dir = ctx.dir.join(lab.lan());
    std::fs::create_dir_all(&dir)?;
    let cap = Capture::start(lab.lan(), "br0")?;
    sleep(Duration::from_millis(50));
    let t0 = now_ns();
    let idx = daemon::start(
        &mut lab,
        kind,
        &ctx.agent,
        &r1,
        "r1",
        &start_setup(),
        P_MASTER,
        &dir,
    )?;
    let first = || {
        cap.snapshot().iter().find_map(|s| match *s {
            Seen::Advert { t, .. } if t > t0 => Some(t),
            _ => None,
        })
    };
    wait_for(Duration::from_secs(5), Duration::from_millis(1), || {
        first().is_some()
    });
    let _ = lab.signal_group(idx, libc::SIGKILL);
    let _ = lab.wait(idx);
    let t = first().with_context(|| format!("{}: no advert within 5 s", kind.name()))?;
    Ok(ms(t - t0))
}

/// `n` IPv6 instances (VRIDs 1..=n), 4 VIPs each.
pub fn mass_setup(n: u8) -> Setup {
    let instances = (1..=n)
        .map(|v| {
            let mut vips = vec![format!("fe80::1:{v:x}/64")];
            vips.extend((1..=3).map(|j| format!("2001:db8:1::{v:x}:{j}/64")));
            Inst { vrid: v, vips }
        })
        .collect();
    Setup {
        version: 3,
        interval_ms: 100,
        instances,
    }
}

/// One mass failover.
#[derive(Clone, Debug)]
pub struct MassTrial {
    /// VIPs configured.
    pub vips: usize,
    /// Per announced VIP: its first neighbour advertisement from r2 after
    /// its instance's RFC deadline, ms (negative: before it).
    pub announce_ms: Vec<f64>,
    /// Per instance: r2's first advert after the deadline, ms.
    pub advert_ms: Vec<f64>,
}

/// One mass failover of `n` instances with `kind` on both routers.
pub fn mass_once(ctx: &Ctx, kind: Kind, n: u8) -> anyhow::Result<MassTrial> {
    let setup = mass_setup(n);
    let mut pair = Pair::new_master_first(ctx, "vb", kind, setup.clone())?;
    if !wait_for(Duration::from_secs(60), Duration::from_millis(50), || {
        pair.converged()
    }) {
        bail!("{} did not converge\n{}", kind.name(), pair.log_tail());
    }
    let cap = Capture::start(pair.lab.lan(), "br0")?;
    sleep(Duration::from_millis(1000));
    // r1 vanishes: its daemon frozen and its bridge port cut off. Not
    // killed with its link set down as elsewhere: on this one shared kernel,
    // flushing a thousand addresses (and detaching XDP) holds the rtnl lock
    // for up to seconds, and r2's address additions would wait for it,
    // which no two real routers do. Killed when the lab drops.
    let r1 = pair.r1_idx.context("r1 not running")?;
    let t0 = now_ns();
    pair.lab.signal_group(r1, libc::SIGSTOP)?;
    let (lan, port) = (pair.lab.lan().to_owned(), pair.r1.port.clone());
    pair.lab.ip(&lan, &["link", "set", &port, "nomaster"])?;
    // No polling meanwhile: listing a thousand addresses every few
    // milliseconds would compete with the daemons for the CPUs.
    let mdi = Duration::from_secs_f64(setup.master_down_ms(P_BACKUP) / 1e3);
    sleep(mdi + Duration::from_secs(3));
    let seen = cap.snapshot();
    let vips: HashSet<String> = setup.all_vips().into_iter().collect();
    let r2_held = held(&pair.lab, &pair.r2, &vips);
    if r2_held != vips.len() {
        eprintln!(
            "bench: {}: r2 holds {r2_held} of {} VIPs 3 s after the deadline",
            kind.name(),
            vips.len()
        );
    }
    let mdi_ns = (setup.master_down_ms(P_BACKUP) * 1e6) as i64;
    let mut deadline: HashMap<u8, i64> = HashMap::new();
    let mut r2_advert: HashMap<u8, i64> = HashMap::new();
    let mut first_na: HashMap<Ipv6Addr, i64> = HashMap::new();
    let r2_mac = daemon::parse_mac(&pair.r2.mac)?;
    for s in &seen {
        match *s {
            Seen::Advert6 { t, vrid, .. } if t < t0 => {
                deadline.insert(vrid, t + mdi_ns);
            }
            Seen::Advert6 { t, vrid, .. } => {
                r2_advert.entry(vrid).or_insert(t);
            }
            Seen::Na { t, ip, mac } if t > t0 && mac == r2_mac => {
                first_na.entry(ip).or_insert(t);
            }
            _ => {}
        }
    }
    let mut announce_ms = Vec::new();
    let mut advert_ms = Vec::new();
    for inst in &setup.instances {
        let Some(&d) = deadline.get(&inst.vrid) else {
            continue;
        };
        if let Some(&a) = r2_advert.get(&inst.vrid) {
            advert_ms.push(ms(a - d));
        }
        for v in &inst.vips {
            let ip: Option<Ipv6Addr> = v.split('/').next().and_then(|a| a.parse().ok());
            if let Some(t) = ip.and_then(|ip| first_na.get(&ip)) {
                announce_ms.push(ms(t - d));
            }
        }
    }
    if deadline.len() < setup.instances.len() / 2 {
        bail!(
            "{}: adverts of only {} of {} instances captured before the kill",
            kind.name(),
            deadline.len(),
            setup.instances.len()
        );
    }
    Ok(MassTrial {
        vips: vips.len(),
        announce_ms,
        advert_ms,
    })
}

/// Start-up runs per daemon (ms each).
pub type StartRuns = Vec<(Kind, Result<Vec<f64>, String>)>;
/// Mass failover runs per daemon.
pub type MassRuns = Vec<(Kind, Result<Vec<MassTrial>, String>)>;

/// Both sections (markdown).
pub fn markdown(start: &StartRuns, mass: &MassRuns) -> String {
    let mdi = start_setup().master_down_ms(P_MASTER);
    let mut m = format!(
        "\n## 8. Start to first advert\n\n\
         A lone router (priority {P_MASTER}, 10 ms adverts) is started; from just before \
         `ip netns exec` to its first advert on the bridge. As a non-owner it first waits \
         Master_Down_Interval ({mdi:.2} ms) as BACKUP, so the overhead column is the start-up \
         cost itself. p50 / p99 / max in ms.\n\n\
         | daemon | trials | exec → first advert | − Master_Down_Interval |\n|---|---|---|---|\n"
    );
    for (k, r) in start {
        match r {
            Ok(v) => {
                let over: Vec<f64> = v.iter().map(|x| x - mdi).collect();
                let _ = writeln!(
                    m,
                    "| {} | {} | {} | {} |",
                    k.name(),
                    v.len(),
                    f3(pct(v)),
                    f3(pct(&over))
                );
            }
            Err(e) => {
                let _ = writeln!(
                    m,
                    "| {} | failed: {} | | |",
                    k.name(),
                    e.lines().next().unwrap_or("")
                );
            }
        }
    }
    m.push_str(
        "\n## 9. Mass failover\n\n\
         r1 masters the instances (VRRPv3 over IPv6, 100 ms adverts, 4 VIPs each: one \
         link-local and three in 2001:db8:1::/64 — IPv4 has too few documentation addresses); \
         its daemon is frozen (SIGSTOP) and its bridge port cut off (not killed with its link \
         down: on one shared kernel the flush of a thousand addresses holds the rtnl lock for \
         up to seconds and stalls r2's address additions, which no two real routers do). Per VIP: r2's first neighbour \
         advertisement for it after its instance's RFC deadline (r1's last advert of that VRID \
         on the bridge + Master_Down_Interval), pooled over trials. **All VIPs** = the last \
         VIP's, per trial (median over trials). Goal: p99 ≤ 5 ms. ms, p50 / p99 / max.\n\n\
         | daemon | trials | instances × VIPs | VIPs announced | per VIP after deadline | all VIPs announced | first advert per instance after deadline |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for (k, r) in mass {
        match r {
            Ok(v) if !v.is_empty() => {
                let all: Vec<f64> = v.iter().flat_map(|t| t.announce_ms.clone()).collect();
                let adv: Vec<f64> = v.iter().flat_map(|t| t.advert_ms.clone()).collect();
                let last: Vec<f64> = v
                    .iter()
                    .filter(|t| t.announce_ms.len() == t.vips)
                    .filter_map(|t| t.announce_ms.iter().copied().reduce(f64::max))
                    .collect();
                let announced: usize = v.iter().map(|t| t.announce_ms.len()).sum();
                let total: usize = v.iter().map(|t| t.vips).sum();
                let _ = writeln!(
                    m,
                    "| {} | {} | {} × 4 | {announced}/{total} | {} | {} | {} |",
                    k.name(),
                    v.len(),
                    v[0].vips / 4,
                    f3(pct(&all)),
                    pct(&last).map_or("never all".to_owned(), |p| format!("{:.2}", p[0])),
                    f3(pct(&adv))
                );
            }
            Ok(_) => {}
            Err(e) => {
                let _ = writeln!(
                    m,
                    "| {} | failed: {} | | | | | |",
                    k.name(),
                    e.lines().next().unwrap_or("")
                );
            }
        }
    }
    m
}

/// Goal rows: start to first advert under 50 ms (p99), every VIP of a
/// mass failover announced within 5 ms of the deadline (p99).
pub fn goals(start: &StartRuns, mass: &MassRuns) -> String {
    let yes = |b: bool| if b { "yes" } else { "**no**" };
    let mut g = String::new();
    if let Some(p) = start
        .iter()
        .find(|(k, _)| *k == Kind::Agent)
        .and_then(|(_, r)| r.as_ref().ok())
        .and_then(|v| pct(v))
    {
        let _ = writeln!(
            g,
            "| start to first advert < 50 ms (p99) | {:.2} ms (p50 {:.2}) | {} |",
            p[1],
            p[0],
            yes(p[1] < 50.0)
        );
    }
    if let Some(v) = mass
        .iter()
        .find(|(k, _)| *k == Kind::Agent)
        .and_then(|(_, r)| r.as_ref().ok())
    {
        let all: Vec<f64> = v.iter().flat_map(|t| t.announce_ms.clone()).collect();
        let complete = v.iter().all(|t| t.announce_ms.len() == t.vips);
        if let Some(p) = pct(&all) {
            let _ = writeln!(
                g,
                "| mass failover ({} × 4 VIPs): every VIP announced within 5 ms of the deadline (p99) | {:.2} ms{} | {} |",
                v.first().map_or(0, |t| t.vips / 4),
                p[1],
                if complete {
                    ""
                } else {
                    ", some VIPs never announced"
                },
                yes(p[1] <= 5.0 && complete)
            );
        }
    }
    g
}

/// Both sections as JSON.
pub fn json(start: &StartRuns, mass: &MassRuns) -> Value {
    let err = |e: &String| json!({ "error": e });
    json!({
        "start_to_first_advert": {
            "interval_ms": 10, "priority": P_MASTER,
            "master_down_interval_ms": start_setup().master_down_ms(P_MASTER),
            "ms": start.iter().map(|(k, r)| (k.name().to_owned(), r.as_ref().map_or_else(err, |v| json!(v)))).collect::<serde_json::Map<_, _>>(),
        },
        "mass_failover": mass.iter().map(|(k, r)| {
            let v = r.as_ref().map_or_else(err, |t| {
                Value::from(t.iter().map(|t| json!({
                    "vips": t.vips, "announce_after_deadline_ms": t.announce_ms,
                    "first_advert_after_deadline_ms": t.advert_ms,
                })).collect::<Vec<_>>())
            });
            (k.name().to_owned(), v)
        }).collect::<serde_json::Map<_, _>>(),
    })
}
