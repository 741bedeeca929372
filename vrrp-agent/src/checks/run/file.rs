//! The `file` runner: keepalived's `track_file`, re-read when inotify says
//! it changed (see the [module doc](super)).

use std::{ffi::OsStr, path::Path};

use super::Runner;
use crate::checks::{state::Outcome, sys::DirWatch};

impl Runner {
    pub(super) async fn run_file(&self, path: &Path) {
        let dir = path.parent().unwrap_or(Path::new("/"));
        let file_name = path.file_name().unwrap_or(OsStr::new(""));
        let watch = match DirWatch::new(dir) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(check = %self.name, dir = %dir.display(), error = %e,
                    "cannot watch the directory; re-reading the file every interval");
                None
            }
        };
        let mut ticker = self.ticker();
        ticker.reset();
        let mut last: Option<i64> = None;
        loop {
            let start = std::time::Instant::now();
            if let Some(value) = read_track_file(path) {
                if last != Some(value) {
                    tracing::info!(check = %self.name, value, "tracked file value");
                }
                last = Some(value);
                if !self.send(Outcome::Value(value), start.elapsed()).await {
                    return;
                }
            } else {
                tracing::warn!(check = %self.name, path = %path.display(),
                    "number out of range in tracked file; ignored");
            }
            match &watch {
                Some(w) => loop {
                    match w.changed().await {
                        Ok(names) if names.iter().any(|n| n == file_name) => break,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(check = %self.name, error = %e, "inotify read failed");
                            ticker.tick().await;
                            break;
                        }
                    }
                },
                None => {
                    ticker.tick().await;
                }
            }
        }
    }
}

/// Reads a tracked file like keepalived: missing or unreadable is 0; the
/// first 127 bytes parsed as `strtol(buf, NULL, 0)`; `None` (ignore) when the
/// number is outside `i32::MIN..=i32::MAX + 1`.
pub fn read_track_file(path: &Path) -> Option<i64> {
    use std::io::Read;
    let mut buf = [0u8; 127];
    let Ok(mut f) = std::fs::File::open(path) else {
        return Some(0);
    };
    let n = f.read(&mut buf).unwrap_or(0);
    parse_track_value(&buf[..n])
}

/// `strtol(s, NULL, 0)` with keepalived's range check (see
/// [`read_track_file`]).
pub fn parse_track_value(s: &[u8]) -> Option<i64> {
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let rest = &s[i..];
    let (radix, digits) = match rest {
        [b'0', b'x' | b'X', d, ..] if d.is_ascii_hexdigit() => (16, &rest[2..]),
        [b'0', ..] => (8, rest),
        _ => (10, rest),
    };
    let mut value: i64 = 0;
    for &b in digits {
        let Some(d) = char::from(b).to_digit(radix) else {
            break;
        };
        // Past the accepted range: strtol would set ERANGE or the check
        // below would reject it; either way keepalived ignores the value.
        value = value
            .checked_mul(i64::from(radix))?
            .checked_add(i64::from(d))?;
        if value > i64::from(i32::MAX) + 1 {
            return None;
        }
    }
    let value = if negative { -value } else { value };
    (i64::from(i32::MIN)..=i64::from(i32::MAX) + 1)
        .contains(&value)
        .then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_values_parse_like_strtol_base_0() {
        let p = |s: &str| parse_track_value(s.as_bytes());
        assert_eq!(p("5\n"), Some(5));
        assert_eq!(p("  -12 apples"), Some(-12));
        assert_eq!(p("+7"), Some(7));
        assert_eq!(p("0x1f"), Some(31));
        assert_eq!(p("010"), Some(8), "leading 0 is octal");
        assert_eq!(p("09"), Some(0), "octal stops at 9");
        assert_eq!(p(""), Some(0));
        assert_eq!(p("maintenance"), Some(0));
        assert_eq!(p("0x"), Some(0));
        assert_eq!(
            p("2147483648"),
            Some(2_147_483_648),
            "INT32_MAX + 1 is accepted"
        );
        assert_eq!(p("2147483649"), None);
        assert_eq!(p("-2147483649"), None);
        assert_eq!(p("99999999999999999999999"), None);
    }

    #[test]
    fn a_missing_track_file_reads_as_zero() {
        assert_eq!(
            read_track_file(Path::new("/nonexistent/vrrp-agent/w")),
            Some(0)
        );
    }
}
