//! The agent: every decision between the data plane and the I/O, pure.
//!
//! It owns every configured instance — its [`VirtualRouter`], the record of
//! the adverts handed to it, the data plane's deliver-all flag, its counters
//! — and, like the protocol core, reads no clock and touches no socket: the
//! shell (`crate::daemon`) calls `handle_*(now, ..)` and carries out what
//! [`Agent::poll_command`] returns, in order, then sleeps until
//! [`Agent::poll_timeout`]. The kernel's `LAST_SEEN` record is read through
//! the [`LastSeen`] trait, so tests fake it and run on a virtual clock.
//!
//! ```text
//!   advert events ─► handle_advert ──┐
//!   deadline ─────► handle_timeout ──┤            ┌► SendAdvert, Add/RemoveVips,
//!   link up/down ─► handle_link ─────┼► Agent ────┤  Announce, Notify, SetDeliverAll,
//!   re-resolved ──► handle_resolved  │            │  SetLocalPriority, RestoreVip,
//!   VIP removed ──► handle_vip_removed            │
//!   SIGHUP ───────► reload / finish_reload        └► ApplyDataPlane, Forget
//!   SIGTERM ──────► handle_stop ─► Handover::poll
//!   check result ─► handle_check ──────► (tracking: set_priority, FAULT, INIT hold)
//!   tracked link ─► handle_tracked_link   Notify, Tracking (log)
//! ```
//!
//! Rules (RFC 9568 §6 through the core, [`crate::proto::router`]):
//!
//! - Adverts go to the instance of their (interface, VRID, family); a
//!   priority-0 advert is counted (`prio0_rx`).
//! - Commands come in the order the wire needs: the core emits its actions
//!   advert first, and they are passed on unchanged, never re-sorted.
//! - A state change counts a transition, records the effective priority in
//!   the data plane and runs the notify script.
//! - Interface down -> every instance on it goes to FAULT (a MASTER removes
//!   its VIPs); up again -> as at startup. A removed interface is down.
//! - An interface without an advert source (no IPv4 address yet, IPv6
//!   link-local address missing or still tentative) is as good as down:
//!   the instance waits in FAULT, with the reason in status
//!   ([`Instance::fault_reason`]), until the shell resolves it again
//!   ([`Agent::handle_resolved`]); boot order does not matter. An interface
//!   re-created under the same name (new index) is taken up again the same
//!   way, and the data plane re-applied to it.
//! - A VIP removed by someone else while we are MASTER is added back (ours
//!   are only removed after the core left MASTER).
//! - An address owner (configured priority 255) never removes its VIPs:
//!   they are the interface's own addresses (RFC 9568 §1, "IPvX Address
//!   Owner"), so neither the start-up cleanup of VIPs left by a crash
//!   ([`removes_stale_vips`]) nor a stop or a fault deletes them.
//!
//! Not in the RFCs, decided here:
//!
//! - **Suppressed adverts** (`delivered.rs`): the XDP program suppresses
//!   adverts identical to their predecessor; an event that replaced an
//!   advert the core never saw replays it first (see the module).
//! - **Master_Down catch-up**: before a Backup acts on a due deadline, the
//!   newest advert in `LAST_SEEN` is delivered if newer than the last one
//!   handed over, so the election is what it would be had every advert been
//!   delivered. Backups whose deadline is within [`CATCH_UP_AHEAD`] read it
//!   on the same wake-up: usually the master is alive and the deadline
//!   moves on, so one wake-up serves many instances. Nothing fires early:
//!   the core acts only on deadlines `<= now`.
//! - **Deliver-all**: the data plane's flag follows
//!   [`VirtualRouter::wants_every_advert`] after every input. When it is
//!   set on a MASTER, an advert suppressed between the last look and the
//!   flag change is caught up from `LAST_SEEN`
//!   ([`Agent::handle_deliver_all_set`]).
//! - **Reload** ([`reload`]): instances matched by name and (interface,
//!   VRID, family); unchanged ones keep state and timers, changed ones are
//!   reconfigured in place (a MASTER swaps its VIP list), others stop or
//!   start.
//! - **Graceful stop** ([`handover`]): every MASTER resigns; the shell
//!   detaches XDP only once a new master advertises for each of its VRIDs
//!   (or a bounded wait ends).
//! - **Tracking and sync groups** ([`tracking`]): health checks and tracked
//!   interfaces set the effective priority (through the core's
//!   `set_priority`), hold an instance in FAULT (a MASTER resigns with
//!   priority 0 first) or in INIT, and sync groups spread FAULT and INIT
//!   (keepalived's rules, [`crate::checks::track`]).
//! - **Notify**: on a state change the state's own command
//!   (`notify_master`, ...) as written, then the generic `notify` with
//!   `INSTANCE name STATE priority` appended ([`config::Notify::commands`]).

mod command;
pub(crate) mod delivered;
pub mod handover;
pub mod reload;
mod sync;
pub mod tracking;

use std::{
    collections::VecDeque,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

pub use command::{AdvertIn, Command, InstanceId, LastSeen, Link, SeenAdvert};
pub use handover::{Handover, HandoverStep};
pub use tracking::TrackState;

use self::delivered::Delivered;
use crate::{
    config,
    proto::{Action, Advert, Family, Instant, State, VirtualRouter, router::OWNER_PRIORITY},
};

/// How far ahead of its Master_Down deadline a Backup reads `LAST_SEEN`
/// when the timer wakes the shell anyway.
pub const CATCH_UP_AHEAD: Duration = Duration::from_millis(2);

/// Whether the VIPs of `cfg` found on the interface at start are removed
/// as left behind by a crash: yes, except for an address owner, whose VIPs
/// are the interface's own addresses.
pub fn removes_stale_vips(cfg: &config::Instance) -> bool {
    !is_owner(cfg)
}

/// The configured address owner (RFC 9568 §5.2.4: priority 255).
fn is_owner(cfg: &config::Instance) -> bool {
    cfg.priority == OWNER_PRIORITY
}

/// One configured instance at run time.
#[derive(Debug)]
pub struct Instance {
    id: InstanceId,
    cfg: config::Instance,
    ifindex: u32,
    /// The interface is operationally up.
    link_up: bool,
    source: Option<IpAddr>,
    router: VirtualRouter,
    delivered: Delivered,
    deliver_all: bool,
    prio0_rx: u64,
    transitions: u64,
    last_transition: Option<Instant>,
    /// What tracking decided.
    track: TrackState,
}

impl Instance {
    /// Its handle.
    pub fn id(&self) -> InstanceId {
        self.id
    }
    /// Its configuration.
    pub fn config(&self) -> &config::Instance {
        &self.cfg
    }
    /// Its interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
    /// Its advert source address, once the interface has one.
    pub fn source(&self) -> Option<IpAddr> {
        self.source
    }
    /// What tracking decided (effective priority, FAULT cause, reasons).
    pub fn tracking(&self) -> &TrackState {
        &self.track
    }
    /// Why the instance is in FAULT: its interface, or tracking.
    pub fn fault_reason(&self) -> Option<&str> {
        if self.router.state() != State::Fault {
            return None;
        }
        if !self.link_up {
            return Some("interface down");
        }
        if let Some(why) = &self.track.fault {
            return Some(why);
        }
        match (self.source, self.cfg.family) {
            (Some(_), _) => None,
            (None, _) if self.cfg.unicast_src.is_some() => {
                Some("unicast_src is not (yet) an address of the interface")
            }
            (None, Family::V4) => Some("no IPv4 address on the interface"),
            (None, Family::V6) => {
                Some("no usable IPv6 link-local address (missing or still tentative)")
            }
        }
    }
    /// The instance may run: its interface is up with a source address,
    /// and no tracked object holds it in FAULT.
    fn usable(&self) -> bool {
        self.link_up && self.source.is_some() && self.track.fault.is_none()
    }
    /// Its protocol core (state, priority, master, intervals).
    pub fn router(&self) -> &VirtualRouter {
        &self.router
    }
    /// What the data plane was last told about delivering every advert.
    pub fn deliver_all(&self) -> bool {
        self.deliver_all
    }
    /// Priority-0 adverts received.
    pub fn prio0_rx(&self) -> u64 {
        self.prio0_rx
    }
    /// State changes since start.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }
    /// When the last state change happened.
    pub fn last_transition(&self) -> Option<Instant> {
        self.last_transition
    }

    fn advert(&self, priority: u8) -> Advert {
        Advert {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            interval: self.cfg.advert_interval,
            addrs: self.cfg.virtual_ips.iter().map(|v| v.addr).collect(),
        }
    }

    /// Delivers the newest advert in `LAST_SEEN` if the core has not seen it.
    fn catch_up(&mut self, seen: &impl LastSeen) {
        let Some(s) = seen.last_seen(self.ifindex, self.cfg.vrid, self.cfg.family) else {
            return;
        };
        if s.ts > self.delivered.ts {
            self.delivered.deliver(&mut self.router, s.ts, s.advert);
        }
    }
}

/// Every instance and the commands they produced.
#[derive(Debug, Default)]
pub struct Agent {
    instances: Vec<Instance>,
    commands: VecDeque<Command>,
    next_id: u64,
    /// Instance names in file order, set by [`Agent::reload`].
    order: Vec<String>,
    /// Checks, tracked interfaces, sync groups.
    tracking: tracking::Tracking,
}

impl Agent {
    /// An agent with no instance.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an instance on a resolved interface, in state Init; it starts
    /// with [`Agent::start`] (or [`Agent::finish_reload`]).
    pub fn add_instance(&mut self, now: Instant, cfg: config::Instance, link: Link) -> InstanceId {
        let id = InstanceId(self.next_id);
        self.next_id += 1;
        let primary = link.source.unwrap_or(match cfg.family {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
        let mut router = VirtualRouter::new(cfg.router_config(primary));
        if !(link.up && link.source.is_some()) {
            router.handle_interface(now, false);
        }
        let track = TrackState {
            effective_priority: cfg.priority,
            ..TrackState::default()
        };
        self.instances.push(Instance {
            id,
            cfg,
            ifindex: link.ifindex,
            link_up: link.up,
            source: link.source,
            router,
            delivered: Delivered::default(),
            deliver_all: false,
            prio0_rx: 0,
            transitions: 0,
            last_transition: None,
            track,
        });
        id
    }

    /// The Startup event for every instance still in Init, unless tracking
    /// holds it there (a weight-0 check without a result yet).
    pub fn start(&mut self, now: Instant) {
        self.tracking.started = true;
        self.retrack(now);
    }

    /// The instances, in file order.
    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    /// One instance.
    pub fn instance(&self, id: InstanceId) -> Option<&Instance> {
        self.instances.iter().find(|i| i.id == id)
    }

    /// The interfaces instances run on.
    pub fn ifindexes(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.instances.iter().map(|i| i.ifindex).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The next command, oldest first. Drain after every input.
    #[must_use]
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// The earliest deadline of any instance: call
    /// [`Agent::handle_timeout`] then.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.instances
            .iter()
            .filter_map(|i| i.router.poll_timeout())
            .min()
    }

    /// An advert from the data plane.
    pub fn handle_advert(&mut self, now: Instant, ev: &AdvertIn) {
        let family = Family::of(ev.advert.src);
        let Some(i) = self.instances.iter().position(|r| {
            r.ifindex == ev.ifindex && r.cfg.vrid == ev.vrid && r.cfg.family == family
        }) else {
            return;
        };
        let inst = &mut self.instances[i];
        if ev.advert.priority == 0 {
            inst.prio0_rx += 1;
        }
        inst.delivered
            .deliver_event(&mut inst.router, ev.ts, ev.prev_ts, ev.advert);
        self.drain(i, now);
    }

    /// The deadline timer fired at `now`: fires every due timer, after the
    /// Master_Down catch-up from `LAST_SEEN` (see the module documentation).
    pub fn handle_timeout(&mut self, now: Instant, seen: &impl LastSeen) {
        let horizon = now + CATCH_UP_AHEAD;
        for i in 0..self.instances.len() {
            let inst = &mut self.instances[i];
            let Some(deadline) = inst.router.poll_timeout() else {
                continue;
            };
            let backup = inst.router.state() == State::Backup;
            if deadline > now && !(backup && deadline <= horizon) {
                continue;
            }
            if backup {
                inst.catch_up(seen);
            }
            inst.router.handle_timeout(now);
            self.drain(i, now);
        }
    }

    /// The data plane now delivers every advert of `id` (after
    /// [`Command::SetDeliverAll`] with `on`): a MASTER catches up with an
    /// advert suppressed before the flag took effect.
    pub fn handle_deliver_all_set(&mut self, now: Instant, id: InstanceId, seen: &impl LastSeen) {
        let Some(i) = self.index(id) else { return };
        let inst = &mut self.instances[i];
        if inst.deliver_all && inst.router.state() == State::Master {
            inst.catch_up(seen);
            self.drain(i, now);
        }
    }

    /// The interface `ifindex` went up or down (or was removed: down).
    pub fn handle_link(&mut self, now: Instant, ifindex: u32, up: bool) {
        for i in 0..self.instances.len() {
            let inst = &mut self.instances[i];
            if inst.ifindex == ifindex && inst.link_up != up {
                inst.link_up = up;
                let usable = inst.usable();
                inst.router.handle_interface(now, usable);
                self.drain(i, now);
            }
        }
        self.regroup(now);
    }

    /// A member's interface changed: its sync group follows (FAULT spreads).
    fn regroup(&mut self, now: Instant) {
        if !self.tracking.groups.is_empty() {
            self.retrack(now);
        }
    }

    /// The shell resolved the interface of `id` again (an address appeared
    /// or went, the interface came back under a new index): a new source
    /// is taken into the core, a new index into the data plane, and the
    /// instance leaves or enters FAULT as the interface is usable or not.
    pub fn handle_resolved(&mut self, now: Instant, id: InstanceId, link: Link) {
        let Some(i) = self.index(id) else { return };
        let inst = &mut self.instances[i];
        if inst.ifindex != link.ifindex {
            inst.ifindex = link.ifindex;
            self.commands.push_back(Command::ApplyDataPlane);
        }
        let inst = &mut self.instances[i];
        inst.link_up = link.up;
        if link.source != inst.source {
            inst.source = link.source;
            if let Some(src) = link.source {
                let cfg = inst.cfg.router_config(src);
                inst.router.reconfigure(now, cfg);
            }
        }
        let usable = inst.usable();
        inst.router.handle_interface(now, usable);
        self.drain(i, now);
        self.regroup(now);
    }

    /// Address `addr` was removed from `ifindex`: a MASTER holding it as a
    /// VIP puts it back.
    pub fn handle_vip_removed(&mut self, ifindex: u32, addr: IpAddr) {
        for inst in &self.instances {
            if inst.ifindex != ifindex || inst.router.state() != State::Master {
                continue;
            }
            if let Some(vip) = inst.cfg.virtual_ips.iter().find(|v| v.addr == addr) {
                self.commands.push_back(Command::RestoreVip {
                    id: inst.id,
                    vip: *vip,
                });
            }
        }
    }

    /// Changes the effective priority of `id`: the hook for health tracking
    /// (a tracker lowers or restores the priority; the core re-derives its
    /// timers, RFC 9568 §6.1 Skew_Time, and a MASTER's next advert carries
    /// it).
    pub fn set_priority(&mut self, now: Instant, id: InstanceId, priority: u8) {
        let Some(i) = self.index(id) else { return };
        self.instances[i].router.set_priority(now, priority);
        self.drain(i, now);
    }

    fn index(&self, id: InstanceId) -> Option<usize> {
        self.instances.iter().position(|i| i.id == id)
    }

    /// Turns the core's actions of instance `i` into commands, in the order
    /// the core emitted them, then syncs the deliver-all flag.
    fn drain(&mut self, i: usize, now: Instant) {
        let changed = self.drain_actions(i, now);
        let synced = self.enforce_groups(now);
        if (changed || synced) && !self.tracking.groups.is_empty() {
            self.notify_groups();
        }
    }

    /// [`Agent::drain`] without the sync groups; true if the state changed.
    fn drain_actions(&mut self, i: usize, now: Instant) -> bool {
        let inst = &mut self.instances[i];
        let id = inst.id;
        let mut first_round_sent = false;
        let mut changed = false;
        while let Some(action) = inst.router.poll_action() {
            let cmd = match action {
                Action::SendAdvert { priority } => Command::SendAdvert {
                    id,
                    advert: inst.advert(priority),
                    dsts: inst.cfg.advert_destinations(),
                    checksum: inst.cfg.v3_checksum,
                },
                Action::AddVips => {
                    first_round_sent = true;
                    Command::AddVips {
                        id,
                        vips: inst.cfg.virtual_ips.clone(),
                    }
                }
                Action::Announce => Command::Announce {
                    id,
                    vips: inst.cfg.virtual_ips.clone(),
                    repeat: inst.cfg.garp_repeat,
                    interval: inst.cfg.garp_interval,
                    first_round_sent: std::mem::take(&mut first_round_sent),
                },
                Action::RemoveVips if is_owner(&inst.cfg) => continue,
                Action::RemoveVips => Command::RemoveVips {
                    id,
                    vips: inst.cfg.virtual_ips.clone(),
                },
                Action::StateChange { from, to } => {
                    changed = true;
                    inst.transitions += 1;
                    inst.last_transition = Some(now);
                    let priority = inst.router.priority();
                    self.commands.push_back(Command::StateChanged {
                        id,
                        from,
                        to,
                        priority,
                        master: inst.router.current_master(),
                    });
                    self.commands
                        .push_back(Command::SetLocalPriority { id, priority });
                    let state = to.to_string();
                    let name = &inst.cfg.name;
                    for argv in inst.cfg.notify.commands("INSTANCE", name, &state, priority) {
                        self.commands.push_back(Command::Notify {
                            queue: name.clone(),
                            state: state.clone(),
                            argv,
                        });
                    }
                    continue;
                }
            };
            self.commands.push_back(cmd);
        }
        let wants = inst.router.wants_every_advert();
        if wants != inst.deliver_all {
            inst.deliver_all = wants;
            self.commands
                .push_back(Command::SetDeliverAll { id, on: wants });
        }
        changed
    }
}
