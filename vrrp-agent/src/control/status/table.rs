//! The table `vrrp-agent status` prints: one row per instance, then the
//! non-zero drop reasons.

use std::{collections::BTreeMap, fmt::Write as _};

use vrrp_common::DropReason;

use super::Status;

/// `vrrp-agent status` without `--json`: a fixed-width table.
pub fn render_table(s: &Status) -> String {
    let mut out = String::new();
    let ifs = if s.xdp.interfaces.is_empty() {
        "-".to_owned()
    } else {
        s.xdp.interfaces.join(",")
    };
    let _ = writeln!(
        out,
        "router_id: {}    xdp: {} ({})",
        s.router_id, s.xdp.mode, ifs
    );
    let header = [
        "NAME", "IFACE", "VRID", "VER", "FAMILY", "STATE", "PRIO", "EFF", "MASTER", "ADV_INT",
        "TRANS", "ADV_RX", "ADV_TX", "DROPPED", "VIPS",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for i in &s.instances {
        rows.push(vec![
            i.name.clone(),
            i.interface.clone(),
            i.vrid.to_string(),
            i.version.to_string(),
            i.family.clone(),
            i.state.to_string(),
            i.priority.to_string(),
            i.effective_priority.to_string(),
            i.master.map_or_else(|| "-".into(), |m| m.to_string()),
            format!("{}ms", i.advert_interval_ms),
            i.transitions.to_string(),
            i.counters.adverts_rx.to_string(),
            i.counters.adverts_tx.to_string(),
            i.counters.rx_dropped.total().to_string(),
            i.virtual_ips.join(","),
        ]);
    }
    let ncol = header.len();
    let widths: Vec<usize> = (0..ncol)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == ncol {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if s.instances.is_empty() {
        let _ = writeln!(out, "(no instances)");
    }
    // Non-zero drop reasons, so an operator sees why adverts were discarded.
    for i in &s.instances {
        let drops: BTreeMap<&str, u64> = DropReason::ALL
            .iter()
            .map(|r| (r.label(), i.counters.rx_dropped.get(*r)))
            .chain([("vrid", i.counters.rx_dropped.vrid)])
            .filter(|(_, n)| *n > 0)
            .collect();
        if !drops.is_empty() {
            let list: Vec<String> = drops.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(out, "{}: dropped {}", i.name, list.join(" "));
        }
    }
    out
}
