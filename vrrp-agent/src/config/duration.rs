//! The duration syntax of the config: `"10ms"`, `"1.5s"`, ...

use std::time::Duration;

/// Parses a duration with a unit: `"10ms"`, `"1s"`, `"1.5s"`, `"2m"`, `"1h"`,
/// `"250us"`. Exact (decimal arithmetic, no floats).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit_ns: u128 = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "" => {
            return Err(format!(
                "duration `{s}` needs a unit (e.g. \"10ms\", \"1s\")"
            ));
        }
        u => {
            return Err(format!(
                "unknown unit `{u}` in duration `{s}` (use ms, s, m or h)"
            ));
        }
    };
    let bad = || format!("`{s}` is not a duration (expected e.g. \"10ms\", \"1.5s\")");
    let (int_s, frac_s) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if (int_s.is_empty() && frac_s.is_empty()) || frac_s.contains('.') {
        return Err(bad());
    }
    let int: u128 = if int_s.is_empty() {
        0
    } else {
        int_s.parse().map_err(|_| bad())?
    };
    let mut ns = int.checked_mul(unit_ns).ok_or_else(bad)?;
    // Fraction digits beyond the unit's resolution must be zero (no silent rounding).
    let mut scale = unit_ns;
    for d in frac_s.chars() {
        let d = u128::from(d.to_digit(10).ok_or_else(bad)?);
        if !scale.is_multiple_of(10) {
            if d != 0 {
                return Err(format!("duration `{s}` is finer than a nanosecond"));
            }
            continue;
        }
        scale /= 10;
        ns += d * scale;
    }
    let ns = u64::try_from(ns).map_err(|_| format!("duration `{s}` is too long"))?;
    Ok(Duration::from_nanos(ns))
}

/// Formats a duration the way the config accepts it back.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        "0s".into()
    } else if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else if ns.is_multiple_of(1_000) {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}
