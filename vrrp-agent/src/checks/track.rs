//! Tracking, pure: from an instance's configured priority, its tracks and
//! the current states, the effective priority and whether it must be in
//! FAULT; and the sync-group rule. No tokio, no clock.
//!
//! # keepalived's rules (2.2.7, `vrrp_track.c`, `track_file.c`,
//! `vrrp_sync.c`; `keepalived.conf(5)` "VRRP script(s)", "Track files",
//! "VRRP synchronization group(s)")
//!
//! - **Weight 0**: the tracked object down puts the instance in FAULT (it
//!   resigns with priority 0 and releases its VIPs); it leaves FAULT when no
//!   tracked object holds it there. With `reverse`, the instance is in FAULT
//!   while the object is *up* (`weight 0 reverse`).
//! - **Non-zero weight**: a positive weight is added while the object is
//!   up, a negative one while it is down (`process_script_update_priority`).
//!   `reverse` negates the adjustment: a positive weight is subtracted while
//!   up, a negative one added while down.
//! - **Unknown state**: a check without a result yet adds nothing, and a
//!   weight-0 check in that state holds the instance in INIT
//!   ([`Tracked::pending`], keepalived's `num_script_init`) instead of
//!   letting it start the election.
//! - **`file` checks** (`track_file`): weight 0 — a non-zero value is a
//!   failure (FAULT), 0 is OK (`reverse` swaps them). Otherwise the value
//!   times the weight (times -1 for `reverse`), limited to `-254..=253`, is
//!   added; `-254` (or below) puts the instance in FAULT.
//! - **Clamping** (`vrrp_set_effective_priority`): the sum is limited to
//!   `1..=254`; an address owner (priority 255) keeps 255 whatever the
//!   weights (weight-0 FAULT still applies to it).
//! - **Sync groups** (`vrrp_sync.c`): a member in FAULT takes every member
//!   to FAULT (`vrrp_sync_fault`); the group goes MASTER only when every
//!   member wants MASTER (`vrrp_sync_can_goto_master`: "prefer backup state
//!   to avoid thrashing"), else every member is BACKUP (`vrrp_sync_backup`);
//!   while a member is still INIT (pending checks) the group waits
//!   (`num_member_init`). Members' weights count as 0 (see
//!   [`super::spec::TrackSpec::weight_in`]).

use std::fmt;

use super::state::CheckState;
use crate::proto::router::OWNER_PRIORITY;

/// The current state of one tracked object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// An `exec`, `tcp` or `process` check.
    Check(CheckState),
    /// A `file` check: its state (Init before the first read) and value.
    File {
        /// Init before the first read.
        state: CheckState,
        /// The last value read.
        value: i64,
    },
    /// An interface, up or down (operational state from netlink).
    Interface {
        /// Whether it is up.
        up: bool,
    },
}

/// One entry of an instance's track list with its object's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackInput<'a> {
    /// The check or interface name, for the reasons.
    pub name: &'a str,
    /// The object's state.
    pub source: Source,
    /// The weight in effect (after [`super::spec::TrackSpec::weight_in`]).
    pub weight: i32,
    /// keepalived's `reverse`.
    pub reverse: bool,
}

/// What one track does to its instance now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Puts the instance in FAULT.
    Fault,
    /// Holds the instance in INIT: a weight-0 check without a result yet.
    Pending,
    /// Adds this much to the priority (negative: lowers it).
    Adjust(i32),
}

/// One track that has an effect now, for status and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// The check or interface name.
    pub name: String,
    /// Whether it is an interface (else a check).
    pub interface: bool,
    /// The state that causes the effect: `"up"`, `"down"`, `"init"` or
    /// `"value N"`.
    pub state: String,
    /// The effect.
    pub effect: Effect,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.interface { "interface" } else { "check" };
        write!(f, "{what} {} {}: ", self.name, self.state)?;
        match self.effect {
            Effect::Fault => f.write_str("FAULT"),
            Effect::Pending => f.write_str("waiting for its first result"),
            Effect::Adjust(d) => write!(f, "priority {d:+}"),
        }
    }
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    /// The priority to advertise and elect with (1..=254, or 255 for an
    /// owner). Meaningless while `fault` is set (the instance resigns).
    pub effective_priority: u8,
    /// The first track that puts the instance in FAULT, if any.
    pub fault: Option<Reason>,
    /// A weight-0 check has no result yet: keep the instance in INIT.
    pub pending: bool,
    /// Every track with an effect now, in track-list order.
    pub reasons: Vec<Reason>,
}

/// The keepalived file-track limits: below `FILE_FAULT` is FAULT.
const FILE_FAULT: i64 = -254;
const FILE_MAX: i64 = 253;

/// What one track does now (see the module doc), and the state it shows.
fn effect(input: &TrackInput<'_>) -> (Option<Effect>, String) {
    let multiplier: i64 = if input.reverse { -1 } else { 1 };
    let weight = i64::from(input.weight);
    let up_down = |up: bool| if up { "up" } else { "down" }.to_owned();
    match input.source {
        Source::Check(CheckState::Init)
        | Source::File {
            state: CheckState::Init,
            ..
        } => {
            let effect = (input.weight == 0).then_some(Effect::Pending);
            (effect, "init".to_owned())
        }
        Source::Check(state) => up_or_down(state == CheckState::Up, weight, multiplier, up_down),
        Source::Interface { up } => up_or_down(up, weight, multiplier, up_down),
        Source::File { value, .. } => {
            let shown = format!("value {value}");
            if weight == 0 {
                let failed = (value != 0) != input.reverse;
                return (failed.then_some(Effect::Fault), shown);
            }
            let adjust = value
                .saturating_mul(weight)
                .saturating_mul(multiplier)
                .clamp(FILE_FAULT, FILE_MAX);
            let effect = match adjust {
                FILE_FAULT => Some(Effect::Fault),
                0 => None,
                // In -253..=253 after the clamp.
                d => Some(Effect::Adjust(d as i32)),
            };
            (effect, shown)
        }
    }
}

fn up_or_down(
    up: bool,
    weight: i64,
    multiplier: i64,
    show: impl Fn(bool) -> String,
) -> (Option<Effect>, String) {
    if weight == 0 {
        let failed = up == (multiplier == -1);
        return (failed.then_some(Effect::Fault), show(up));
    }
    let counts = (weight > 0 && up) || (weight < 0 && !up);
    let adjust = if counts { weight * multiplier } else { 0 };
    // |weight| <= 254 is validated; clamp anyway so nothing can overflow.
    let effect = (adjust != 0).then(|| Effect::Adjust(adjust.clamp(-254, 254) as i32));
    (effect, show(up))
}

/// The effective priority, FAULT and INIT hold of an instance with
/// configured `priority` and these tracks (keepalived's rules, module doc).
pub fn evaluate(priority: u8, tracks: &[TrackInput<'_>]) -> Tracked {
    let mut total = i64::from(priority);
    let mut fault = None;
    let mut pending = false;
    let mut reasons = Vec::new();
    for input in tracks {
        let (Some(effect), state) = effect(input) else {
            continue;
        };
        match effect {
            Effect::Adjust(d) => total += i64::from(d),
            Effect::Pending => pending = true,
            Effect::Fault => {}
        }
        let reason = Reason {
            name: input.name.to_owned(),
            interface: matches!(input.source, Source::Interface { .. }),
            state,
            effect,
        };
        if effect == Effect::Fault && fault.is_none() {
            fault = Some(reason.clone());
        }
        reasons.push(reason);
    }
    let effective_priority = if priority == OWNER_PRIORITY {
        OWNER_PRIORITY
    } else {
        // 1..=254 fits u8.
        total.clamp(1, i64::from(OWNER_PRIORITY - 1)) as u8
    };
    Tracked {
        effective_priority,
        fault,
        pending,
        reasons,
    }
}

/// A sync-group member as the group rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberWish {
    /// Its own tracking holds it in INIT ([`Tracked::pending`]).
    Pending,
    /// Its own tracking puts it in FAULT (or its interface is down).
    Fault,
    /// Its own election makes (or keeps) it MASTER.
    Master,
    /// Its own election makes it BACKUP.
    Backup,
}

/// The state every member of a sync group must take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// Some member is still pending: no member leaves INIT.
    Init,
    /// Some member is in FAULT: every member goes to FAULT.
    Fault,
    /// Not every member wants MASTER: every member is BACKUP.
    Backup,
    /// Every member wants MASTER: every member is MASTER.
    Master,
}

impl GroupState {
    /// The state's name as keepalived and our status print it.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Init => "INIT",
            GroupState::Fault => "FAULT",
            GroupState::Backup => "BACKUP",
            GroupState::Master => "MASTER",
        }
    }
}

/// keepalived's sync-group rule: what the group, and so every member, is,
/// given what each member would be alone (module doc). An empty group is
/// BACKUP.
pub fn sync_group(members: &[MemberWish]) -> GroupState {
    if members.contains(&MemberWish::Fault) {
        GroupState::Fault
    } else if members.contains(&MemberWish::Pending) {
        GroupState::Init
    } else if !members.is_empty() && members.iter().all(|m| *m == MemberWish::Master) {
        GroupState::Master
    } else {
        GroupState::Backup
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckState::{Down, Init, Up};

    fn check(name: &str, state: CheckState, weight: i32) -> TrackInput<'_> {
        TrackInput {
            name,
            source: Source::Check(state),
            weight,
            reverse: false,
        }
    }

    fn file(value: i64, weight: i32) -> TrackInput<'static> {
        TrackInput {
            name: "w",
            source: Source::File { state: Up, value },
            weight,
            reverse: false,
        }
    }

    #[test]
    fn weight_zero_down_is_fault_up_is_not() {
        let t = evaluate(100, &[check("alive", Down, 0)]);
        let fault = t.fault.expect("FAULT");
        assert_eq!(fault.to_string(), "check alive down: FAULT");
        assert_eq!(t.effective_priority, 100);
        assert_eq!(evaluate(100, &[check("alive", Up, 0)]).fault, None);
    }

    #[test]
    fn weight_zero_reverse_faults_while_up() {
        let mut c = check("maint", Up, 0);
        c.reverse = true;
        assert!(evaluate(100, &[c]).fault.is_some());
        c.source = Source::Check(Down);
        assert!(evaluate(100, &[c]).fault.is_none());
    }

    #[test]
    fn positive_weight_adds_while_up_negative_while_down() {
        assert_eq!(evaluate(100, &[check("a", Up, 20)]).effective_priority, 120);
        assert_eq!(
            evaluate(100, &[check("a", Down, 20)]).effective_priority,
            100
        );
        assert_eq!(
            evaluate(100, &[check("a", Down, -60)]).effective_priority,
            40
        );
        assert_eq!(
            evaluate(100, &[check("a", Up, -60)]).effective_priority,
            100
        );
        let t = evaluate(100, &[check("a", Up, 20), check("b", Down, -60)]);
        assert_eq!(t.effective_priority, 60);
        assert_eq!(t.reasons.len(), 2);
        assert_eq!(t.reasons[1].to_string(), "check b down: priority -60");
    }

    #[test]
    fn reverse_negates_the_adjustment() {
        let mut c = check("a", Up, 20);
        c.reverse = true;
        assert_eq!(evaluate(100, &[c]).effective_priority, 80);
        let mut c = check("a", Down, -20);
        c.reverse = true;
        assert_eq!(evaluate(100, &[c]).effective_priority, 120);
    }

    #[test]
    fn clamped_to_1_254_and_owner_never_changes() {
        assert_eq!(evaluate(250, &[check("a", Up, 50)]).effective_priority, 254);
        assert_eq!(evaluate(10, &[check("a", Down, -50)]).effective_priority, 1);
        assert_eq!(
            evaluate(255, &[check("a", Down, -50)]).effective_priority,
            255
        );
        assert_eq!(evaluate(255, &[check("a", Up, 50)]).effective_priority, 255);
        assert!(
            evaluate(255, &[check("a", Down, 0)]).fault.is_some(),
            "owner still faults"
        );
        assert_eq!(evaluate(200, &[check("a", Up, 10)]).effective_priority, 210);
    }

    #[test]
    fn init_holds_weight_zero_and_adds_nothing_weighted() {
        let t = evaluate(100, &[check("a", Init, 0)]);
        assert!(t.pending && t.fault.is_none());
        let t = evaluate(100, &[check("a", Init, 50), check("b", Init, -50)]);
        assert!(!t.pending);
        assert_eq!(t.effective_priority, 100);
    }

    #[test]
    fn interfaces_track_like_checks() {
        let i = |up, weight| TrackInput {
            name: "eth1",
            source: Source::Interface { up },
            weight,
            reverse: false,
        };
        let t = evaluate(100, &[i(false, 0)]);
        assert_eq!(t.fault.unwrap().to_string(), "interface eth1 down: FAULT");
        assert_eq!(evaluate(100, &[i(false, -30)]).effective_priority, 70);
        assert_eq!(evaluate(100, &[i(true, 0)]).fault, None);
    }

    #[test]
    fn file_weight_zero_nonzero_value_is_fault() {
        assert!(evaluate(100, &[file(1, 0)]).fault.is_some());
        assert!(evaluate(100, &[file(0, 0)]).fault.is_none());
        let mut f = file(0, 0);
        f.reverse = true;
        assert!(evaluate(100, &[f]).fault.is_some());
    }

    #[test]
    fn file_value_multiplies_weight_and_limits() {
        assert_eq!(evaluate(100, &[file(5, 2)]).effective_priority, 110);
        assert_eq!(evaluate(100, &[file(-5, 2)]).effective_priority, 90);
        let mut f = file(5, 2);
        f.reverse = true;
        assert_eq!(evaluate(100, &[f]).effective_priority, 90);
        // Limited to 253 before it is added, then clamped to 254.
        assert_eq!(evaluate(1, &[file(1000, 1)]).effective_priority, 254);
        assert_eq!(evaluate(100, &[file(-253, 1)]).effective_priority, 1);
        assert!(evaluate(100, &[file(-254, 1)]).fault.is_some());
        assert!(evaluate(100, &[file(i64::MIN, 254)]).fault.is_some());
        assert!(
            evaluate(100, &[file(-127, 2)]).fault.is_some(),
            "-254 is FAULT"
        );
        let t = evaluate(100, &[file(-126, 2)]);
        assert_eq!(t.fault, None);
        assert_eq!(
            t.reasons[0].to_string(),
            "check w value -126: priority -252"
        );
    }

    #[test]
    fn sync_group_rule() {
        use GroupState as G;
        use MemberWish as M;
        assert_eq!(sync_group(&[M::Master, M::Fault]), G::Fault);
        assert_eq!(sync_group(&[M::Pending, M::Fault]), G::Fault);
        assert_eq!(sync_group(&[M::Master, M::Pending]), G::Init);
        assert_eq!(sync_group(&[M::Master, M::Backup]), G::Backup);
        assert_eq!(sync_group(&[M::Master, M::Master]), G::Master);
        assert_eq!(sync_group(&[M::Backup, M::Backup]), G::Backup);
        assert_eq!(sync_group(&[]), G::Backup);
    }
}
