//! Sync groups over BACKUP and MASTER (keepalived 2.2.7 `vrrp_sync.c`):
//! after every input, each group's members are brought to the group's
//! state through the core's two sync inputs.
//!
//! - The group is MASTER only when every member is Master or wants to be
//!   (its takeover timer fired while held): then every hold is released
//!   and the waiting members become Master together
//!   (`vrrp_sync_can_goto_master`, "prefer backup state to avoid
//!   thrashing").
//! - Otherwise every member is held
//!   ([`crate::proto::VirtualRouter::set_sync_hold`]), and while the group
//!   is BACKUP a member still Master steps down silently
//!   ([`crate::proto::VirtualRouter::handle_sync_backup`],
//!   `vrrp_sync_backup`), so a VIP pair never stays split across routers.
//!   FAULT and INIT are applied by tracking (`tracking.rs`).
//!
//! One member whose master is gone while its group-mate still follows a
//! live master is held: the group stays BACKUP, as keepalived decides; it
//! goes MASTER once the other member's master is gone too (a peer whose
//! member went to FAULT resigns the whole group there).

use super::Agent;
use crate::{
    checks::{GroupState, MemberWish, sync_group},
    proto::{Instant, State},
};

impl Agent {
    /// What member `i` wants for its group: FAULT, INIT, MASTER (is, or
    /// would be but for the hold when `wanting`) or BACKUP.
    pub(super) fn member_wish(&self, i: usize, wanting: bool) -> MemberWish {
        let inst = &self.instances[i];
        let link_bad = !(inst.link_up && inst.source.is_some());
        if inst.track.fault.is_some() || link_bad {
            MemberWish::Fault
        } else if inst.track.pending {
            MemberWish::Pending
        } else if inst.router.state() == State::Master || (wanting && inst.router.wants_master()) {
            MemberWish::Master
        } else {
            MemberWish::Backup
        }
    }

    /// The indexes of group `g`'s configured members that exist.
    pub(super) fn members(&self, g: usize) -> Vec<usize> {
        self.tracking.groups[g]
            .cfg
            .instances
            .iter()
            .filter_map(|m| self.instances.iter().position(|i| i.cfg.name == *m))
            .collect()
    }

    /// Applies the module doc's rule to every group until nothing changes;
    /// true if a member's state changed.
    pub(super) fn enforce_groups(&mut self, now: Instant) -> bool {
        let mut any = false;
        // An instance in no group (any more, after a reload) is never held.
        for i in 0..self.instances.len() {
            let name = &self.instances[i].cfg.name;
            let grouped = self
                .tracking
                .groups
                .iter()
                .any(|g| g.cfg.instances.contains(name));
            if !grouped {
                let router = &mut self.instances[i].router;
                let before = router.state();
                router.set_sync_hold(now, false);
                if router.state() != before {
                    any = true;
                    self.drain_actions(i, now);
                }
            }
        }
        // Each round either changes a member's state or stops; bounded by
        // the number of instances so a bug cannot loop forever.
        for _ in 0..=self.instances.len() {
            let mut changed = false;
            for g in 0..self.tracking.groups.len() {
                let members = self.members(g);
                let wishes: Vec<MemberWish> =
                    members.iter().map(|&i| self.member_wish(i, true)).collect();
                let group = sync_group(&wishes);
                for &i in &members {
                    let router = &mut self.instances[i].router;
                    let before = router.state();
                    router.set_sync_hold(now, group != GroupState::Master);
                    if group == GroupState::Backup {
                        router.handle_sync_backup(now);
                    }
                    if router.state() != before {
                        changed = true;
                        self.drain_actions(i, now);
                    }
                }
            }
            if !changed {
                return any;
            }
            any = true;
        }
        any
    }
}
