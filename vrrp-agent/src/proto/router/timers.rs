//! The timers of [`VirtualRouter`] and the interval arithmetic they rest on
//! (RFC 9568 §6.1, RFC 3768 §6.1): Skew_Time, Master_Down_Interval,
//! Master_Down_Timer re-derived from the advert that armed it, and the
//! Preempt timer of `preempt_delay` (see the [module doc](super)).

use std::time::Duration;

use super::{DownBase, State, VirtualRouter};
use crate::proto::packet::Version;
use crate::proto::time::Instant;

impl VirtualRouter {
    /// Skew_Time, exact to the nanosecond: v2 `(256 - Priority) / 256` s
    /// (RFC 3768 §6.1), v3 `((256 - Priority) * Master_Adver_Interval) / 256`
    /// (RFC 9568 §6.1).
    pub fn skew_time(&self) -> Duration {
        let base = match self.cfg.version {
            Version::V2 => Duration::from_secs(1),
            Version::V3 => self.master_adver_interval,
        };
        let ns = u128::from(256 - u16::from(self.priority)) * base.as_nanos() / 256;
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time.
    pub fn master_down_interval(&self) -> Duration {
        self.master_adver_interval
            .saturating_mul(3)
            .saturating_add(self.skew_time())
    }

    /// Earliest pending deadline: call [`VirtualRouter::handle_timeout`] then.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.adver_timer, self.master_down_timer, self.preempt_timer]
            .into_iter()
            .flatten()
            .min()
    }

    pub(super) fn arm_master_down(&mut self, at: Instant, resign: bool) {
        self.wants_master = false;
        self.down_base = Some(DownBase { at, resign });
        self.rearm_master_down();
    }

    /// Master_Down_Timer = base + (Skew_Time after a resign, else
    /// Master_Down_Interval), with the current priority and interval.
    pub(super) fn rearm_master_down(&mut self) {
        if let Some(base) = self.down_base {
            let after = if base.resign {
                self.skew_time()
            } else {
                self.master_down_interval()
            };
            self.master_down_timer = Some(base.at + after);
        }
    }

    /// Arms or disarms the Preempt timer after a priority or config change.
    pub(super) fn update_preempt_timer(&mut self, now: Instant) {
        let applies = self.state == State::Backup
            && self.cfg.preempt
            && !self.cfg.preempt_delay.is_zero()
            && self.master.is_some_and(|m| m.priority < self.priority);
        if !applies {
            self.preempt_timer = None;
        } else if self.preempt_timer.is_none() {
            self.preempt_timer = Some(now + self.cfg.preempt_delay);
        }
    }

    pub(super) fn clear_timers(&mut self) {
        self.adver_timer = None;
        self.master_down_timer = None;
        self.down_base = None;
        self.preempt_timer = None;
    }
}
