//! The VRRP election: one [`VirtualRouter`] per (interface, VRID, family).
//!
//! Sans-I/O, in the style of quinn-proto: the daemon calls `handle_*(now, ..)`
//! with the receive timestamp or the current time, then drains
//! [`VirtualRouter::poll_action`] and sleeps until
//! [`VirtualRouter::poll_timeout`]. Nothing here reads a clock, so the same
//! inputs always give the same outputs, and the tests run on a virtual clock.
//!
//! Rules implemented (RFC 9568 §6 for v3, RFC 3768 §6 for v2; the RFC 9568
//! "Active" state is called Master, as keepalived does):
//!
//! - Startup: the address owner (priority 255) becomes Master at once;
//!   everyone else becomes Backup with Master_Down_Timer = Master_Down_Interval
//!   (§6.4.1).
//! - Backup (§6.4.2): priority-0 advert -> Master_Down_Timer = Skew_Time.
//!   Otherwise, without preemption or when the advert's priority is >= ours,
//!   v3 learns Master_Adver_Interval from the advert, Skew_Time and
//!   Master_Down_Interval are recomputed, and Master_Down_Timer restarts;
//!   with preemption a lower-priority advert is discarded. Master_Down_Timer
//!   expiry -> Master.
//! - Master (§6.4.3): Adver_Timer expiry -> advert. Priority-0 advert -> send
//!   an advert at once and restart Adver_Timer. Higher priority, or equal
//!   priority and a greater primary address (unsigned, network order) ->
//!   Backup (v3 learns the interval; one last advert first, see below).
//!   Lower priority (or equal and a smaller address) -> discard and, per
//!   RFC 9568, send an advert at once; we also
//!   re-announce the VIPs (GARP/NA), as keepalived does, because a lower
//!   priority master means a healed split brain whose clients may still
//!   point at the other router.
//! - Shutdown: a Master sends priority 0 and removes its VIPs; -> Stop.
//! - v2 only: an advert whose Adver Int differs from ours is discarded
//!   (RFC 3768 §7.1); there is no interval learning.
//! - Interface down -> Fault (no adverts, no VIPs); up again -> as at startup
//!   (owner -> Master, others -> Backup).
//!
//! Not in the RFCs, decided here:
//!
//! - **Sync groups** (keepalived 2.2.7 `vrrp_sync.c`; the agent drives
//!   both inputs from the group's state). [`VirtualRouter::set_sync_hold`]
//!   is keepalived's `vrrp_sync_can_goto_master` gate: while held, a
//!   Backup whose Master_Down_Timer or Preempt timer fires (or an owner
//!   starting up) stays Backup, Master_Down_Timer restarted (each expiry
//!   lets the driver catch up with a suppressed advert), and
//!   [`VirtualRouter::wants_master`] says so; an advert it follows or a
//!   priority-0 advert withdraws the wish; released, it becomes Master at
//!   once. [`VirtualRouter::handle_sync_backup`] is keepalived's
//!   `vrrp_sync_backup`: a Master steps down to Backup *silently* — no
//!   priority-0 advert, no last advert, as keepalived's
//!   `vrrp_state_leave_master(isync, false)` — removes its VIPs and arms
//!   Master_Down_Timer from now; the peer takes over when its own
//!   Master_Down_Timer fires (a priority-0 advert would make it take over
//!   after Skew_Time, but keepalived does not send one and a keepalived
//!   peer is the judge).
//! - **preempt_delay** (keepalived's option, applied the way its manual
//!   describes it: "time until preemption after seeing a lower priority
//!   master"): with `preempt` and a non-zero `preempt_delay`, a Backup that
//!   hears a master whose priority is below its own arms a Preempt timer for
//!   `preempt_delay` after that advert. Until it fires, the lower-priority
//!   adverts are accepted like any master's (they keep restarting
//!   Master_Down_Timer), so the Backup does not take over early; when it
//!   fires the Backup becomes Master at once. An advert with priority >= ours
//!   or priority 0 disarms it. With `preempt_delay` zero the RFC rule
//!   applies unchanged (lower adverts discarded, take-over when
//!   Master_Down_Timer expires).
//! - **The yielding master's last advert.** A Master that hears a better
//!   master (higher priority, or equal and a greater address) sends one
//!   advert at its own priority before it becomes Backup and removes its
//!   VIPs. Why: when a split brain heals, the first adverts cross in one of
//!   two orders. If the loser's advert reaches the winner first, the winner
//!   hears a lower priority and, per §6.4.3, asserts itself with an advert;
//!   we also re-announce the VIPs, so clients that followed the loser come
//!   back. If the winner's advert reaches the loser first, the RFC loser
//!   yields silently, the winner never hears anything lower, nobody
//!   announces, and clients keep the loser's MAC (their traffic lost until
//!   their ARP / neighbour entry expires: seconds). The last advert turns the
//!   second order into the first: the winner hears it within one link delay
//!   of the loser yielding and re-announces. It is exactly the advert the
//!   loser would have sent at its next Adver_Timer had the winner's advert
//!   come a little later, so every router sees what it sees in the order
//!   the RFC already handles, and nothing new can follow from it. It cannot
//!   flap: it is sent once per Master -> Backup transition, and its receivers
//!   react as to any advert of a master of that priority — a better Master
//!   re-asserts (no transition), a worse Master yields (it would yield to
//!   the winner's advert anyway), a preempting Backup of higher priority
//!   discards it, any other Backup follows it and only restarts its
//!   Master_Down_Timer (a later deadline, so no takeover) until the winner's
//!   next advert, within one interval. With three routers this holds per
//!   pair: each loser sends one last advert, the winner re-announces after
//!   each, and the last announcement heard is the winner's. The cost: when
//!   a Backup preempts us, the new master answers our last advert with one
//!   more advert and GARP/NA burst. (A Master resigning with priority 0 is
//!   not yielding and sends only the priority-0 advert.) A loser that does
//!   not send it (keepalived, any RFC router) leaves that order as the RFC
//!   does.
//! - Adverts from our own primary address (multicast loopback) and adverts
//!   of another version or family are ignored.
//! - Priority 0 passed to [`VirtualRouter::set_priority`] is raised to 1
//!   (0 is reserved for resigning).
//!
//! Deadlines depend only on the receive time of the advert that set them
//! (`ts + Master_Down_Interval`), never on how many identical adverts came
//! before: the data plane suppresses identical adverts and the daemon
//! delivers only the newest one when a deadline is due. When the core needs
//! to see every advert, [`VirtualRouter::wants_every_advert`] says so.
//!
//! Actions come in the order the wire needs them, so a driver carries them
//! out as polled and never re-sorts: an advert first (peers and their
//! takeover clocks see it at once), then `StateChange`, then the addresses.
//! Entering Master: `SendAdvert`, `StateChange`, `AddVips`, `Announce` (the
//! VIPs must exist before they are announced, RFC 9568 §8.1.2). Leaving
//! Master on shutdown or a resigning reconfiguration: `SendAdvert {
//! priority: 0 }`, `StateChange`, `RemoveVips`. Yielding to a better
//! master: the last `SendAdvert` at our priority (see above),
//! `StateChange`, `RemoveVips`. Leaving it for a down interface:
//! `StateChange`, `RemoveVips`.
//!
//! Files: this one holds the rules above (`handle_*` and the transitions);
//! `router/timers.rs` the timers and their arithmetic (Skew_Time,
//! Master_Down_Interval, the Preempt timer); `router/types.rs` the types at
//! the edges ([`State`], [`RouterConfig`], [`RxAdvert`], [`Action`]).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use super::packet::{Family, Version};
use super::time::Instant;

mod timers;
mod types;

pub use types::{Action, RouterConfig, RxAdvert, State};

/// Priority of the virtual router's address owner (RFC 9568 §5.2.4).
pub const OWNER_PRIORITY: u8 = 255;
/// Priority a Master sends when it resigns (RFC 9568 §5.2.4).
pub const RESIGN_PRIORITY: u8 = 0;

/// The master a Backup currently follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct KnownMaster {
    addr: IpAddr,
    priority: u8,
}

/// What Master_Down_Timer was last armed from, to re-derive it when our
/// priority (hence Skew_Time) changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DownBase {
    at: Instant,
    /// Armed by a priority-0 advert: Skew_Time instead of Master_Down_Interval.
    resign: bool,
}

/// The state machine of one virtual router.
#[derive(Clone, Debug)]
pub struct VirtualRouter {
    cfg: RouterConfig,
    state: State,
    /// Effective priority (configured, or as set by tracking).
    priority: u8,
    /// v3: learned from the master; v2: the configured interval.
    master_adver_interval: Duration,
    interface_up: bool,
    adver_timer: Option<Instant>,
    master_down_timer: Option<Instant>,
    down_base: Option<DownBase>,
    preempt_timer: Option<Instant>,
    master: Option<KnownMaster>,
    /// Sync group gate: a takeover waits until every group-mate is ready.
    sync_hold: bool,
    /// A takeover timer fired while held: Master as soon as released.
    wants_master: bool,
    actions: VecDeque<Action>,
}

impl VirtualRouter {
    /// A router in state Init, with no timer.
    pub fn new(cfg: RouterConfig) -> Self {
        Self {
            priority: cfg.priority.max(1),
            master_adver_interval: cfg.advert_interval,
            cfg,
            state: State::Init,
            interface_up: true,
            adver_timer: None,
            master_down_timer: None,
            down_base: None,
            preempt_timer: None,
            master: None,
            sync_hold: false,
            wants_master: false,
            actions: VecDeque::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &RouterConfig {
        &self.cfg
    }

    /// Current protocol state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Effective priority.
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// Accept_Mode as configured.
    pub fn accept_mode(&self) -> bool {
        self.cfg.accept_mode
    }

    /// True when packets addressed to the VIPs must be accepted locally:
    /// Master and either the address owner or Accept_Mode (RFC 9568 §6.4.3).
    pub fn accepts_vip_traffic(&self) -> bool {
        self.state == State::Master && (self.priority == OWNER_PRIORITY || self.cfg.accept_mode)
    }

    /// Master_Adver_Interval: v3 learned from the master, v2 ours.
    pub fn master_adver_interval(&self) -> Duration {
        self.master_adver_interval
    }

    /// The current master: us when Master, the followed one when Backup
    /// (none before the first advert or after it resigned).
    pub fn current_master(&self) -> Option<IpAddr> {
        match self.state {
            State::Master => Some(self.cfg.primary_addr),
            State::Backup => self.master.map(|m| m.addr),
            _ => None,
        }
    }

    /// The Startup event (RFC 9568 §6.4.1). Ignored unless in Init or Stop.
    pub fn handle_startup(&mut self, now: Instant) {
        if !matches!(self.state, State::Init | State::Stop) {
            return;
        }
        if self.interface_up {
            self.start(now);
        } else {
            self.set_state(State::Fault);
        }
    }

    /// The Shutdown event: a Master sends priority 0 and removes its VIPs
    /// (RFC 9568 §6.4.3); every state goes to Stop with no timer.
    pub fn handle_shutdown(&mut self, _now: Instant) {
        let from = self.state;
        if from == State::Stop {
            return;
        }
        if from == State::Master {
            self.push(Action::SendAdvert {
                priority: RESIGN_PRIORITY,
            });
        }
        self.set_state(State::Stop);
        if from == State::Master {
            self.push(Action::RemoveVips);
        }
        self.clear_timers();
    }

    /// A valid advert for this VRID, received at `now` (its receive
    /// timestamp, which may be earlier than the last call's `now`).
    pub fn handle_advert(&mut self, now: Instant, adv: &RxAdvert) {
        if adv.version != self.cfg.version
            || Family::of(adv.src) != self.cfg.family
            || adv.src == self.cfg.primary_addr
        {
            return;
        }
        // RFC 3768 §7.1: v2 MUST discard an advert whose interval differs.
        if self.cfg.version == Version::V2 && adv.interval != self.cfg.advert_interval {
            return;
        }
        match self.state {
            State::Backup => self.backup_rx(now, adv),
            State::Master => self.master_rx(now, adv),
            State::Init | State::Fault | State::Stop => {}
        }
    }

    /// Fires every timer due at `now`; a no-op if none is.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        match self.state {
            State::Master => {
                if let Some(deadline) = self.adver_timer.filter(|t| *t <= now) {
                    self.push(Action::SendAdvert {
                        priority: self.priority,
                    });
                    // Keep the cadence if we are called late, but never
                    // schedule in the past.
                    let mut next = deadline + self.cfg.advert_interval;
                    if next <= now {
                        next = now + self.cfg.advert_interval;
                    }
                    self.adver_timer = Some(next);
                }
            }
            State::Backup => {
                if due(self.master_down_timer) || due(self.preempt_timer) {
                    self.take_over(now);
                }
            }
            State::Init | State::Fault | State::Stop => {}
        }
    }

    /// The interface went down (-> Fault, VIPs removed) or came back up
    /// (-> as at startup).
    pub fn handle_interface(&mut self, now: Instant, up: bool) {
        if up == self.interface_up {
            return;
        }
        self.interface_up = up;
        match (up, self.state) {
            (false, State::Master) => {
                self.set_state(State::Fault);
                self.push(Action::RemoveVips);
                self.clear_timers();
            }
            (false, State::Backup) => {
                self.set_state(State::Fault);
                self.clear_timers();
            }
            (true, State::Fault) => self.start(now),
            _ => {}
        }
    }

    /// Changes the effective priority (tracking). Timers armed in Backup are
    /// re-derived from the advert that armed them, since Skew_Time depends
    /// on our priority. A Master's next advert carries the new priority.
    pub fn set_priority(&mut self, now: Instant, priority: u8) {
        let priority = priority.max(1);
        if priority == self.priority {
            return;
        }
        self.priority = priority;
        if self.state == State::Backup {
            self.rearm_master_down();
            self.update_preempt_timer(now);
        }
    }

    /// Applies a new configuration. A different VRID, version or family is a
    /// different virtual router: a Master resigns, and the router restarts
    /// from Init. Otherwise state and timers are kept, and only what the
    /// change implies is recomputed.
    pub fn reconfigure(&mut self, now: Instant, cfg: RouterConfig) {
        if cfg == self.cfg {
            return;
        }
        let old = std::mem::replace(&mut self.cfg, cfg);
        if old.vrid != self.cfg.vrid
            || old.version != self.cfg.version
            || old.family != self.cfg.family
        {
            let was = self.state;
            if was == State::Master {
                self.push(Action::SendAdvert {
                    priority: RESIGN_PRIORITY,
                });
            }
            if matches!(was, State::Master | State::Backup) {
                self.set_state(State::Init);
            }
            if was == State::Master {
                self.push(Action::RemoveVips);
            }
            self.clear_timers();
            self.master = None;
            self.priority = self.cfg.priority.max(1);
            self.master_adver_interval = self.cfg.advert_interval;
            if matches!(was, State::Master | State::Backup) {
                self.handle_startup(now);
            }
            return;
        }
        if old.priority != self.cfg.priority {
            self.set_priority(now, self.cfg.priority);
        }
        if old.advert_interval != self.cfg.advert_interval {
            match self.state {
                State::Master => {
                    self.master_adver_interval = self.cfg.advert_interval;
                    let sooner = now + self.cfg.advert_interval;
                    self.adver_timer = self.adver_timer.map(|t| t.min(sooner));
                }
                State::Backup => {
                    // v3 keeps the interval learned from a master, if any.
                    if self.cfg.version == Version::V2 || self.master.is_none() {
                        self.master_adver_interval = self.cfg.advert_interval;
                        self.rearm_master_down();
                    }
                }
                _ => self.master_adver_interval = self.cfg.advert_interval,
            }
        }
        self.update_preempt_timer(now);
    }

    /// Sync group gate (keepalived's `vrrp_sync_can_goto_master`): while
    /// held, a Backup whose Master_Down_Timer or Preempt timer fires (or an
    /// owner starting up) stays Backup and only [wants to be
    /// Master](Self::wants_master); released, it becomes Master at once if
    /// it wants to.
    pub fn set_sync_hold(&mut self, now: Instant, held: bool) {
        self.sync_hold = held;
        if !held && self.wants_master && self.state == State::Backup {
            self.become_master(now);
        }
    }

    /// A held Backup's takeover timer fired: it would be Master but for its
    /// sync group. Cleared by an advert it follows (a master is back), a
    /// priority-0 advert (timer re-armed), or leaving Backup.
    pub fn wants_master(&self) -> bool {
        self.wants_master
    }

    /// The sync group goes BACKUP (keepalived's `vrrp_sync_backup`): a
    /// Master becomes Backup without an advert, priority 0 or other (as
    /// keepalived: the peer takes over when its Master_Down_Timer fires),
    /// removes its VIPs and arms Master_Down_Timer from `now`. Other states
    /// are unchanged.
    pub fn handle_sync_backup(&mut self, now: Instant) {
        if self.state != State::Master {
            return;
        }
        self.set_state(State::Backup);
        self.push(Action::RemoveVips);
        self.clear_timers();
        self.master = None;
        self.arm_master_down(now, false);
    }

    /// The next action to perform, oldest first.
    #[must_use = "a polled action is removed from the queue; dropping it loses it"]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// True when every advert must reach the core (Master: lower-priority
    /// adverts need an answer; Backup with a preempt delay: the first
    /// lower-priority advert arms the Preempt timer). The data plane's
    /// `VRID_F_DELIVER_ALL` flag mirrors this.
    pub fn wants_every_advert(&self) -> bool {
        match self.state {
            State::Master => true,
            State::Backup => self.cfg.preempt && !self.cfg.preempt_delay.is_zero(),
            _ => false,
        }
    }

    // ---- transitions -------------------------------------------------------

    /// Startup / interface up: RFC 9568 §6.4.1.
    fn start(&mut self, now: Instant) {
        self.clear_timers();
        if self.priority == OWNER_PRIORITY && !self.sync_hold {
            self.become_master(now);
        } else if self.priority == OWNER_PRIORITY {
            // Held by its sync group: a Backup that wants to be Master.
            self.master_adver_interval = self.cfg.advert_interval;
            self.set_state(State::Backup);
            self.take_over(now);
        } else {
            self.master_adver_interval = self.cfg.advert_interval;
            self.set_state(State::Backup);
            self.arm_master_down(now, false);
        }
    }

    /// Master_Down_Timer or Preempt timer expiry, or owner startup, through
    /// the sync group gate (set_sync_hold).
    fn take_over(&mut self, now: Instant) {
        if self.sync_hold {
            // Master_Down_Timer restarts, as keepalived's gate does: the
            // driver catches up with an advert the data plane suppressed
            // (a master that came back withdraws the wish) each time it
            // fires.
            self.preempt_timer = None;
            self.arm_master_down(now, false);
            self.wants_master = true;
        } else {
            self.become_master(now);
        }
    }

    /// Master_Down_Timer or Preempt timer expiry, or owner startup:
    /// RFC 9568 §6.4.1 / §6.4.2.
    fn become_master(&mut self, now: Instant) {
        // The advert first: peers and the takeover clock see it at once;
        // the VIPs follow and are announced once they exist.
        self.push(Action::SendAdvert {
            priority: self.priority,
        });
        self.set_state(State::Master);
        self.clear_timers();
        self.master = None;
        self.master_adver_interval = self.cfg.advert_interval;
        self.push(Action::AddVips);
        self.push(Action::Announce);
        self.adver_timer = Some(now + self.cfg.advert_interval);
    }

    /// RFC 9568 §6.4.2 (Backup receives an advert).
    fn backup_rx(&mut self, now: Instant, adv: &RxAdvert) {
        if adv.priority == RESIGN_PRIORITY {
            // The master resigned: take over after Skew_Time only, so the
            // highest-priority backup wins.
            self.master = None;
            self.preempt_timer = None;
            self.arm_master_down(now, true);
            return;
        }
        let lower = adv.priority < self.priority;
        if !self.cfg.preempt || !lower {
            self.follow(now, adv);
            self.preempt_timer = None;
            return;
        }
        if !self.cfg.preempt_delay.is_zero() {
            // keepalived's preempt_delay: tolerate the lower master until
            // the Preempt timer (armed by the first such advert) fires.
            let deadline = *self
                .preempt_timer
                .get_or_insert(now + self.cfg.preempt_delay);
            if now < deadline {
                self.follow(now, adv);
            }
        }
        // Preempt_Mode and a lower priority: discard.
    }

    /// RFC 9568 §6.4.3 (Master receives an advert).
    fn master_rx(&mut self, now: Instant, adv: &RxAdvert) {
        if adv.priority == RESIGN_PRIORITY {
            self.push(Action::SendAdvert {
                priority: self.priority,
            });
            self.adver_timer = Some(now + self.cfg.advert_interval);
            return;
        }
        let other_wins = adv.priority > self.priority
            || (adv.priority == self.priority && addr_greater(adv.src, self.cfg.primary_addr));
        if other_wins {
            // The yielding master's last advert (module doc): the winner
            // re-announces even if its advert reached us first.
            self.push(Action::SendAdvert {
                priority: self.priority,
            });
            self.set_state(State::Backup);
            self.push(Action::RemoveVips);
            self.adver_timer = None;
            self.follow(now, adv);
        } else {
            // RFC 9568 §6.4.3: assert the Master state at once (and refresh
            // learning bridges); re-announce the VIPs for clients that
            // followed the other master during a split brain.
            self.push(Action::SendAdvert {
                priority: self.priority,
            });
            self.push(Action::Announce);
        }
    }

    /// Accepts `adv` as the current master's: v3 learns its interval, then
    /// Master_Down_Timer restarts from the advert's receive time.
    fn follow(&mut self, now: Instant, adv: &RxAdvert) {
        if self.cfg.version == Version::V3 {
            self.master_adver_interval = adv.interval;
        }
        self.master = Some(KnownMaster {
            addr: adv.src,
            priority: adv.priority,
        });
        self.arm_master_down(now, false);
    }

    fn set_state(&mut self, to: State) {
        let from = self.state;
        if from != to {
            self.state = to;
            self.wants_master = false;
            self.push(Action::StateChange { from, to });
        }
    }

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }
}

/// Tie-break: `a` > `b` as unsigned network-order integers (RFC 9568
/// §6.4.3). Mixed families never meet here (filtered by family first).
fn addr_greater(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets() > b.octets(),
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets() > b.octets(),
        (IpAddr::V6(_), IpAddr::V4(_)) => true,
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
}
