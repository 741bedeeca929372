//! A deadline timer on CLOCK_MONOTONIC with nanosecond resolution.
//!
//! tokio's timer wheel ticks in whole milliseconds and rounds deadlines up,
//! which would make every takeover up to 1 ms late — a lot when Skew_Time can
//! be 78 µs. A `timerfd` armed with an absolute CLOCK_MONOTONIC time (the
//! clock of the protocol core and of `bpf_ktime_get_ns`) fires when the
//! deadline passes, and tokio just waits for it to become readable.

use std::{
    io,
    os::fd::{AsFd, AsRawFd, RawFd},
    time::Duration,
};

use nix::{
    sys::{
        time::TimeSpec,
        timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags},
    },
    unistd::read,
};
use tokio::io::{Interest, unix::AsyncFd};

use crate::proto::Instant;

/// `TimerFd` with the `AsRawFd` that `AsyncFd` wants.
struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// One re-armable deadline.
///
/// A MASTER's advert deadlines follow each other at a fixed interval. So
/// after an expiry, the next deadline is armed as a periodic timer with the
/// step between the two; while the deadlines keep that cadence, the kernel
/// already holds the next one and arming it costs no system call.
pub(crate) struct DeadlineTimer {
    fd: AsyncFd<Fd>,
    armed: Option<Instant>,
    /// What the kernel will signal next, and its period if periodic.
    kernel: Option<(Instant, Option<Duration>)>,
    /// The deadline that expired last, until the next one is armed.
    fired: Option<Instant>,
    /// `timerfd_settime` calls made (for the tests).
    settimes: u64,
}

impl DeadlineTimer {
    /// A disarmed timer. Must be called inside a tokio runtime.
    pub(crate) fn new() -> io::Result<Self> {
        let tfd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // SAFETY: the AsyncFd owns the TimerFd, so the descriptor stays open
        // (and is not reused) for as long as it is registered.
        let fd = unsafe { AsyncFd::register_with_interest(Fd(tfd), Interest::READABLE) }?;
        Ok(Self {
            fd,
            armed: None,
            kernel: None,
            fired: None,
            settimes: 0,
        })
    }

    /// Arms the timer for `at` (absolute), or disarms it; a no-op when
    /// nothing changed. A deadline already past fires at once.
    pub(crate) fn arm(&mut self, at: Option<Instant>) -> io::Result<()> {
        if at == self.armed {
            return Ok(());
        }
        let fired = self.fired.take();
        match at {
            Some(t) if self.kernel.is_some_and(|(next, _)| next == t) => {}
            Some(t) => {
                // Right after an expiry: guess the same step again.
                let period = fired
                    .filter(|_| self.armed.is_none())
                    .map(|f| t.saturating_duration_since(f))
                    .filter(|p| !p.is_zero());
                let value = timespec(t);
                let expiration = match period {
                    Some(p) => Expiration::IntervalDelayed(value, TimeSpec::from_duration(p)),
                    None => Expiration::OneShot(value),
                };
                self.settimes += 1;
                self.fd
                    .get_ref()
                    .0
                    .set(expiration, TimerSetTimeFlags::TFD_TIMER_ABSTIME)?;
                self.kernel = Some((t, period));
            }
            None => {
                self.settimes += 1;
                self.fd.get_ref().0.unset()?;
                self.kernel = None;
            }
        }
        self.armed = at;
        Ok(())
    }

    /// Waits until the armed deadline has passed (pending forever when
    /// disarmed). Cancel-safe.
    pub(crate) async fn expired(&mut self) -> io::Result<()> {
        if self.armed.is_none() {
            return std::future::pending().await;
        }
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = [0u8; 8];
            match guard.try_io(|fd| read(fd.get_ref().0.as_fd(), &mut buf).map_err(io::Error::from))
            {
                Ok(Ok(_)) => {
                    // The read emptied the timerfd: forget the readiness
                    // now, or the next wait would start with a read that
                    // fails with EAGAIN. Its next expiry is a new edge.
                    guard.clear_ready();
                    let n = u32::try_from(u64::from_ne_bytes(buf)).unwrap_or(u32::MAX);
                    self.kernel = match self.kernel {
                        Some((next, Some(p))) => Some((next + p * n.max(1), Some(p))),
                        _ => None,
                    };
                    self.fired = self.armed.take();
                    return Ok(());
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

/// An absolute CLOCK_MONOTONIC time for `timerfd_settime`.
fn timespec(t: Instant) -> TimeSpec {
    // An all-zero it_value would disarm; no real deadline is 0.
    let ns = t.as_nanos().max(1);
    TimeSpec::new(
        i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX),
        i64::try_from(ns % 1_000_000_000).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane;

    #[tokio::test(flavor = "current_thread")]
    async fn fires_at_the_deadline_not_before() {
        let mut t = DeadlineTimer::new().unwrap();
        let at = dataplane::now() + std::time::Duration::from_micros(300);
        t.arm(Some(at)).unwrap();
        t.expired().await.unwrap();
        assert!(dataplane::now() >= at);
        // Disarmed after firing; a past deadline fires at once.
        t.arm(Some(dataplane::now())).unwrap();
        t.expired().await.unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_expiry_leaves_no_stale_readiness() {
        use futures::FutureExt as _;
        let mut t = DeadlineTimer::new().unwrap();
        t.arm(Some(dataplane::now())).unwrap();
        t.expired().await.unwrap();
        // Readiness still cached would make the next wait begin with a
        // read that fails with EAGAIN (one wasted syscall per wakeup).
        assert!(t.fd.readable().now_or_never().is_none());
        // And the next expiry still wakes the wait.
        t.arm(Some(dataplane::now())).unwrap();
        t.expired().await.unwrap();
    }

    /// Deadlines at a steady step (a MASTER's adverts) are armed once: the
    /// kernel repeats the step, each expiry still comes at its deadline,
    /// and a deadline off the step re-arms the timer.
    #[tokio::test(flavor = "current_thread")]
    async fn a_steady_cadence_is_armed_once() {
        let step = std::time::Duration::from_millis(20);
        let mut t = DeadlineTimer::new().unwrap();
        let mut at = dataplane::now() + step;
        t.arm(Some(at)).unwrap();
        t.expired().await.unwrap();
        at = at + step;
        t.arm(Some(at)).unwrap();
        let armed = t.settimes;
        for _ in 0..5 {
            t.expired().await.unwrap();
            assert!(dataplane::now() >= at);
            at = at + step;
            t.arm(Some(at)).unwrap();
        }
        assert_eq!(t.settimes, armed, "no timerfd_settime while on the step");
        // Off the step: armed anew, and it fires at the new deadline.
        at = at + step / 2;
        t.arm(Some(at)).unwrap();
        assert_eq!(t.settimes, armed + 1);
        t.expired().await.unwrap();
        assert!(dataplane::now() >= at);
        // Disarmed: nothing fires.
        t.arm(None).unwrap();
        let idle = tokio::time::timeout(step * 4, t.fd.readable()).await;
        assert!(idle.is_err(), "a disarmed timer stays quiet");
    }
}
