//! The rise/fall state machine of one check, pure: results in, state out,
//! time an argument.
//!
//! # keepalived's semantics (2.2.7, `vrrp_scheduler.c`
//! `vrrp_script_child_thread`, `vrrp_init_script`)
//!
//! keepalived keeps one counter per script in `0..=rise+fall-1` and calls
//! the script up while it is `>= rise`. Written as consecutive counts it is:
//!
//! - **Unknown at start** (the default): the first result decides alone —
//!   "one success is enough", and one failure takes it down whatever `fall`
//!   says. While unknown, a weight-0 track holds its instance in INIT and a
//!   weighted track adds nothing (see [`super::track`]).
//! - **`init_fail`** ([`InitialState::Down`]): down at start, `rise`
//!   consecutive successes to go up.
//! - **Up**: `fall` consecutive failures take it down; a success in between
//!   starts the count again.
//! - **Down**: `rise` consecutive successes take it up; a failure in between
//!   starts the count again.
//!
//! A `file` check's result is a value, not a pass/fail: every read is a
//! success for this machine (keepalived reads a missing file as 0) and the
//! value is kept for tracking.

use std::time::Duration;

use super::spec::{CheckSpec, InitialState};
use crate::proto::Instant;

/// A check's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    /// No result yet.
    Init,
    /// Up (`rise` consecutive successes, or the first result was one).
    Up,
    /// Down (`fall` consecutive failures, or the first result was one).
    Down,
}

impl CheckState {
    /// `"init" | "up" | "down"`, as in status.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckState::Init => "init",
            CheckState::Up => "up",
            CheckState::Down => "down",
        }
    }
}

/// The result of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Passed: exit status 0, connection accepted, process running.
    Success,
    /// A `file` check read this value.
    Value(i64),
    /// Failed, and why.
    Failure(Failure),
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `exec`: exited with a non-zero status.
    Exit(i32),
    /// `exec`: killed by a signal it did not get from us.
    Signal(i32),
    /// Still running at `timeout`: killed (with its process group).
    TimedOut,
    /// `exec`: could not start (the message of the error).
    Spawn(String),
    /// `tcp`: the connection failed (the message of the error).
    Connect(String),
    /// `process`: no such process (or it exited).
    NoProcess,
}

impl Outcome {
    /// Whether the rise/fall machine counts it as a success.
    pub fn is_success(&self) -> bool {
        !matches!(self, Outcome::Failure(_))
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Success => f.write_str("success"),
            Outcome::Value(v) => write!(f, "value {v}"),
            Outcome::Failure(Failure::Exit(code)) => write!(f, "exit status {code}"),
            Outcome::Failure(Failure::Signal(sig)) => write!(f, "killed by signal {sig}"),
            Outcome::Failure(Failure::TimedOut) => f.write_str("timed out"),
            Outcome::Failure(Failure::Spawn(e)) => write!(f, "cannot start: {e}"),
            Outcome::Failure(Failure::Connect(e)) => write!(f, "connect failed: {e}"),
            Outcome::Failure(Failure::NoProcess) => f.write_str("process not running"),
        }
    }
}

/// A state change, for the log and for re-evaluating tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: CheckState,
    /// The state after.
    pub to: CheckState,
}

/// Everything status and metrics show about a check, and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckStatus {
    rise: u32,
    fall: u32,
    state: CheckState,
    consecutive_ok: u32,
    consecutive_fail: u32,
    last_result: Option<Outcome>,
    last_duration: Option<Duration>,
    last_change: Option<Instant>,
    value: i64,
}

impl CheckStatus {
    /// The status of `spec` before any result.
    pub fn new(spec: &CheckSpec) -> Self {
        Self::with(spec.rise, spec.fall, spec.initial)
    }

    /// The status of a check with these counts and initial state (a `rise`
    /// or `fall` of 0 is taken as 1).
    pub fn with(rise: u32, fall: u32, initial: InitialState) -> Self {
        CheckStatus {
            rise: rise.max(1),
            fall: fall.max(1),
            state: match initial {
                InitialState::Unknown => CheckState::Init,
                InitialState::Down => CheckState::Down,
            },
            consecutive_ok: 0,
            consecutive_fail: 0,
            last_result: None,
            last_duration: None,
            last_change: None,
            value: 0,
        }
    }

    /// Records one result that took `duration` and ended at `now`; returns
    /// the transition if the state changed.
    pub fn record(
        &mut self,
        outcome: Outcome,
        duration: Duration,
        now: Instant,
    ) -> Option<Transition> {
        let from = self.state;
        if outcome.is_success() {
            self.consecutive_ok = self.consecutive_ok.saturating_add(1);
            self.consecutive_fail = 0;
            if from == CheckState::Init
                || (from == CheckState::Down && self.consecutive_ok >= self.rise)
            {
                self.state = CheckState::Up;
            }
        } else {
            self.consecutive_fail = self.consecutive_fail.saturating_add(1);
            self.consecutive_ok = 0;
            if from == CheckState::Init
                || (from == CheckState::Up && self.consecutive_fail >= self.fall)
            {
                self.state = CheckState::Down;
            }
        }
        if let Outcome::Value(v) = outcome {
            self.value = v;
        }
        self.last_result = Some(outcome);
        self.last_duration = Some(duration);
        (self.state != from).then(|| {
            self.last_change = Some(now);
            Transition {
                from,
                to: self.state,
            }
        })
    }

    /// The current state.
    pub fn state(&self) -> CheckState {
        self.state
    }

    /// The last value a `file` check read (0 before any, like keepalived).
    pub fn value(&self) -> i64 {
        self.value
    }

    /// Consecutive successes (0 after a failure).
    pub fn consecutive_ok(&self) -> u32 {
        self.consecutive_ok
    }

    /// Consecutive failures (0 after a success).
    pub fn consecutive_fail(&self) -> u32 {
        self.consecutive_fail
    }

    /// The count status shows as `consecutive`: of the current streak.
    pub fn consecutive(&self) -> u32 {
        self.consecutive_ok.max(self.consecutive_fail)
    }

    /// The last result, if any.
    pub fn last_result(&self) -> Option<&Outcome> {
        self.last_result.as_ref()
    }

    /// How long the last run took.
    pub fn last_duration(&self) -> Option<Duration> {
        self.last_duration
    }

    /// When the state last changed (on the clock of the `now` passed in).
    pub fn last_change(&self) -> Option<Instant> {
        self.last_change
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Outcome = Outcome::Success;
    const KO: Outcome = Outcome::Failure(Failure::Exit(1));

    fn t(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    /// Feeds results one per ms and returns the state after each.
    fn run(status: &mut CheckStatus, results: &[Outcome]) -> Vec<CheckState> {
        results
            .iter()
            .enumerate()
            .map(|(i, r)| {
                status.record(r.clone(), Duration::from_millis(1), t(i as u64));
                status.state()
            })
            .collect()
    }

    use CheckState::{Down, Init, Up};

    #[test]
    fn unknown_start_first_result_decides_alone() {
        let mut s = CheckStatus::with(3, 3, InitialState::Unknown);
        assert_eq!(s.state(), Init);
        assert_eq!(run(&mut s, &[OK]), [Up], "one success is enough at start");
        let mut s = CheckStatus::with(3, 3, InitialState::Unknown);
        assert_eq!(run(&mut s, &[KO]), [Down], "one failure is enough at start");
    }

    #[test]
    fn init_fail_starts_down_and_needs_rise() {
        let mut s = CheckStatus::with(2, 1, InitialState::Down);
        assert_eq!(s.state(), Down);
        assert_eq!(run(&mut s, &[OK, OK]), [Down, Up]);
    }

    #[test]
    fn fall_needs_consecutive_failures() {
        let mut s = CheckStatus::with(1, 3, InitialState::Unknown);
        assert_eq!(
            run(&mut s, &[OK, KO, KO, OK, KO, KO, KO]),
            [Up, Up, Up, Up, Up, Up, Down],
            "a success in between restarts the count"
        );
    }

    #[test]
    fn rise_needs_consecutive_successes() {
        let mut s = CheckStatus::with(2, 1, InitialState::Unknown);
        assert_eq!(
            run(&mut s, &[KO, OK, KO, OK, OK]),
            [Down, Down, Down, Down, Up]
        );
    }

    #[test]
    fn flapping_check_with_rise_fall_2_never_changes() {
        let mut s = CheckStatus::with(2, 2, InitialState::Unknown);
        let states = run(&mut s, &[OK, KO, OK, KO, OK, KO, OK, KO]);
        assert!(states.iter().all(|&st| st == Up), "{states:?}");
    }

    #[test]
    fn bookkeeping() {
        let mut s = CheckStatus::with(1, 2, InitialState::Unknown);
        assert_eq!(
            s.record(OK, Duration::from_millis(3), t(5)),
            Some(Transition { from: Init, to: Up })
        );
        assert_eq!(s.last_change(), Some(t(5)));
        assert_eq!(s.record(KO, Duration::from_millis(7), t(6)), None);
        assert_eq!(s.last_change(), Some(t(5)), "no change, no new time");
        assert_eq!((s.consecutive_ok(), s.consecutive_fail()), (0, 1));
        assert_eq!(s.last_result(), Some(&KO));
        assert_eq!(s.last_duration(), Some(Duration::from_millis(7)));
        s.record(Outcome::Value(-3), Duration::ZERO, t(7));
        assert_eq!((s.value(), s.state(), s.consecutive()), (-3, Up, 1));
    }
}
