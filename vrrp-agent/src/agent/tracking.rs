//! Health tracking and sync groups in the agent (keepalived's rules, see
//! [`crate::checks::track`]).
//!
//! The agent owns a [`CheckBook`]; the shell feeds it every
//! [`CheckEvent`] ([`Agent::handle_check`]) and the up/down state of every
//! tracked interface that is not an instance's own
//! ([`Agent::handle_tracked_link`]). After each input every instance is
//! re-evaluated (`Agent::retrack`):
//!
//! - **Weight 0** down: the instance goes to FAULT. A MASTER first resigns
//!   with a priority-0 advert (RFC 9568 §6.4.3's Shutdown advert, as
//!   keepalived does on a track failure) and releases its VIPs. When no
//!   track holds it any more it starts again as at startup.
//! - **Non-zero weights**: the effective priority goes to the core
//!   ([`crate::proto::VirtualRouter::set_priority`]): a MASTER advertises it,
//!   a BACKUP re-derives its timers (a higher one preempts if `preempt`),
//!   an owner (255) is never changed.
//! - **Pending** weight-0 checks (no result yet) hold the instance in INIT:
//!   it does not start the election until they have a result.
//! - **Sync groups**: a member in FAULT puts every member in FAULT; a
//!   pending member holds every member in INIT ([`sync_group`]); BACKUP
//!   and MASTER are kept together by `sync.rs`. The group's notify
//!   commands run on each change of the group's state.
//!
//! Every change of the effective priority or of a FAULT cause is logged
//! with its reasons ([`Command::Tracking`]).

use std::collections::HashMap;

use super::{Agent, Command};
use crate::{
    checks::{CheckBook, CheckEvent, CheckSpec, GroupState, MemberWish, sync_group},
    config::SyncGroup,
    proto::{Instant, State, router::OWNER_PRIORITY},
};

/// What tracking decided for one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackState {
    /// The priority tracking gives (the configured one without tracks).
    pub effective_priority: u8,
    /// Why the instance is held in FAULT by tracking (its own track or its
    /// sync group), if it is.
    pub fault: Option<String>,
    /// A weight-0 check (of it or of a group member) has no result yet.
    pub pending: bool,
    /// Every track with an effect now, in words.
    pub reasons: Vec<String>,
}

/// A sync group at run time.
#[derive(Debug)]
pub(super) struct Group {
    pub(super) cfg: SyncGroup,
    /// The state last notified.
    state: Option<GroupState>,
}

/// The tracking inputs the agent keeps.
#[derive(Default)]
pub(super) struct Tracking {
    pub(super) book: Option<CheckBook>,
    /// Tracked interfaces by name; one never reported counts as up.
    pub(super) links: HashMap<String, bool>,
    pub(super) groups: Vec<Group>,
    /// [`Agent::start`] ran: instances may leave INIT.
    pub(super) started: bool,
}

impl std::fmt::Debug for Tracking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracking")
            .field("links", &self.links)
            .field("groups", &self.groups)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// Sets (or, on reload, replaces) the checks and sync groups. Call
    /// before [`Agent::start`] / [`Agent::finish_reload`], which apply them.
    pub fn configure_tracking(&mut self, checks: &[CheckSpec], groups: &[SyncGroup]) {
        match &mut self.tracking.book {
            Some(book) => book.reload(checks),
            None => self.tracking.book = Some(CheckBook::new(checks)),
        }
        let old = std::mem::take(&mut self.tracking.groups);
        self.tracking.groups = groups
            .iter()
            .map(|cfg| Group {
                state: old.iter().find(|g| g.cfg == *cfg).and_then(|g| g.state),
                cfg: cfg.clone(),
            })
            .collect();
    }

    /// The record of every check (for status).
    pub fn checks(&self) -> Option<&CheckBook> {
        self.tracking.book.as_ref()
    }

    /// Every sync group with the state it last took (for status).
    pub fn sync_groups(&self) -> impl Iterator<Item = (&SyncGroup, Option<GroupState>)> {
        self.tracking.groups.iter().map(|g| (&g.cfg, g.state))
    }

    /// Whether the tracked interface `name` is up (never reported: up).
    pub fn tracked_link_up(&self, name: &str) -> bool {
        self.tracking.links.get(name).copied().unwrap_or(true)
    }

    /// Every interface tracked by name (`track = [{ interface = .. }]`).
    pub fn tracked_interfaces(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .instances
            .iter()
            .flat_map(|i| i.cfg.track.iter())
            .filter_map(|t| match &t.target {
                crate::checks::TrackTarget::Interface(n) => Some(n.clone()),
                crate::checks::TrackTarget::Check(_) => None,
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// A check result from the runners.
    pub fn handle_check(&mut self, now: Instant, event: &CheckEvent) {
        let Some(book) = &mut self.tracking.book else {
            return;
        };
        if book.record(event).is_some() {
            self.retrack(now);
        }
    }

    /// A tracked interface (by name) went up or down.
    pub fn handle_tracked_link(&mut self, now: Instant, name: &str, up: bool) {
        if self.tracking.links.insert(name.to_owned(), up) != Some(up) {
            self.retrack(now);
        }
    }

    /// Whether `name` is in a sync group.
    fn group_of(&self, name: &str) -> Option<usize> {
        self.tracking
            .groups
            .iter()
            .position(|g| g.cfg.instances.iter().any(|m| m == name))
    }

    /// Re-evaluates every instance's tracking and applies it (module doc).
    pub(super) fn retrack(&mut self, now: Instant) {
        let mut states: Vec<TrackState> = self
            .instances
            .iter()
            .map(|inst| {
                let cfg = &inst.cfg;
                let in_group = self.group_of(&cfg.name).is_some();
                let Some(book) = &self.tracking.book else {
                    return TrackState {
                        effective_priority: cfg.priority,
                        ..TrackState::default()
                    };
                };
                let t = book.evaluate(cfg.priority, &cfg.track, in_group, |n| {
                    self.tracked_link_up(n)
                });
                TrackState {
                    effective_priority: t.effective_priority,
                    fault: t.fault.map(|r| r.to_string()),
                    pending: t.pending,
                    reasons: t.reasons.iter().map(ToString::to_string).collect(),
                }
            })
            .collect();
        self.apply_groups(&mut states);
        for (i, st) in states.into_iter().enumerate() {
            self.apply_tracked(now, i, st);
        }
        self.notify_groups();
    }

    /// keepalived's group rule over the members' own tracking: FAULT and
    /// INIT spread to every member; the group notify runs on a change.
    fn apply_groups(&mut self, states: &mut [TrackState]) {
        for g in 0..self.tracking.groups.len() {
            let members: Vec<usize> = self.tracking.groups[g]
                .cfg
                .instances
                .iter()
                .filter_map(|m| self.instances.iter().position(|i| i.cfg.name == *m))
                .collect();
            let wishes: Vec<MemberWish> = members
                .iter()
                .map(|&i| {
                    let inst = &self.instances[i];
                    let link_bad = !(inst.link_up && inst.source.is_some());
                    match (&states[i], inst.router.state()) {
                        (s, _) if s.fault.is_some() || link_bad => MemberWish::Fault,
                        (s, _) if s.pending => MemberWish::Pending,
                        (_, State::Master) => MemberWish::Master,
                        _ => MemberWish::Backup,
                    }
                })
                .collect();
            let group_state = sync_group(&wishes);
            let name = self.tracking.groups[g].cfg.name.clone();
            if group_state == GroupState::Fault {
                let cause = members
                    .iter()
                    .zip(&wishes)
                    .find(|(_, w)| **w == MemberWish::Fault)
                    .map(|(&i, _)| self.instances[i].cfg.name.clone())
                    .unwrap_or_default();
                for &i in &members {
                    if states[i].fault.is_none() {
                        states[i].fault =
                            Some(format!("sync group {name}: member {cause} in FAULT"));
                    }
                }
            }
            if group_state == GroupState::Init {
                for &i in &members {
                    states[i].pending = true;
                }
            }
        }
    }

    /// Runs the group notify of every group whose state changed, from the
    /// members' current states. Called after every input that may change
    /// one (a retrack, a member's state change).
    pub(super) fn notify_groups(&mut self) {
        for g in 0..self.tracking.groups.len() {
            let wishes: Vec<MemberWish> = self
                .members(g)
                .into_iter()
                .map(|i| self.member_wish(i, false))
                .collect();
            self.group_changed(g, sync_group(&wishes));
        }
    }

    /// Records the group's state and queues its notify commands on a change.
    fn group_changed(&mut self, g: usize, state: GroupState) {
        let group = &mut self.tracking.groups[g];
        if group.state == Some(state) {
            return;
        }
        group.state = Some(state);
        if state == GroupState::Init {
            return;
        }
        let word = state.as_str();
        let name = group.cfg.name.clone();
        for argv in group.cfg.notify.commands("GROUP", &name, word, 0) {
            self.commands.push_back(Command::Notify {
                queue: format!("group {name}"),
                state: word.to_owned(),
                argv,
            });
        }
    }

    /// Applies one instance's tracking to its core.
    fn apply_tracked(&mut self, now: Instant, i: usize, st: TrackState) {
        let inst = &mut self.instances[i];
        let owner = inst.cfg.priority == OWNER_PRIORITY;
        if st != inst.track {
            self.commands.push_back(Command::Tracking {
                id: inst.id,
                effective_priority: st.effective_priority,
                fault: st.fault.clone(),
                pending: st.pending,
                reasons: st.reasons.clone(),
            });
        }
        let priority = if owner {
            OWNER_PRIORITY
        } else {
            st.effective_priority
        };
        inst.track = st;
        inst.router.set_priority(now, priority);
        let usable = inst.usable();
        let state = inst.router.state();
        if state == State::Init {
            if !self.tracking.started || (inst.track.pending && inst.track.fault.is_none()) {
                self.drain(i, now);
                return;
            }
            let inst = &mut self.instances[i];
            inst.router.handle_interface(now, usable);
            inst.router.handle_startup(now);
        } else {
            if state == State::Master && !usable && inst.link_up && inst.source.is_some() {
                // A track failure, not a dead link: resign so the backup
                // takes over after Skew_Time instead of Master_Down_Interval.
                self.commands.push_back(Command::SendAdvert {
                    id: inst.id,
                    advert: inst.advert(0),
                    dsts: inst.cfg.advert_destinations(),
                    checksum: inst.cfg.v3_checksum,
                });
            }
            let inst = &mut self.instances[i];
            inst.router.handle_interface(now, usable);
        }
        self.drain(i, now);
    }
}
