//! What one value may be: the readers the getters of [`super::validate`]
//! take (a TOML value to a typed one, or the whole message), and the rules
//! on single values.

use std::{net::IpAddr, time::Duration};

use toml::de::DeValue;

use super::{format_duration, parse_duration};
use crate::proto::packet::{Version, v2_interval_secs, v3_interval_centis};

/// Reads one key's value; the error is the whole message.
pub(super) type Reader<T> = fn(&str, &DeValue<'_>) -> Result<T, String>;

pub(super) fn string<'v>(key: &str, v: &'v DeValue<'_>) -> Result<&'v str, String> {
    match v {
        DeValue::String(s) => Ok(s),
        other => Err(format!(
            "`{key}` must be a string, found {}",
            other.type_str()
        )),
    }
}

pub(super) fn non_empty<'v>(key: &str, v: &'v DeValue<'_>) -> Result<&'v str, String> {
    let s = string(key, v)?;
    match s.trim().is_empty() {
        true => Err(format!("`{key}` must not be empty")),
        false => Ok(s),
    }
}

pub(super) fn int(key: &str, v: &DeValue<'_>) -> Result<i64, String> {
    match v {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map_err(|_| format!("`{key}` is out of range")),
        other => Err(format!(
            "`{key}` must be an integer, found {}",
            other.type_str()
        )),
    }
}

pub(super) fn int_in<T: TryFrom<i64>>(key: &str, v: &DeValue<'_>, lo: T, hi: T) -> Result<T, String>
where
    i64: From<T>,
{
    let (lo, hi) = (i64::from(lo), i64::from(hi));
    let n = int(key, v)?;
    match (lo..=hi)
        .contains(&n)
        .then(|| T::try_from(n).ok())
        .flatten()
    {
        Some(n) => Ok(n),
        None => Err(format!("`{key}` must be {lo}..={hi}, found {n}")),
    }
}

pub(super) fn boolean(key: &str, v: &DeValue<'_>) -> Result<bool, String> {
    match v {
        DeValue::Boolean(b) => Ok(*b),
        other => Err(format!(
            "`{key}` must be true or false, found {}",
            other.type_str()
        )),
    }
}

pub(super) fn duration(key: &str, v: &DeValue<'_>) -> Result<Duration, String> {
    match v {
        DeValue::String(s) => parse_duration(s).map_err(|e| format!("`{key}`: {e}")),
        other => Err(format!(
            "`{key}` must be a duration string with a unit (e.g. \"1s\"), found {}",
            other.type_str()
        )),
    }
}

pub(super) fn duration_at_most(
    key: &str,
    v: &DeValue<'_>,
    max: Duration,
) -> Result<Duration, String> {
    let d = duration(key, v)?;
    if d > max {
        let (d, max) = (format_duration(d), format_duration(max));
        return Err(format!(
            "`{key}` must be at most {max}: {d} is longer than the maximum {max}"
        ));
    }
    Ok(d)
}

/// RFC 3768 §5.3.7 (v2: whole seconds in 8 bits) and RFC 9568 §5.2.7 (v3:
/// centiseconds in 12 bits), as the codec encodes them.
pub(super) fn check_interval(version: Version, d: Duration) -> Result<(), String> {
    match version {
        Version::V2 if v2_interval_secs(d).is_none() => Err(format!(
            "VRRPv2 needs whole seconds 1s..=255s, found {}",
            format_duration(d)
        )),
        Version::V3 if v3_interval_centis(d).is_none() => Err(format!(
            "VRRPv3 needs 10ms..=40.95s in steps of 10ms, found {}",
            format_duration(d)
        )),
        _ => Ok(()),
    }
}

pub(super) fn check_unicast(a: &IpAddr) -> Result<(), &'static str> {
    if a.is_unspecified() {
        Err("is the unspecified address")
    } else if a.is_multicast() {
        Err("is a multicast address")
    } else if a.is_loopback() {
        Err("is a loopback address")
    } else if let IpAddr::V4(v4) = a
        && v4.is_broadcast()
    {
        Err("is the broadcast address")
    } else {
        Ok(())
    }
}

/// Linux interface names: 1..=15 bytes, no `/`, no whitespace (dev_valid_name).
pub(super) fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 15 {
        return Err(format!("`{name}` is longer than 15 bytes (IFNAMSIZ)"));
    }
    if name == "."
        || name == ".."
        || name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(format!("`{name}` is not a valid interface name"));
    }
    Ok(())
}

/// An array of strings (`command = ["redis-cli", "ping"]`).
pub(super) fn strings(key: &str, v: &DeValue<'_>) -> Result<Vec<String>, String> {
    let DeValue::Array(items) = v else {
        return Err(format!(
            "`{key}` must be an array of strings, found {}",
            v.type_str()
        ));
    };
    items
        .iter()
        .map(|item| match item.get_ref() {
            DeValue::String(s) => Ok(s.to_string()),
            other => Err(format!(
                "`{key}` entries must be strings, found {}",
                other.type_str()
            )),
        })
        .collect()
}

/// A command line with keepalived's quoting (`notify_master = "/x.sh a b"`).
pub(super) fn script(key: &str, v: &DeValue<'_>) -> Result<Option<super::Script>, String> {
    let s = non_empty(key, v).map_err(|e| format!("{e} (leave it out to disable)"))?;
    super::Script::parse(s)
        .map(Some)
        .map_err(|e| format!("`{key}`: {e}"))
}
