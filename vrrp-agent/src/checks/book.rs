//! The agent's record of every check, pure: events in, transitions,
//! tracking inputs and the status report out.
//!
//! This is the seam for the agent layer: it owns one [`CheckBook`], feeds
//! it each [`CheckEvent`] from [`super::Runners`], and on a transition
//! re-evaluates the instances that track the check with
//! [`CheckBook::evaluate`].

use std::time::Duration;

use serde::Serialize;

use super::{
    run::CheckEvent,
    spec::{CheckKind, CheckSpec, TrackSpec, TrackTarget},
    state::{CheckStatus, Transition},
    track::{self, Source, TrackInput, Tracked},
};
use crate::proto::Instant;

struct Entry {
    spec: CheckSpec,
    name: String,
    kind: &'static str,
    is_file: bool,
    status: CheckStatus,
}

/// Every configured check and its [`CheckStatus`].
pub struct CheckBook {
    entries: Vec<Entry>,
}

/// One check in `status --json` (SPEC: the top-level `"checks"` list).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// The check's name.
    pub name: String,
    /// `exec | tcp | process | file`.
    pub kind: &'static str,
    /// `up | down | init`.
    pub state: &'static str,
    /// The last result in words (`"success"`, `"exit status 1"`, ...), or
    /// null before the first.
    pub last_result: Option<String>,
    /// How long the last run took, in ms.
    pub last_duration_ms: Option<f64>,
    /// Length of the current run of equal results.
    pub consecutive: u32,
    /// When the state last changed, ms since the Unix epoch (0: never).
    pub last_change_unix_ms: u64,
    /// The last value read (file checks only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
}

/// One entry of an instance's `"track"` list in `status --json` (SPEC:
/// `{"check": "redis_ping", "state": "down", "weight": -60}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackReport {
    /// The check's name (absent for an interface).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// The interface's name (absent for a check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// `up | down | init`.
    pub state: &'static str,
    /// The weight in effect (0 in a sync group).
    pub weight: i32,
    /// keepalived's `reverse`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reverse: bool,
}

impl Entry {
    fn new(spec: &CheckSpec) -> Entry {
        Entry {
            spec: spec.clone(),
            name: spec.name.clone(),
            kind: spec.kind.as_str(),
            is_file: matches!(spec.kind, CheckKind::File { .. }),
            status: CheckStatus::new(spec),
        }
    }
}

impl CheckBook {
    /// A book with every check in its initial state.
    pub fn new(specs: &[CheckSpec]) -> Self {
        CheckBook {
            entries: specs.iter().map(Entry::new).collect(),
        }
    }

    /// Applies a reloaded config (like [`super::Runners::reload`]): a check
    /// whose spec did not change keeps its status; a changed or new one
    /// starts over; a removed one is forgotten.
    pub fn reload(&mut self, specs: &[CheckSpec]) {
        let mut old = std::mem::take(&mut self.entries);
        self.entries = specs
            .iter()
            .map(|spec| match old.iter().position(|e| e.spec == *spec) {
                Some(i) => old.swap_remove(i),
                None => Entry::new(spec),
            })
            .collect();
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Records a result; returns the transition if the check changed state
    /// (None too for an unknown check, e.g. an event from before a reload).
    pub fn record(&mut self, event: &CheckEvent) -> Option<Transition> {
        let entry = self.entries.iter_mut().find(|e| *e.name == *event.check)?;
        let before = entry.status.value();
        let transition = entry
            .status
            .record(event.outcome.clone(), event.duration, event.at);
        // A new file value changes tracking without a state change; report it
        // as a transition in place so the caller re-evaluates.
        if transition.is_none() && entry.is_file && entry.status.value() != before {
            let state = entry.status.state();
            return Some(Transition {
                from: state,
                to: state,
            });
        }
        transition
    }

    /// A check's status.
    pub fn status(&self, name: &str) -> Option<&CheckStatus> {
        self.entry(name).map(|e| &e.status)
    }

    /// The tracking inputs of an instance's `tracks`; an interface's state
    /// comes from `interface_up`. Tracks of unknown checks are left out
    /// (config validation rejects them).
    pub fn track_inputs<'a>(
        &self,
        tracks: &'a [TrackSpec],
        in_sync_group: bool,
        interface_up: impl Fn(&str) -> bool,
    ) -> Vec<TrackInput<'a>> {
        tracks
            .iter()
            .filter_map(|t| {
                let (name, source) = match &t.target {
                    TrackTarget::Interface(name) => (
                        name.as_str(),
                        Source::Interface {
                            up: interface_up(name),
                        },
                    ),
                    TrackTarget::Check(name) => {
                        let e = self.entry(name)?;
                        let state = e.status.state();
                        let source = if e.is_file {
                            Source::File {
                                state,
                                value: e.status.value(),
                            }
                        } else {
                            Source::Check(state)
                        };
                        (name.as_str(), source)
                    }
                };
                Some(TrackInput {
                    name,
                    source,
                    weight: t.weight_in(in_sync_group),
                    reverse: t.reverse,
                })
            })
            .collect()
    }

    /// [`track::evaluate`] for an instance with configured `priority` and
    /// these tracks.
    pub fn evaluate(
        &self,
        priority: u8,
        tracks: &[TrackSpec],
        in_sync_group: bool,
        interface_up: impl Fn(&str) -> bool,
    ) -> Tracked {
        track::evaluate(
            priority,
            &self.track_inputs(tracks, in_sync_group, interface_up),
        )
    }

    /// An instance's `"track"` list for status.
    pub fn track_report(
        &self,
        tracks: &[TrackSpec],
        in_sync_group: bool,
        interface_up: impl Fn(&str) -> bool,
    ) -> Vec<TrackReport> {
        self.track_inputs(tracks, in_sync_group, interface_up)
            .iter()
            .map(|t| {
                let (check, interface, state) = match t.source {
                    Source::Interface { up } => {
                        (None, Some(t.name), if up { "up" } else { "down" })
                    }
                    Source::Check(state) | Source::File { state, .. } => {
                        (Some(t.name), None, state.as_str())
                    }
                };
                TrackReport {
                    check: check.map(str::to_owned),
                    interface: interface.map(str::to_owned),
                    state,
                    weight: t.weight,
                    reverse: t.reverse,
                }
            })
            .collect()
    }

    /// The status report, with state-change times converted to Unix ms from
    /// a pair of simultaneous readings of the two clocks.
    pub fn report(&self, now: Instant, now_unix_ms: u64) -> Vec<CheckReport> {
        self.entries
            .iter()
            .map(|e| {
                let s = &e.status;
                let last_change_unix_ms = s.last_change().map_or(0, |t| {
                    let age = now.saturating_duration_since(t);
                    now_unix_ms.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX))
                });
                CheckReport {
                    name: e.name.clone(),
                    kind: e.kind,
                    state: s.state().as_str(),
                    last_result: s.last_result().map(|r| r.to_string()),
                    last_duration_ms: s.last_duration().map(ms),
                    consecutive: s.consecutive(),
                    last_change_unix_ms,
                    value: e.is_file.then(|| s.value()),
                }
            })
            .collect()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::checks::{
        spec::ProcessTarget,
        state::{CheckState, Failure, Outcome},
        track::Effect,
    };

    fn event(check: &str, outcome: Outcome, at_ms: u64) -> CheckEvent {
        CheckEvent {
            check: Arc::from(check),
            outcome,
            duration: Duration::from_micros(1500),
            at: Instant::from_nanos(at_ms * 1_000_000),
        }
    }

    fn book() -> CheckBook {
        CheckBook::new(&[
            CheckSpec::new(
                "alive",
                CheckKind::Process(ProcessTarget::Name("redis-server".into())),
            ),
            CheckSpec::new("w", CheckKind::File { path: "/w".into() }),
        ])
    }

    fn tracks() -> Vec<TrackSpec> {
        vec![
            TrackSpec {
                target: TrackTarget::Check("alive".into()),
                weight: 0,
                reverse: false,
            },
            TrackSpec {
                target: TrackTarget::Check("w".into()),
                weight: -10,
                reverse: false,
            },
            TrackSpec {
                target: TrackTarget::Interface("eth1".into()),
                weight: 0,
                reverse: false,
            },
        ]
    }

    #[test]
    fn events_drive_tracking() {
        let mut b = book();
        let t = tracks();
        let tracked = b.evaluate(100, &t, false, |_| true);
        assert!(
            tracked.pending,
            "weight-0 check without a result holds INIT"
        );
        b.record(&event("alive", Outcome::Success, 1));
        b.record(&event("w", Outcome::Value(0), 1));
        let tracked = b.evaluate(100, &t, false, |_| true);
        assert_eq!((tracked.pending, tracked.fault.is_none()), (false, true));
        assert_eq!(tracked.effective_priority, 100);

        let tr = b.record(&event("w", Outcome::Value(3), 2));
        assert!(
            tr.is_some(),
            "a new file value is reported for re-evaluation"
        );
        assert_eq!(b.evaluate(100, &t, false, |_| true).effective_priority, 70);
        assert_eq!(
            b.evaluate(100, &t, true, |_| true).effective_priority,
            100,
            "weights are 0 in a sync group"
        );

        let tr = b.record(&event("alive", Outcome::Failure(Failure::NoProcess), 3));
        assert_eq!(tr.map(|t| t.to), Some(CheckState::Down));
        let tracked = b.evaluate(100, &t, false, |_| true);
        assert_eq!(tracked.fault.map(|r| r.name), Some("alive".to_owned()));

        let report = serde_json::to_value(b.track_report(&t, false, |_| true)).unwrap();
        assert_eq!(
            report,
            serde_json::json!([
                {"check": "alive", "state": "down", "weight": 0},
                {"check": "w", "state": "up", "weight": -10},
                {"interface": "eth1", "state": "up", "weight": 0},
            ])
        );

        let tracked = b.evaluate(100, &t[2..], false, |i| i != "eth1");
        assert_eq!(tracked.reasons[0].effect, Effect::Fault);
        assert!(b.record(&event("nope", Outcome::Success, 4)).is_none());
    }

    #[test]
    fn reload_keeps_unchanged_checks_and_restarts_changed_ones() {
        let mut b = book();
        b.record(&event("alive", Outcome::Success, 1));
        b.record(&event("w", Outcome::Value(4), 1));
        let mut specs = vec![
            CheckSpec::new(
                "alive",
                CheckKind::Process(ProcessTarget::Name("redis-server".into())),
            ),
            CheckSpec::new(
                "w",
                CheckKind::File {
                    path: "/elsewhere".into(),
                },
            ),
            CheckSpec::new("new", CheckKind::File { path: "/n".into() }),
        ];
        b.reload(&specs);
        assert_eq!(b.status("alive").map(|s| s.state()), Some(CheckState::Up));
        assert_eq!(
            b.status("w").map(|s| (s.state(), s.value())),
            Some((CheckState::Init, 0))
        );
        assert_eq!(b.status("new").map(|s| s.state()), Some(CheckState::Init));
        specs.remove(0);
        b.reload(&specs);
        assert!(b.status("alive").is_none());
    }

    #[test]
    fn report_matches_the_status_contract() {
        let mut b = book();
        b.record(&event("alive", Outcome::Success, 1_000));
        b.record(&event("alive", Outcome::Failure(Failure::NoProcess), 2_000));
        let r = b.report(Instant::from_nanos(5_000 * 1_000_000), 1_764_000_005_000);
        assert_eq!(r[0].state, "down");
        assert_eq!(r[0].last_result.as_deref(), Some("process not running"));
        assert_eq!(r[0].last_change_unix_ms, 1_764_000_002_000);
        assert_eq!(r[0].consecutive, 1);
        assert_eq!(r[0].last_duration_ms, Some(1.5));
        assert_eq!(r[1].state, "init");
        assert_eq!(r[1].last_change_unix_ms, 0);
        let json = serde_json::to_value(&r[0]).unwrap();
        for key in [
            "name",
            "kind",
            "state",
            "last_result",
            "last_duration_ms",
            "consecutive",
            "last_change_unix_ms",
        ] {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
    }
}
