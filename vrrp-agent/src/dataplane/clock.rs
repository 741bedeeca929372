//! The one clock of the data plane: `CLOCK_MONOTONIC`, the clock
//! `bpf_ktime_get_ns` reads, so XDP and socket timestamps are comparable.

use std::time::Duration;

use nix::time::{ClockId, clock_gettime};

use crate::proto::time::Instant;

fn read(clock: ClockId) -> u64 {
    // clock_gettime on these two clocks cannot fail on Linux (EINVAL only
    // for unknown clocks, EFAULT only for bad pointers nix never passes).
    let ts = clock_gettime(clock).unwrap_or_else(|_| nix::sys::time::TimeSpec::new(0, 0));
    let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec()).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// Now on `CLOCK_MONOTONIC`, in nanoseconds.
pub fn monotonic_now_ns() -> u64 {
    read(ClockId::CLOCK_MONOTONIC)
}

/// Now on `CLOCK_MONOTONIC` as a protocol-core [`Instant`].
pub fn now() -> Instant {
    Instant::from_nanos(monotonic_now_ns())
}

/// Now on `CLOCK_REALTIME`, in nanoseconds since the Unix epoch.
pub(crate) fn realtime_now_ns() -> u64 {
    read(ClockId::CLOCK_REALTIME)
}

/// Maps a socket timestamp (`SO_TIMESTAMPNS` is `CLOCK_REALTIME`) onto
/// `CLOCK_MONOTONIC` by its age, sampled from both clocks at `(mono_now,
/// real_now)`. A wall-clock step between the receive and the sample skews
/// the result by the step; the age is clamped so a timestamp never lies in
/// the future.
pub(crate) fn realtime_to_monotonic(ts_real_ns: u64, mono_now: u64, real_now: u64) -> u64 {
    let age = real_now.saturating_sub(ts_real_ns);
    mono_now.saturating_sub(age)
}

/// Age of a monotonic timestamp relative to now (zero if in the future).
pub fn age(ts_ns: u64) -> Duration {
    Duration::from_nanos(monotonic_now_ns().saturating_sub(ts_ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_mapping_keeps_age() {
        assert_eq!(realtime_to_monotonic(1_000, 50_000, 1_500), 49_500);
        // A timestamp "from the future" (clock stepped back) maps to now.
        assert_eq!(realtime_to_monotonic(2_000, 50_000, 1_500), 50_000);
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let a = monotonic_now_ns();
        let b = monotonic_now_ns();
        assert!(b >= a && a > 0);
    }
}
