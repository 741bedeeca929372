//! The benchmark report: `report.md` (tables, goals, notes), `results.json`
//! (every trial), `failover.svg` (client outage per trial) and
//! `detection.svg` (detection − Master_Down_Interval per trial).

use std::{fmt::Write as _, path::Path};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::{
    daemon::{Kind, Setup},
    measure::{Flood, How, P_BACKUP, Steady, Trial},
};

type Outcome<T> = Result<T, String>;

/// One chart panel: interval label, RFC bound (ms), outages per daemon.
pub type Panel = (String, f64, Vec<(Kind, Vec<f64>)>);

struct FailCell {
    how: How,
    version: u8,
    interval_ms: u64,
    vips: usize,
    bound_ms: f64,
    runs: Vec<(Kind, Outcome<Vec<Trial>>)>,
}

struct SteadyCell {
    version: u8,
    interval_ms: u64,
    instances: usize,
    runs: Vec<(Kind, Outcome<Steady>)>,
}

/// Everything a run measured.
pub struct Results {
    quick: bool,
    agent: String,
    fail: Vec<FailCell>,
    steady: Vec<SteadyCell>,
    flood: Vec<(Kind, Outcome<Flood>)>,
    /// The `bench xdp` table, if it ran.
    pub xdp: Option<String>,
    /// The fault table's runs.
    pub faults: super::faults::Runs,
    /// Start to first advert, per daemon.
    pub start: super::mass::StartRuns,
    /// Mass failover trials, per daemon.
    pub mass: super::mass::MassRuns,
    /// Service dies (Redis hot standby) trials.
    pub service: super::service::Runs,
    /// The checks' own CPU cost.
    pub check_cpu: super::service::CpuRuns,
    /// Wall time of the run.
    pub elapsed_s: f64,
}

/// p50, p99 and max by nearest rank; None if empty.
pub(super) fn pct(v: &[f64]) -> Option<[f64; 3]> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let rank = (p * s.len() as f64).ceil() as usize;
        s[rank.clamp(1, s.len()) - 1]
    };
    Some([at(0.50), at(0.99), s[s.len() - 1]])
}

/// "p50 / p99 / max" with two decimals.
pub(super) fn f3(v: Option<[f64; 3]>) -> String {
    v.map_or("–".to_owned(), |[a, b, c]| {
        format!("{a:.2} / {b:.2} / {c:.2}")
    })
}

fn ratio3(a: Option<[f64; 3]>, k: Option<[f64; 3]>) -> String {
    match (a, k) {
        (Some(a), Some(k)) => (0..3)
            .map(|i| ratio(a[i], k[i]))
            .collect::<Vec<_>>()
            .join(" / "),
        _ => "–".to_owned(),
    }
}

fn ratio(a: f64, k: f64) -> String {
    if k.abs() < 1e-9 {
        if a.abs() < 1e-9 {
            "1".to_owned()
        } else {
            "∞".to_owned()
        }
    } else {
        format!("{:.2}", a / k)
    }
}

fn interval_name(version: u8, ms: u64) -> String {
    if ms >= 1000 {
        format!("{} s (v{version})", ms / 1000)
    } else {
        format!("{ms} ms (v{version})")
    }
}

fn cmd(argv: &[&str]) -> String {
    std::process::Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            s.lines().next().unwrap_or("").trim().to_owned()
        })
        .unwrap_or_default()
}

/// The CPU model (`/proc/cpuinfo`).
pub(super) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

impl Results {
    /// An empty result set.
    pub fn new(quick: bool, agent: &Path) -> Results {
        Results {
            quick,
            agent: agent.display().to_string(),
            fail: Vec::new(),
            steady: Vec::new(),
            flood: Vec::new(),
            xdp: None,
            faults: Vec::new(),
            start: Vec::new(),
            mass: Vec::new(),
            service: Vec::new(),
            check_cpu: Vec::new(),
            elapsed_s: 0.0,
        }
    }

    /// Records a failover / handover cell.
    pub fn failover(&mut self, how: How, s: &Setup, kind: Kind, r: Outcome<Vec<Trial>>) {
        let vips = s.all_vips().len();
        let bound_ms = match how {
            How::Kill => s.master_down_ms(P_BACKUP),
            How::Stop => s.skew_ms(P_BACKUP),
        };
        let pos = self.fail.iter().position(|c| {
            c.how == how
                && c.version == s.version
                && c.interval_ms == s.interval_ms
                && c.vips == vips
        });
        let cell = match pos {
            Some(i) => &mut self.fail[i],
            None => {
                self.fail.push(FailCell {
                    how,
                    version: s.version,
                    interval_ms: s.interval_ms,
                    vips,
                    bound_ms,
                    runs: Vec::new(),
                });
                self.fail.last_mut().expect("just pushed")
            }
        };
        cell.runs.push((kind, r));
    }

    /// Records a steady-state cell.
    pub fn steady(&mut self, s: &Setup, kind: Kind, r: Outcome<Steady>) {
        let n = s.instances.len();
        let pos = self.steady.iter().position(|c| {
            c.version == s.version && c.interval_ms == s.interval_ms && c.instances == n
        });
        let cell = match pos {
            Some(i) => &mut self.steady[i],
            None => {
                self.steady.push(SteadyCell {
                    version: s.version,
                    interval_ms: s.interval_ms,
                    instances: n,
                    runs: Vec::new(),
                });
                self.steady.last_mut().expect("just pushed")
            }
        };
        cell.runs.push((kind, r));
    }

    /// Records a flood.
    pub fn flood(&mut self, kind: Kind, r: Outcome<Flood>) {
        self.flood.push((kind, r));
    }

    /// The first failure, if any.
    pub fn first_error(&self) -> Option<String> {
        let f = self
            .fail
            .iter()
            .flat_map(|c| c.runs.iter())
            .find_map(|(k, r)| r.as_ref().err().map(|e| format!("{}: {e}", k.name())));
        let s = self
            .steady
            .iter()
            .flat_map(|c| c.runs.iter())
            .find_map(|(k, r)| r.as_ref().err().map(|e| format!("{}: {e}", k.name())));
        let fl = self
            .flood
            .iter()
            .find_map(|(k, r)| r.as_ref().err().map(|e| format!("{}: {e}", k.name())));
        let fa = self.faults.iter().find_map(|(sc, k, r)| {
            r.as_ref()
                .err()
                .map(|e| format!("{} {}: {e}", k.name(), sc.key()))
        });
        let st = self
            .start
            .iter()
            .find_map(|(k, r)| r.as_ref().err().map(|e| format!("{} start: {e}", k.name())));
        let ma = self.mass.iter().find_map(|(k, r)| {
            r.as_ref()
                .err()
                .map(|e| format!("{} mass failover: {e}", k.name()))
        });
        let sv = self.service.iter().find_map(|(v, i, r)| {
            r.as_ref()
                .err()
                .filter(|_| !v.fails_in_a_namespace())
                .map(|e| format!("service dies, {} at {i} ms: {e}", v.label()))
        });
        f.or(s).or(fl).or(fa).or(st).or(ma).or(sv)
    }

    fn trials(cell: &FailCell, kind: Kind) -> Option<&Vec<Trial>> {
        cell.runs
            .iter()
            .find(|(k, _)| *k == kind)
            .and_then(|(_, r)| r.as_ref().ok())
    }

    fn stat(cell: &FailCell, kind: Kind, f: impl Fn(&Trial) -> Option<f64>) -> Option<[f64; 3]> {
        let v: Vec<f64> = Self::trials(cell, kind)?.iter().filter_map(f).collect();
        pct(&v)
    }

    fn kill_cell(&self, interval_ms: u64, vips: usize) -> Option<&FailCell> {
        self.fail
            .iter()
            .find(|c| c.how == How::Kill && c.interval_ms == interval_ms && c.vips == vips)
    }

    /// The compact table printed at the end of a run.
    pub fn summary_table(&self) -> String {
        let mut s = String::from(
            "| measure (p50 / p99 / max, ms) | vrrp-agent | keepalived | ratio |\n|---|---|---|---|\n",
        );
        for c in self
            .fail
            .iter()
            .filter(|c| c.how == How::Kill && c.vips == 1)
        {
            let f = |t: &Trial| Some(t.late_ms());
            let (a, k) = (
                Self::stat(c, Kind::Agent, f),
                Self::stat(c, Kind::Keepalived, f),
            );
            let _ = writeln!(
                s,
                "| host dies: detection − Master_Down_Interval, {} | {} | {} | {} |",
                interval_name(c.version, c.interval_ms),
                f3(a),
                f3(k),
                ratio3(a, k)
            );
        }
        for c in &self.fail {
            let what = match c.how {
                How::Kill => "host dies: client outage",
                How::Stop => "graceful stop: handover",
            };
            let f = |t: &Trial| match c.how {
                How::Kill => t.outage_ms,
                How::Stop => Some(t.detect_ms),
            };
            let (a, k) = (
                Self::stat(c, Kind::Agent, f),
                Self::stat(c, Kind::Keepalived, f),
            );
            let _ = writeln!(
                s,
                "| {what}, {}, {} VIP(s) | {} | {} | {} |",
                interval_name(c.version, c.interval_ms),
                c.vips,
                f3(a),
                f3(k),
                ratio3(a, k)
            );
        }
        for c in &self.steady {
            let get = |kind: Kind| {
                c.runs
                    .iter()
                    .find(|(k, _)| *k == kind)
                    .and_then(|(_, r)| r.as_ref().ok())
            };
            if let (Some(a), Some(k)) = (get(Kind::Agent), get(Kind::Keepalived)) {
                let _ = writeln!(
                    s,
                    "| CPU % master / backup, {} x {} | {:.2} / {:.2} | {:.2} / {:.2} | {} / {} |",
                    c.instances,
                    interval_name(c.version, c.interval_ms),
                    a.master_cpu,
                    a.backup_cpu,
                    k.master_cpu,
                    k.backup_cpu,
                    ratio(a.master_cpu, k.master_cpu),
                    ratio(a.backup_cpu, k.backup_cpu)
                );
                let _ = writeln!(
                    s,
                    "| RSS MiB master / backup, {} x {} | {:.1} / {:.1} | {:.1} / {:.1} | {} / {} |",
                    c.instances,
                    interval_name(c.version, c.interval_ms),
                    a.master_rss as f64 / 1024.0,
                    a.backup_rss as f64 / 1024.0,
                    k.master_rss as f64 / 1024.0,
                    k.backup_rss as f64 / 1024.0,
                    ratio(a.master_rss as f64, k.master_rss as f64),
                    ratio(a.backup_rss as f64, k.backup_rss as f64)
                );
            }
        }
        let get = |kind: Kind| {
            self.flood
                .iter()
                .find(|(k, _)| *k == kind)
                .and_then(|(_, r)| r.as_ref().ok())
        };
        if let (Some(a), Some(k)) = (get(Kind::Agent), get(Kind::Keepalived)) {
            let _ = writeln!(
                s,
                "| flood: backup CPU % ({:.0} / {:.0} pps), false adverts | {:.1}, {} | {:.1}, {} | {} |",
                a.pps,
                k.pps,
                a.backup_cpu,
                a.false_adverts,
                k.backup_cpu,
                k.false_adverts,
                ratio(a.backup_cpu, k.backup_cpu)
            );
        }
        s
    }

    fn json(&self) -> Value {
        let out = |r: &Outcome<Value>| match r {
            Ok(v) => v.clone(),
            Err(e) => json!({ "error": e }),
        };
        let fail: Vec<Value> = self
            .fail
            .iter()
            .map(|c| {
                let runs: serde_json::Map<String, Value> = c
                    .runs
                    .iter()
                    .map(|(k, r)| {
                        let v = r
                            .as_ref()
                            .map(|t| Value::from(t.iter().map(Trial::json).collect::<Vec<_>>()))
                            .map_err(Clone::clone);
                        (k.name().to_owned(), out(&v))
                    })
                    .collect();
                json!({
                    "kind": match c.how { How::Kill => "host_dies", How::Stop => "graceful_stop" },
                    "version": c.version, "interval_ms": c.interval_ms, "vips": c.vips,
                    "rfc_bound_ms": c.bound_ms, "trials": runs,
                })
            })
            .collect();
        let steady: Vec<Value> = self
            .steady
            .iter()
            .map(|c| {
                let runs: serde_json::Map<String, Value> = c
                    .runs
                    .iter()
                    .map(|(k, r)| {
                        let v = r
                            .as_ref()
                            .map(|s| {
                                json!({
                                    "master_cpu_pct": s.master_cpu, "backup_cpu_pct": s.backup_cpu,
                                    "master_rss_kib": s.master_rss, "backup_rss_kib": s.backup_rss,
                                    "stable": s.stable,
                                })
                            })
                            .map_err(Clone::clone);
                        (k.name().to_owned(), out(&v))
                    })
                    .collect();
                json!({"version": c.version, "interval_ms": c.interval_ms,
                       "instances": c.instances, "daemons": runs})
            })
            .collect();
        let flood: serde_json::Map<String, Value> = self
            .flood
            .iter()
            .map(|(k, r)| {
                let v = r
                    .as_ref()
                    .map(|f| {
                        json!({
                            "sent": f.sent, "pps": f.pps, "backup_cpu_pct": f.backup_cpu,
                            "false_adverts": f.false_adverts, "false_vip": f.false_vip,
                            "handover_ms": f.handover_ms, "skew_ms": f.skew_ms,
                            "log_bytes": f.log_bytes,
                        })
                    })
                    .map_err(Clone::clone);
                (k.name().to_owned(), out(&v))
            })
            .collect();
        json!({
            "quick": self.quick,
            "elapsed_s": self.elapsed_s,
            "machine": {
                "kernel": cmd(&["uname", "-r"]),
                "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
                "keepalived": cmd(&["keepalived", "--version"]),
                "agent": std::path::Path::new(&self.agent).file_name().map(|f| f.to_string_lossy().into_owned()),
                "cpu": cpu_model(),
                "agent_commit": cmd(&["git", "-C", env!("CARGO_MANIFEST_DIR"), "describe", "--always", "--dirty"]),
            },
            "failover": fail,
            "steady": steady,
            "flood": flood,
            "xdp": self.xdp,
            "faults": super::faults::json(&self.faults),
            "startup_and_mass": super::mass::json(&self.start, &self.mass),
            "service": super::service::json(&self.service, &self.check_cpu),
        })
    }

    /// Writes report.md, results.json and failover.svg into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(
            dir.join("results.json"),
            serde_json::to_string_pretty(&self.json())?,
        )?;
        std::fs::write(dir.join("report.md"), self.markdown())?;
        super::chart::failover_svg(self, &dir.join("failover.svg"), false)?;
        super::chart::failover_svg(self, &dir.join("detection.svg"), true)?;
        Ok(())
    }

    /// Chart panels: one per advert interval (host dies, 1 VIP); per trial
    /// the client outage (`late = false`, with Master_Down_Interval as the
    /// reference) or detection − Master_Down_Interval (`late = true`, 0 as
    /// the reference).
    pub fn chart_data(&self, late: bool) -> Vec<Panel> {
        self.fail
            .iter()
            .filter(|c| c.how == How::Kill && c.vips == 1)
            .map(|c| {
                let per = Kind::BOTH
                    .iter()
                    .map(|&k| {
                        let v = Self::trials(c, k)
                            .map(|t| {
                                t.iter()
                                    .filter_map(
                                        |t| if late { Some(t.late_ms()) } else { t.outage_ms },
                                    )
                                    .collect()
                            })
                            .unwrap_or_default();
                        (k, v)
                    })
                    .collect();
                let reference = if late { 0.0 } else { c.bound_ms };
                (interval_name(c.version, c.interval_ms), reference, per)
            })
            .collect()
    }

    fn markdown(&self) -> String {
        let mut m = String::new();
        let j = self.json();
        let _ = writeln!(
            m,
            "# vrrp-agent vs keepalived — benchmark report\n\n\
             Generated by `cargo xtask bench{}` in {:.0} s on {} CPU(s) ({}), kernel {}, {}, \
             vrrp-agent built from `{}`. \
             Both daemons run in identical labs of network namespaces (a bridge, r1 at priority {}, \
             r2 at priority {P_BACKUP}, a client), the same daemon on both routers. \
             **Ratio = vrrp-agent / keepalived** (below 1: vrrp-agent is faster / lighter).\n",
            if self.quick { " --quick" } else { "" },
            self.elapsed_s,
            j["machine"]["cpus"],
            j["machine"]["cpu"].as_str().unwrap_or("?"),
            j["machine"]["kernel"].as_str().unwrap_or("?"),
            j["machine"]["keepalived"]
                .as_str()
                .unwrap_or("keepalived ?"),
            j["machine"]["agent_commit"].as_str().unwrap_or("?"),
            super::measure::P_MASTER,
        );
        if self.quick {
            m.push_str(
                "> **Quick run**: few trials and short windows; it checks the harness, \
                 it is not a measurement to quote. `cargo xtask bench` does the full run.\n\n",
            );
        }
        m.push_str("## Summary\n\n");
        m.push_str(&self.summary_table());
        m.push_str("\n## Goals\n\n");
        m.push_str(&self.goals());

        m.push_str(
            "\n## 1. Failover when the master host dies\n\n\
             r1's daemon is SIGKILLed (its whole process group) and its `eth0` set down right \
             after, both right after an advert of r1 is seen on the bridge (within ~0.2 ms): the \
             same phase of the advert cycle in every trial, and the worst case for the client. **Detection** = last advert of r1 to first advert of r2, both from a capture \
             on the bridge (AF_PACKET, kernel receive timestamps); the RFC's \
             Master_Down_Interval (3 × interval + Skew_Time, priority 100) is what a backup must \
             wait. **Outage** = the longest gap between ICMP echo replies seen by the client, \
             which probes the VIP every 0.5 ms. Values p50 / p99 / max in ms (nearest rank).\n\n\
             | interval | VIPs | daemon | trials | detection | Master_Down_Interval | detection − MDI | client outage |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for c in self
            .fail
            .iter()
            .filter(|c| c.how == How::Kill && c.vips == 1)
        {
            self.fail_rows(&mut m, c);
        }
        m.push_str(
            "\n![client outage per trial](failover.svg)\n\n\
             ![detection − Master_Down_Interval per trial](detection.svg)\n",
        );

        m.push_str(
            "\n## 2. Graceful stop\n\n\
             r1 gets SIGTERM and sends a priority-0 advert; r2 must take over after Skew_Time \
             (RFC 5798 §6.4.2). **Handover** = r1's priority-0 advert to r2's first advert.\n\n\
             | interval | VIPs | daemon | trials | handover | Skew_Time | handover − Skew | client outage |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for c in self.fail.iter().filter(|c| c.how == How::Stop) {
            self.fail_rows(&mut m, c);
        }

        m.push_str(
            "\n## 3. Takeover path\n\n\
             Method: the decision instant is taken as the RFC deadline, *last advert of the old \
             master on the wire + Master_Down_Interval* (a backup that decides earlier breaks the \
             RFC, so a negative value means it fired early). From there: the first advert of the \
             new master, its first gratuitous ARP, and the first gratuitous ARP of the last VIP \
             to be announced (all VIPs announced). All from the capture, so both daemons are \
             measured the same way; the numbers include how late the daemon's timer fires. \
             Failover at 100 ms adverts, host dies. p50 / p99 / max in ms.\n\n\
             The last two columns take the daemon's own first advert as the origin instead, \
             which removes the timer's lateness: the announcement path alone.\n\n\
             | VIPs | daemon | trials | first advert | first GARP | all VIPs announced | first GARP − first advert | all VIPs − first advert |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for vips in [1usize, 100] {
            let Some(c) = self.kill_cell(100, vips) else {
                continue;
            };
            let mut stats = Vec::new();
            for kind in Kind::BOTH {
                let n = Self::trials(c, kind).map_or(0, Vec::len);
                let adv = Self::stat(c, kind, |t| Some(t.late_ms()));
                let g1 = Self::stat(c, kind, |t| t.first_garp_ms);
                let ga = Self::stat(c, kind, |t| t.all_garp_ms);
                let g1a = Self::stat(c, kind, |t| t.first_garp_ms.map(|g| g - t.late_ms()));
                let gaa = Self::stat(c, kind, |t| t.all_garp_ms.map(|g| g - t.late_ms()));
                let _ = writeln!(
                    m,
                    "| {vips} | {} | {n} | {} | {} | {} | {} | {} |",
                    kind.name(),
                    f3(adv),
                    f3(g1),
                    f3(ga),
                    f3(g1a),
                    f3(gaa)
                );
                stats.push((adv, g1, ga, g1a, gaa));
            }
            if let [a, k] = stats[..] {
                let _ = writeln!(
                    m,
                    "| {vips} | ratio | | {} | {} | {} | {} | {} |",
                    ratio3(a.0, k.0),
                    ratio3(a.1, k.1),
                    ratio3(a.2, k.2),
                    ratio3(a.3, k.3),
                    ratio3(a.4, k.4)
                );
            }
        }
        for c in &self.fail {
            for (k, r) in &c.runs {
                if let Err(e) = r {
                    let _ = writeln!(
                        m,
                        "\n**{} failed** ({:?}, {}, {} VIPs): `{}`",
                        k.name(),
                        c.how,
                        interval_name(c.version, c.interval_ms),
                        c.vips,
                        e.lines().next().unwrap_or("")
                    );
                }
            }
        }

        m.push_str(
            "\n## 4. Steady-state cost\n\n\
             r1 (master) and r2 (backup) run the same configuration: 1 instance, or 255 \
             instances (VRIDs 1–255, one VIP each) on one interface. After convergence and \
             start-up work, CPU = Δ run time of every thread of every process of the daemon \
             (keepalived: parent and VRRP child) from `/proc/<pid>/task/<tid>/schedstat` \
             (ns resolution) over the window, in % of one core; RSS = sum of VmRSS.\n\n\
             | interval | instances | daemon | master CPU % | backup CPU % | master RSS MiB | backup RSS MiB | roles held |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for c in &self.steady {
            let mut got = Vec::new();
            for (k, r) in &c.runs {
                match r {
                    Ok(s) => {
                        let _ = writeln!(
                            m,
                            "| {} | {} | {} | {:.2} | {:.2} | {:.1} | {:.1} | {} |",
                            interval_name(c.version, c.interval_ms),
                            c.instances,
                            k.name(),
                            s.master_cpu,
                            s.backup_cpu,
                            s.master_rss as f64 / 1024.0,
                            s.backup_rss as f64 / 1024.0,
                            if s.stable { "yes" } else { "**no**" }
                        );
                        got.push(s.clone());
                    }
                    Err(e) => {
                        let _ = writeln!(
                            m,
                            "| {} | {} | {} | failed: {} | | | | |",
                            interval_name(c.version, c.interval_ms),
                            c.instances,
                            k.name(),
                            e.lines().next().unwrap_or("")
                        );
                    }
                }
            }
            if let [a, k] = &got[..] {
                let _ = writeln!(
                    m,
                    "| | | ratio | {} | {} | {} | {} | |",
                    ratio(a.master_cpu, k.master_cpu),
                    ratio(a.backup_cpu, k.backup_cpu),
                    ratio(a.master_rss as f64, k.master_rss as f64),
                    ratio(a.backup_rss as f64, k.backup_rss as f64)
                );
            }
        }

        m.push_str(
            "\n## 5. Flood at a backup\n\n\
             A generator in xtask (AF_PACKET, `sendmmsg`, from the bridge namespace out of r2's \
             bridge port, so only the backup receives it) sends VRRP to 224.0.0.18 from \
             203.0.113.0/24: 3/7 well-formed VRRPv3 adverts for foreign VRIDs 200–249, and 1/7 \
             each of the backup's own VRID with a bad checksum, TTL 254, version 1, and a \
             truncated address list. Master r1 advertises every 100 ms meanwhile. CPU is the \
             backup's over the first two thirds of the flood; then r1 stops gracefully and r2 \
             must take over **while still flooded** (proof that legitimate adverts still get \
             through). A false transition shows as adverts or a VIP from r2 before r1 stops.\n\n\
             | daemon | frames sent | rate pps | backup CPU % | false adverts | VIP taken | handover under flood ms (Skew_Time) | log bytes written |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        let mut got = Vec::new();
        for (k, r) in &self.flood {
            match r {
                Ok(f) => {
                    let _ = writeln!(
                        m,
                        "| {} | {} | {:.0} | {:.1} | {} | {} | {} ({:.2}) | {} |",
                        k.name(),
                        f.sent,
                        f.pps,
                        f.backup_cpu,
                        f.false_adverts,
                        if f.false_vip { "**yes**" } else { "no" },
                        f.handover_ms
                            .map_or("**none**".to_owned(), |h| format!("{h:.2}")),
                        f.skew_ms,
                        f.log_bytes
                    );
                    got.push(f.clone());
                }
                Err(e) => {
                    let _ = writeln!(
                        m,
                        "| {} | failed: {} | | | | | | |",
                        k.name(),
                        e.lines().next().unwrap_or("")
                    );
                }
            }
        }
        if let [a, k] = &got[..] {
            let _ = writeln!(
                m,
                "| ratio | | | {} | | | {} | |",
                ratio(a.backup_cpu, k.backup_cpu),
                match (a.handover_ms, k.handover_ms) {
                    (Some(x), Some(y)) => ratio(x, y),
                    _ => "–".to_owned(),
                }
            );
        }

        m.push_str("\n## 6. XDP per-packet cost (`cargo xtask bench xdp`)\n\n");
        match &self.xdp {
            Some(t) => m.push_str(t),
            None => m.push_str("Not run (`--quick`); run `cargo xtask bench xdp`.\n"),
        }
        m.push_str(&super::faults::markdown(&self.faults));
        m.push_str(&super::mass::markdown(&self.start, &self.mass));
        m.push_str(&super::service::markdown(&self.service, &self.check_cpu));
        m.push_str(NOTES);
        m
    }

    fn fail_rows(&self, m: &mut String, c: &FailCell) {
        let mut stats = Vec::new();
        for kind in Kind::BOTH {
            let n = Self::trials(c, kind).map_or(0, Vec::len);
            let d = Self::stat(c, kind, |t| Some(t.detect_ms));
            let l = Self::stat(c, kind, |t| Some(t.late_ms()));
            let o = Self::stat(c, kind, |t| t.outage_ms);
            let _ = writeln!(
                m,
                "| {} | {} | {} | {n} | {} | {:.2} | {} | {} |",
                interval_name(c.version, c.interval_ms),
                c.vips,
                kind.name(),
                f3(d),
                c.bound_ms,
                f3(l),
                f3(o)
            );
            stats.push((d, l, o));
        }
        if let [a, k] = stats[..] {
            let _ = writeln!(
                m,
                "| | | ratio | | {} | | {} | {} |",
                ratio3(a.0, k.0),
                ratio3(a.1, k.1),
                ratio3(a.2, k.2)
            );
        }
    }

    fn goals(&self) -> String {
        let mut g = String::from("| goal | result | met |\n|---|---|---|\n");
        let yes = |b: bool| if b { "yes" } else { "**no**" };
        // Detection within 1 ms of the formula at every interval.
        for c in self
            .fail
            .iter()
            .filter(|c| c.how == How::Kill && c.vips == 1)
        {
            if let Some(l) = Self::stat(c, Kind::Agent, |t| Some(t.late_ms().abs())) {
                let _ = writeln!(
                    g,
                    "| detection within 1 ms of Master_Down_Interval at {} | max \\|detection − MDI\\| {:.2} ms (p50 {:.2}) | {} |",
                    interval_name(c.version, c.interval_ms),
                    l[2],
                    l[0],
                    yes(l[2] <= 1.0)
                );
            }
        }
        if let Some(c) = self.kill_cell(10, 1) {
            let a = Self::stat(c, Kind::Agent, |t| t.outage_ms);
            let k = Self::stat(c, Kind::Keepalived, |t| t.outage_ms);
            if let (Some(a), Some(k)) = (a, k) {
                let _ = writeln!(
                    g,
                    "| p99 client outage at 10 ms ≤ keepalived's p50 | {:.2} ms vs {:.2} ms | {} |",
                    a[1],
                    k[0],
                    yes(a[1] <= k[0])
                );
            }
        }
        if let Some(c) = self.kill_cell(100, 100) {
            // Issue 5: "from the backup's decision to its first advert and
            // first GARP on the wire"; all VIPs announced is shown too.
            let adv = Self::stat(c, Kind::Agent, |t| Some(t.late_ms()));
            let garp = Self::stat(c, Kind::Agent, |t| t.first_garp_ms);
            let all = Self::stat(c, Kind::Agent, |t| t.all_garp_ms);
            if let (Some(adv), Some(garp), Some(all)) = (adv, garp, all) {
                let _ = writeln!(
                    g,
                    "| takeover path p99 ≤ 0.5 ms, 100 VIPs (first advert, first GARP) | first advert {:.2} ms, first GARP {:.2} ms after the deadline (all 100 VIPs announced: {:.2} ms) | {} |",
                    adv[1],
                    garp[1],
                    all[1],
                    yes(adv[1] <= 0.5 && garp[1] <= 0.5)
                );
            }
        }
        if let Some(c) = self
            .steady
            .iter()
            .find(|c| c.instances == 255 && c.interval_ms == 10)
        {
            let get = |kind: Kind| {
                c.runs
                    .iter()
                    .find(|(k, _)| *k == kind)
                    .and_then(|(_, r)| r.as_ref().ok())
            };
            if let (Some(a), Some(k)) = (get(Kind::Agent), get(Kind::Keepalived)) {
                let _ = writeln!(
                    g,
                    "| backup, 255 × 10 ms: CPU ≤ ⅓ of keepalived's | {:.2} % vs {:.2} % | {} |",
                    a.backup_cpu,
                    k.backup_cpu,
                    yes(a.backup_cpu * 3.0 <= k.backup_cpu)
                );
                let _ = writeln!(
                    g,
                    "| backup, 255 × 10 ms: RSS ≤ keepalived's | {:.1} MiB vs {:.1} MiB | {} |",
                    a.backup_rss as f64 / 1024.0,
                    k.backup_rss as f64 / 1024.0,
                    yes(a.backup_rss <= k.backup_rss)
                );
            }
        }
        for (k, r) in &self.flood {
            if let (Kind::Agent, Ok(f)) = (k, r) {
                let _ = writeln!(
                    g,
                    "| zero false transitions under a {:.0} pps flood | {} adverts, VIP taken: {} | {} |",
                    f.pps,
                    f.false_adverts,
                    f.false_vip,
                    yes(f.false_adverts == 0 && !f.false_vip && f.pps >= 200_000.0)
                );
            }
        }
        g.push_str(&super::faults::goals(&self.faults));
        g.push_str(&super::mass::goals(&self.start, &self.mass));
        g
    }
}

const NOTES: &str = "
## Method notes and known weaknesses

- One 2-core machine runs both routers, the client, the capture, the prober and (for
  the flood) the generator; they compete for the CPUs, and other work on the machine
  adds noise. Compare the two daemons within one report, not across reports.
- Detection is measured on the bridge, so it includes the daemon's timer slack and
  its send path; outage also includes the client's ARP update by the gratuitous ARP
  and the probe period (0.5 ms).
- The takeover path is measured from the RFC deadline, not from the daemon's own
  decision (keepalived does not log it with a usable timestamp); timer lateness is
  therefore part of it.
- CPU from the scheduler's per-thread run time counts only the daemon's own time: packets that XDP
  drops, and the kernel work of delivering packets to keepalived's sockets done in
  softirq context, are charged to whoever runs the softirq (often the sender), not
  to the daemon. The flood's CPU figures therefore understate keepalived's full
  kernel cost and the agent's XDP cost alike (see section 6 for the XDP cost).
- With 20 trials, p99 is the largest sample (nearest rank).
";

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(detect: f64, bound: f64, outage: f64) -> Trial {
        Trial {
            detect_ms: detect,
            bound_ms: bound,
            outage_ms: Some(outage),
            first_garp_ms: Some(detect - bound + 0.1),
            all_garp_ms: Some(detect - bound + 0.2),
        }
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(pct(&v), Some([10.0, 20.0, 20.0]));
        assert_eq!(pct(&[3.0]), Some([3.0, 3.0, 3.0]));
        assert_eq!(pct(&[]), None);
    }

    #[test]
    fn report_files_from_synthetic_results() {
        let mut r = Results::new(true, Path::new("/x/vrrp-agent"));
        for (interval, vips) in [(1000, 0), (100, 0), (10, 0), (100, 99)] {
            let s = Setup::single(if interval == 1000 { 2 } else { 3 }, interval, vips);
            let b = s.master_down_ms(P_BACKUP);
            r.failover(
                How::Kill,
                &s,
                Kind::Agent,
                Ok(vec![trial(b + 1.0, b, b), trial(b + 1.2, b, b + 0.5)]),
            );
            r.failover(
                How::Kill,
                &s,
                Kind::Keepalived,
                Ok(vec![trial(b + 0.1, b, b - 1.0)]),
            );
        }
        let s = Setup::many(3, 10, 255);
        let st = Steady {
            master_cpu: 1.0,
            backup_cpu: 0.5,
            master_rss: 9000,
            backup_rss: 9000,
            stable: true,
        };
        r.steady(&s, Kind::Agent, Ok(st.clone()));
        r.steady(&s, Kind::Keepalived, Err("did not converge".into()));
        r.flood(Kind::Agent, Err("no".into()));
        let dir = std::env::temp_dir().join(format!("xtask-report-test-{}", std::process::id()));
        r.write(&dir).expect("write");
        let md = std::fs::read_to_string(dir.join("report.md")).expect("md");
        assert!(md.contains("| | | ratio |"), "{md}");
        assert!(md.contains("failed: did not converge"));
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).expect("json"))
                .expect("valid JSON");
        assert_eq!(json["failover"].as_array().map(Vec::len), Some(4));
        for svg in ["failover.svg", "detection.svg"] {
            let text = std::fs::read_to_string(dir.join(svg)).expect("svg");
            assert!(text.contains("<circle"), "{svg} has points");
        }
        assert!(r.first_error().is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
