//! Fault injection for the fault suite (`tests/tests/faults.rs`): a packet
//! capture read back with its kernel timestamps, random loss on a bridge
//! port (nftables `numgen random`; this kernel has no netem), multicast
//! snooping with a querier on the lab bridge, and a few status readings.

use std::{
    path::PathBuf,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::{
    cluster::Agent,
    netns::{ChildGuard, Netns, TempDir, unique_name},
};

/// One captured frame: kernel receive time (ns since the Unix epoch) and
/// its bytes (Ethernet header first, cut at the snap length).
#[derive(Clone, Debug)]
pub struct Frame {
    /// Kernel receive timestamp, ns.
    pub t_ns: i64,
    /// The frame.
    pub data: Vec<u8>,
}

impl Frame {
    /// IPv4 source address and protocol, if this is an IPv4 frame.
    pub fn ipv4(&self) -> Option<([u8; 4], u8)> {
        let d = &self.data;
        if d.get(12..14)? != [0x08, 0x00] {
            return None;
        }
        let src: [u8; 4] = d.get(26..30)?.try_into().ok()?;
        Some((src, *d.get(23)?))
    }
}

/// A `tcpdump` capture on one interface of a namespace, written to a pcap
/// file with nanosecond kernel timestamps; read back by [`Capture::stop`].
pub struct Capture {
    child: ChildGuard,
    file: PathBuf,
}

impl Capture {
    /// Starts capturing frames that match `filter` (pcap syntax) on
    /// `ifname` in `ns`; returns once tcpdump is listening.
    pub fn start(ns: &Netns, dir: &TempDir, ifname: &str, filter: &str) -> anyhow::Result<Self> {
        let name = unique_name("cap");
        let file = dir.path().join(format!("{name}.pcap"));
        let log = dir.path().join(format!("{name}.log"));
        let file_s = file.display().to_string();
        let child = ns.spawn(
            "tcpdump",
            &[
                "-i",
                ifname,
                "-n",
                "-U",
                "--immediate-mode",
                "--time-stamp-precision=nano",
                "-s",
                "128",
                "-w",
                &file_s,
                filter,
            ],
            Some(&log),
        )?;
        let t0 = Instant::now();
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening on")
        {
            if t0.elapsed() > Duration::from_secs(10) {
                bail!(
                    "tcpdump did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
        Ok(Self { child, file })
    }

    /// Stops tcpdump (it flushes on SIGTERM) and returns every frame.
    pub fn stop(mut self) -> anyhow::Result<Vec<Frame>> {
        self.child.stop(Duration::from_secs(3));
        let bytes =
            std::fs::read(&self.file).with_context(|| format!("read {}", self.file.display()))?;
        parse_pcap(&bytes)
    }
}

/// Parses a classic pcap file (either byte order, µs or ns timestamps).
pub fn parse_pcap(b: &[u8]) -> anyhow::Result<Vec<Frame>> {
    let magic: [u8; 4] = b.get(..4).context("empty pcap")?.try_into()?;
    let (le, nano) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => bail!("not a pcap file: magic {magic:02x?}"),
    };
    let u32_at = |at: usize| -> Option<u32> {
        let w: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        })
    };
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let (Some(sec), Some(frac), Some(len)) = (u32_at(at), u32_at(at + 4), u32_at(at + 8))
        else {
            break;
        };
        let start = at + 16;
        let end = start + usize::try_from(len)?;
        let Some(data) = b.get(start..end) else {
            break; // cut short while tcpdump was stopped
        };
        let frac_ns = if nano {
            i64::from(frac)
        } else {
            i64::from(frac) * 1000
        };
        frames.push(Frame {
            t_ns: i64::from(sec) * 1_000_000_000 + frac_ns,
            data: data.to_vec(),
        });
        at = end;
    }
    Ok(frames)
}

/// The largest gap between consecutive timestamps, in ns (0 for fewer than two).
pub fn max_gap_ns(times: &[i64]) -> i64 {
    times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
}

/// Drops a random share `percent` of the VRRP frames (IPv4 protocol 112)
/// that enter the bridge from `port`, in the bridge namespace `lan`
/// (nftables bridge family, `numgen random`), once per frame at ingress
/// (the forward hook would run once per output port). A first rule counts
/// every such frame, the second counts the drops; see [`loss_counters`].
pub fn add_vrrp_loss(lan: &Netns, port: &str, percent: u32) -> anyhow::Result<()> {
    let rules = format!(
        "table bridge vrrp_loss {{\n\
           chain drop_vrrp {{\n\
             type filter hook prerouting priority 0; policy accept;\n\
             iifname \"{port}\" ip protocol 112 counter\n\
             iifname \"{port}\" ip protocol 112 numgen random mod 100 < {percent} counter drop\n\
           }}\n\
         }}\n"
    );
    let dir = TempDir::new("nft")?;
    let file = dir.path().join("loss.nft");
    std::fs::write(&file, rules)?;
    lan.exec("nft", &["-f", &file.display().to_string()])
        .map(drop)
}

/// Removes the loss table; returns (frames seen, frames dropped).
pub fn remove_vrrp_loss(lan: &Netns) -> anyhow::Result<(u64, u64)> {
    let counts = loss_counters(lan)?;
    lan.exec("nft", &["delete", "table", "bridge", "vrrp_loss"])?;
    Ok(counts)
}

/// (frames seen, frames dropped) by the loss table's two counters.
pub fn loss_counters(lan: &Netns) -> anyhow::Result<(u64, u64)> {
    let out = lan.exec("nft", &["list", "table", "bridge", "vrrp_loss"])?;
    let packets: Vec<u64> = out
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|x| *x == "packets")?;
            w.next()?.parse().ok()
        })
        .collect();
    match packets[..] {
        [seen, dropped] => Ok((seen, dropped)),
        _ => bail!("cannot read the loss counters from:\n{out}"),
    }
}

/// Turns on multicast snooping with the bridge as querier on `br0` in
/// `lan` (a switch with IGMP/MLD snooping): multicast groups nobody joined
/// are no longer flooded, so a receiver must send an MLD report (join the
/// group) to get ff02::12. The bridge counts its own querier only once it
/// has a link-local address and a query response interval (10 s by
/// default, 1 s here) has passed, and floods until then: this waits.
pub fn snooping_with_querier(lan: &Netns) -> anyhow::Result<()> {
    // The bridge sends queries only from a usable link-local address:
    // wait for its duplicate address detection to end.
    let t0 = Instant::now();
    loop {
        let a = lan.ip(&["-6", "addr", "show", "dev", "br0"])?;
        if a.contains("inet6 fe80") && !a.contains("tentative") {
            break;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            bail!("br0 has no usable link-local address: {a}");
        }
        thread::sleep(Duration::from_millis(50));
    }
    // Separately: the querier's delay is armed from the interval in force
    // when it is turned on.
    let set = |opt: &str, val: &str| lan.ip(&["link", "set", "br0", "type", "bridge", opt, val]);
    set("mcast_query_response_interval", "100")?;
    set("mcast_snooping", "1")?;
    set("mcast_querier", "1")?;
    thread::sleep(Duration::from_millis(1500));
    Ok(())
}

/// The first instance's `transitions` counter from the agent's status.
pub fn transitions(agent: &Agent) -> anyhow::Result<u64> {
    let st = agent.status().context("no status (agent not running?)")?;
    st["instances"][0]["transitions"]
        .as_u64()
        .with_context(|| format!("no transitions in {st}"))
}

/// Expected number of false takeovers by a backup of a master that loses
/// each advert independently with probability `p`, over `adverts` adverts:
/// the RFC's Master_Down_Interval (3 × interval + Skew_Time) expires after
/// three adverts in a row are lost, so every run of three or more losses
/// costs one takeover: adverts × (1 − p) × p³ (the run's start).
pub fn expected_false_takeovers(adverts: u64, p: f64) -> f64 {
    adverts as f64 * (1.0 - p) * p.powi(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcap_parses_both_precisions() {
        let mut b = vec![0x4d, 0x3c, 0xb2, 0xa1];
        b.extend_from_slice(&[0; 20]);
        for (sec, frac) in [(1u32, 5u32), (2, 7)] {
            b.extend_from_slice(&sec.to_le_bytes());
            b.extend_from_slice(&frac.to_le_bytes());
            b.extend_from_slice(&2u32.to_le_bytes());
            b.extend_from_slice(&2u32.to_le_bytes());
            b.extend_from_slice(&[0xaa, 0xbb]);
        }
        let f = parse_pcap(&b).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].t_ns, 1_000_000_005);
        assert_eq!(f[1].data, [0xaa, 0xbb]);
        assert_eq!(max_gap_ns(&[f[0].t_ns, f[1].t_ns]), 1_000_000_002);
        b[..4].copy_from_slice(&[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(parse_pcap(&b).unwrap()[0].t_ns, 1_000_005_000);
    }

    #[test]
    fn false_takeover_bound() {
        assert_eq!(expected_false_takeovers(1000, 0.0), 0.0);
        assert!((expected_false_takeovers(1000, 0.5) - 62.5).abs() < 1e-9);
    }
}
