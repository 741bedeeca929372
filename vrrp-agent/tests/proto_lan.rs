//! Two or three virtual routers on one simulated LAN, on a virtual clock.
//!
//! Adverts go through the real codec (`Advert::emit` -> bytes ->
//! `Advert::parse`), with a configurable one-way delay, loss probability
//! (deterministic PRNG) and partitions between pairs of routers. Times are
//! asserted to the nanosecond: the core never reads a clock.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use vrrp_agent::proto::{
    Action, Advert, Family, Instant, RouterConfig, RxAdvert, RxMeta, State, V3Checksum, Version,
    VirtualRouter,
};

const GROUP: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));

fn addr(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + i as u8))
}

/// One router on the LAN and what it did.
struct Node {
    router: VirtualRouter,
    /// Crashed (silent) or stopped: receives and fires nothing.
    alive: bool,
    holds_vips: bool,
    /// (time, priority) of every advert sent.
    sent: Vec<(Instant, u8)>,
    announced: Vec<Instant>,
    transitions: Vec<(Instant, State, State)>,
}

/// A frame in flight.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    seq: u64,
    to: usize,
    from: usize,
    bytes: Vec<u8>,
}

struct Lan {
    nodes: Vec<Node>,
    now: Instant,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    delay: Duration,
    /// Loss probability per delivery, in 1/1000.
    loss_per_mille: u64,
    /// `cut[a][b]`: frames from a to b are dropped.
    cut: Vec<Vec<bool>>,
    rng: u64,
    /// Frames lost to `loss_per_mille`.
    dropped: u64,
    /// A client's ARP / neighbour entry for the VIP: the router whose
    /// announcement (GARP / NA) it heard last.
    client: Option<usize>,
    /// Every advert delivered: (time, from, to, priority).
    delivered: Vec<(Instant, usize, usize, u8)>,
}

impl Lan {
    /// Routers with these (version, priority, interval); all start unstarted.
    fn new(version: Version, routers: &[(u8, Duration)], delay: Duration) -> Self {
        let nodes = routers
            .iter()
            .enumerate()
            .map(|(i, &(priority, interval))| Node {
                router: VirtualRouter::new(RouterConfig {
                    vrid: 51,
                    version,
                    family: Family::V4,
                    priority,
                    advert_interval: interval,
                    preempt: true,
                    preempt_delay: Duration::ZERO,
                    accept_mode: false,
                    primary_addr: addr(i),
                }),
                alive: true,
                holds_vips: false,
                sent: Vec::new(),
                announced: Vec::new(),
                transitions: Vec::new(),
            })
            .collect();
        Lan {
            nodes,
            now: Instant::default(),
            queue: BinaryHeap::new(),
            seq: 0,
            delay,
            loss_per_mille: 0,
            cut: vec![vec![false; routers.len()]; routers.len()],
            rng: 0x9e37_79b9_7f4a_7c15,
            dropped: 0,
            client: None,
            delivered: Vec::new(),
        }
    }

    /// xorshift64*: deterministic, so a lossy run is reproducible.
    fn random_per_mille(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % 1000
    }

    fn start(&mut self, i: usize, at: Instant) {
        self.run_until(at);
        self.nodes[i].router.handle_startup(at);
        self.process_actions(i);
    }

    /// The node crashes: no priority 0, no more adverts.
    fn kill(&mut self, i: usize) {
        self.nodes[i].alive = false;
    }

    fn shutdown(&mut self, i: usize) {
        let now = self.now;
        self.nodes[i].router.handle_shutdown(now);
        self.process_actions(i);
        self.nodes[i].alive = false;
    }

    fn partition(&mut self, a: usize, b: usize, cut: bool) {
        self.cut[a][b] = cut;
        self.cut[b][a] = cut;
    }

    /// Runs every event up to and including `end`, then sets the clock to it.
    fn run_until(&mut self, end: Instant) {
        loop {
            let next_frame = self.queue.peek().map(|Reverse(f)| f.at);
            let next_timer = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.alive)
                .filter_map(|(i, n)| n.router.poll_timeout().map(|t| (t, i)))
                .min();
            match (next_frame, next_timer) {
                (Some(f), timer) if f <= end && timer.is_none_or(|(t, _)| f <= t) => {
                    let Some(Reverse(frame)) = self.queue.pop() else {
                        unreachable!()
                    };
                    self.now = frame.at;
                    self.deliver(frame);
                }
                (_, Some((t, i))) if t <= end => {
                    self.now = t;
                    self.nodes[i].router.handle_timeout(t);
                    self.process_actions(i);
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn deliver(&mut self, frame: InFlight) {
        let node = &mut self.nodes[frame.to];
        if !node.alive {
            return;
        }
        let meta = RxMeta {
            src: addr(frame.from),
            dst: GROUP,
            ttl: 255,
        };
        let (advert, _) = Advert::parse(&meta, &frame.bytes).unwrap();
        let rx = RxAdvert {
            src: meta.src,
            priority: advert.priority,
            interval: advert.interval,
            version: advert.version,
        };
        node.router.handle_advert(frame.at, &rx);
        self.delivered
            .push((frame.at, frame.from, frame.to, advert.priority));
        self.process_actions(frame.to);
    }

    fn process_actions(&mut self, i: usize) {
        let now = self.now;
        while let Some(action) = self.nodes[i].router.poll_action() {
            match action {
                Action::SendAdvert { priority } => self.send(i, priority),
                Action::Announce => {
                    self.nodes[i].announced.push(now);
                    self.client = Some(i);
                }
                Action::AddVips => self.nodes[i].holds_vips = true,
                Action::RemoveVips => self.nodes[i].holds_vips = false,
                Action::StateChange { from, to } => self.nodes[i].transitions.push((now, from, to)),
            }
        }
    }

    fn send(&mut self, from: usize, priority: u8) {
        let now = self.now;
        let cfg = self.nodes[from].router.config().clone();
        let advert = Advert {
            version: cfg.version,
            vrid: cfg.vrid,
            priority,
            interval: cfg.advert_interval,
            addrs: vec![VIP],
        };
        let bytes = advert
            .emit(cfg.primary_addr, GROUP, V3Checksum::Rfc5798)
            .unwrap();
        self.nodes[from].sent.push((now, priority));
        for to in 0..self.nodes.len() {
            if to == from || self.cut[from][to] {
                continue;
            }
            if self.random_per_mille() < self.loss_per_mille {
                self.dropped += 1;
                continue;
            }
            self.seq += 1;
            let frame = InFlight {
                at: now + self.delay,
                seq: self.seq,
                to,
                from,
                bytes: bytes.clone(),
            };
            self.queue.push(Reverse(frame));
        }
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].alive && self.nodes[i].router.state() == State::Master)
            .collect()
    }

    fn vip_holders(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.alive && n.holds_vips)
            .count()
    }

    fn state(&self, i: usize) -> State {
        self.nodes[i].router.state()
    }

    /// When node `i` last became Master.
    fn became_master_at(&self, i: usize) -> Option<Instant> {
        self.nodes[i]
            .transitions
            .iter()
            .rev()
            .find(|(_, _, to)| *to == State::Master)
            .map(|(t, _, _)| *t)
    }

    fn last_sent(&self, i: usize) -> Instant {
        self.nodes[i].sent.last().map(|(t, _)| *t).unwrap()
    }

    /// Cuts every pair of routers in different `groups` apart (or joins them
    /// again with `cut` false).
    fn partition_groups(&mut self, groups: &[&[usize]], cut: bool) {
        for (gi, g) in groups.iter().enumerate() {
            for h in &groups[gi + 1..] {
                for &a in *g {
                    for &b in *h {
                        self.partition(a, b, cut);
                    }
                }
            }
        }
    }

    /// Transitions of node `i` after `t`.
    fn transitions_after(&self, i: usize, t: Instant) -> usize {
        self.nodes[i]
            .transitions
            .iter()
            .filter(|(at, _, _)| *at > t)
            .count()
    }

    /// The first advert delivered after `t`: (from, to).
    fn first_delivery_after(&self, t: Instant) -> Option<(usize, usize)> {
        self.delivered
            .iter()
            .find(|(at, ..)| *at > t)
            .map(|&(_, from, to, _)| (from, to))
    }
}

fn at(ms: u64) -> Instant {
    Instant::from_nanos(ms * 1_000_000)
}

const SEC: Duration = Duration::from_secs(1);

/// Three routers started at different times converge on exactly one
/// master, the highest priority; the others follow it and hold no VIPs.
#[test]
fn three_routers_converge_to_one_master() {
    for version in [Version::V2, Version::V3] {
        let mut lan = Lan::new(
            version,
            &[(100, SEC), (200, SEC), (150, SEC)],
            Duration::from_millis(1),
        );
        lan.start(0, at(0));
        lan.start(1, at(300));
        lan.start(2, at(700));
        lan.run_until(at(30_000));
        assert_eq!(lan.masters(), vec![1], "{version:?}");
        assert_eq!(lan.vip_holders(), 1);
        for i in [0, 2] {
            assert_eq!(lan.state(i), State::Backup);
            assert_eq!(lan.nodes[i].router.current_master(), Some(addr(1)));
        }
    }
}

/// With 10 % loss and 5 ms delay, the routers still end with one master,
/// the highest priority (deterministic PRNG, so this run is reproducible).
#[test]
fn lossy_lan_still_converges() {
    let mut lan = Lan::new(
        Version::V3,
        &[
            (100, Duration::from_millis(100)),
            (200, Duration::from_millis(100)),
            (150, Duration::from_millis(100)),
        ],
        Duration::from_millis(5),
    );
    lan.loss_per_mille = 100;
    for i in 0..3 {
        lan.start(i, at(0));
    }
    lan.run_until(at(60_000));
    // A backup may have seized the role briefly after three lost adverts;
    // the master reclaims it at once, so only one remains.
    assert_eq!(lan.masters(), vec![1]);
    assert_eq!(lan.vip_holders(), 1);
    let lost = lan.nodes[0].transitions.len() + lan.nodes[2].transitions.len();
    assert!(
        lost >= 2,
        "the loss was applied: backups saw at least their startup transitions"
    );
}

/// RFC 9568 §6.4.2: when the master goes silent, the best backup takes over
/// exactly Master_Down_Interval after the last advert it received
/// (3 * 1 s + (256 - 150) / 256 s = 3.4140625 s), the other stays Backup.
#[test]
fn silent_master_fails_over_at_master_down_interval() {
    let delay = Duration::from_micros(700);
    let mut lan = Lan::new(Version::V3, &[(200, SEC), (150, SEC), (100, SEC)], delay);
    for i in 0..3 {
        lan.start(i, at(0));
    }
    lan.run_until(at(10_000));
    assert_eq!(lan.masters(), vec![0]);
    lan.kill(0);
    let last_rx = lan.last_sent(0) + delay;
    lan.run_until(at(20_000));
    assert_eq!(lan.masters(), vec![1]);
    assert_eq!(
        lan.became_master_at(1),
        Some(last_rx + Duration::from_nanos(3_414_062_500))
    );
    assert_eq!(lan.state(2), State::Backup);
    assert_eq!(lan.nodes[2].router.current_master(), Some(addr(1)));
}

/// Same at the fastest v3 interval, where Skew_Time is below a millisecond
/// (priority 254, 10 ms: 30 ms + 78.125 us).
#[test]
fn fast_failover_keeps_sub_millisecond_skew() {
    let ten_ms = Duration::from_millis(10);
    let mut lan = Lan::new(Version::V3, &[(255, ten_ms), (254, ten_ms)], Duration::ZERO);
    lan.start(0, at(0));
    lan.start(1, at(0));
    lan.run_until(at(1_000));
    assert_eq!(lan.masters(), vec![0]);
    lan.kill(0);
    let last_rx = lan.last_sent(0);
    lan.run_until(at(2_000));
    assert_eq!(
        lan.became_master_at(1),
        Some(last_rx + Duration::from_nanos(30_078_125))
    );
}

/// v2 (RFC 3768 §6.1): Master_Down_Interval = 3 s + (256 - 100) / 256 s.
#[test]
fn v2_failover_at_master_down_interval() {
    let mut lan = Lan::new(
        Version::V2,
        &[(150, SEC), (100, SEC)],
        Duration::from_millis(2),
    );
    lan.start(0, at(0));
    lan.start(1, at(0));
    lan.run_until(at(8_000));
    lan.kill(0);
    let last_rx = lan.last_sent(0) + Duration::from_millis(2);
    lan.run_until(at(20_000));
    assert_eq!(
        lan.became_master_at(1),
        Some(last_rx + Duration::from_nanos(3_609_375_000))
    );
}

/// RFC 9568 §6.4.3 + §6.4.2: a master that shuts down sends priority 0;
/// the best backup takes over Skew_Time after receiving it
/// ((256 - 150) / 256 s = 0.4140625 s), the VIPs move with it.
#[test]
fn graceful_shutdown_hands_over_at_skew_time() {
    let delay = Duration::from_millis(1);
    let mut lan = Lan::new(Version::V3, &[(200, SEC), (150, SEC), (100, SEC)], delay);
    for i in 0..3 {
        lan.start(i, at(0));
    }
    lan.run_until(at(10_250));
    lan.shutdown(0);
    assert_eq!(lan.nodes[0].sent.last(), Some(&(at(10_250), 0)));
    assert!(!lan.nodes[0].holds_vips);
    lan.run_until(at(20_000));
    assert_eq!(
        lan.became_master_at(1),
        Some(at(10_250) + delay + Duration::from_nanos(414_062_500))
    );
    assert_eq!(lan.masters(), vec![1]);
    assert_eq!(lan.state(2), State::Backup);
    assert_eq!(lan.vip_holders(), 1);
}

/// A partition makes both routers master (split brain); once healed, the
/// lower one yields and the remaining master, having heard a lower-priority
/// advert, asserts itself and re-announces the VIPs (RFC 9568 §6.4.3).
#[test]
fn healed_split_brain_ends_with_one_master_that_reannounces() {
    let mut lan = Lan::new(
        Version::V3,
        &[(200, SEC), (150, SEC)],
        Duration::from_millis(1),
    );
    lan.start(0, at(0));
    lan.start(1, at(400));
    lan.run_until(at(10_000));
    assert_eq!(lan.masters(), vec![0]);
    lan.partition(0, 1, true);
    lan.run_until(at(20_000));
    assert_eq!(lan.masters(), vec![0, 1], "split brain");
    assert_eq!(lan.vip_holders(), 2);
    // Heal right after router 0's advert, so router 1's reaches it first.
    let next0 = lan.nodes[0].router.poll_timeout().unwrap();
    lan.run_until(next0);
    let healed = lan.now;
    lan.partition(0, 1, false);
    lan.run_until(healed + SEC * 5);
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(lan.state(1), State::Backup);
    assert_eq!(lan.vip_holders(), 1);
    assert!(
        lan.nodes[0].announced.iter().any(|t| *t > healed),
        "winner re-announced"
    );
    assert!(
        lan.nodes[0]
            .sent
            .iter()
            .any(|(t, _)| *t > healed && *t < next0 + SEC),
        "asserted at once"
    );
}

/// Partitions the routers of `lan` into `groups` at 10 s (all started and
/// settled by then), waits until 20 s, and heals at 20 s + `offset`;
/// returns the heal time.
fn split_and_heal(lan: &mut Lan, groups: &[&[usize]], offset: Duration) -> Instant {
    lan.run_until(at(10_000));
    lan.partition_groups(groups, true);
    lan.run_until(at(20_000));
    assert_eq!(
        lan.masters().len(),
        groups.len(),
        "split brain: one master per side"
    );
    let healed = at(20_000) + offset;
    lan.run_until(healed);
    lan.partition_groups(groups, false);
    healed
}

/// After a split brain heals, clients reach the surviving master within one
/// advert interval whichever advert crosses first: heal at 100 points
/// across an advert interval, for v2 and v3, with no, short and long link
/// delay, for a higher priority and for an equal one (the greater address
/// wins). When the winner's advert reaches the loser first, the loser
/// yields, and its last advert (router.rs, "Not in the RFCs") makes the
/// winner re-announce; the RFC alone leaves the client on the loser's MAC.
/// Afterwards nothing flaps: the loser changed state once, the winner not.
#[test]
fn healed_split_brain_moves_clients_to_the_winner_in_either_order() {
    // (priorities of routers 0 and 1, winner); the winner starts first.
    let pairs = [([200, 150], 0), ([150, 150], 1)];
    for version in [Version::V2, Version::V3] {
        for delay in [
            Duration::ZERO,
            Duration::from_millis(1),
            Duration::from_millis(300),
        ] {
            for (prio, win) in pairs {
                let lose = 1 - win;
                let mut orders = [0u32; 2];
                for step in 0..100u32 {
                    let mut lan = Lan::new(version, &[(prio[0], SEC), (prio[1], SEC)], delay);
                    lan.start(win, at(0));
                    lan.start(lose, at(400));
                    lan.run_until(at(10_000));
                    assert_eq!(lan.client, Some(win));
                    let healed = split_and_heal(&mut lan, &[&[0], &[1]], SEC * step / 100);
                    assert_eq!(lan.client, Some(lose), "the loser announced last");
                    let case =
                        format!("{version:?}, {prio:?}, delay {delay:?}, heal at {healed:?}");
                    lan.run_until(healed + SEC + delay * 2);
                    let (from, _) = lan.first_delivery_after(healed).unwrap();
                    orders[from] += 1;
                    assert_eq!(lan.masters(), vec![win], "{case}");
                    assert_eq!(lan.vip_holders(), 1, "{case}");
                    assert_eq!(lan.client, Some(win), "client on the winner: {case}");
                    lan.run_until(healed + SEC * 20);
                    assert_eq!(lan.masters(), vec![win], "{case}");
                    assert_eq!(lan.client, Some(win), "{case}");
                    assert_eq!(lan.transitions_after(win, healed), 0, "{case}");
                    assert_eq!(lan.transitions_after(lose, healed), 1, "{case}");
                }
                assert!(
                    orders.iter().all(|n| *n > 0),
                    "both crossing orders covered ({version:?}, {prio:?}, {delay:?}): {orders:?}"
                );
            }
        }
    }
}

/// Three routers, split brains in both shapes, healed at 100 points across
/// an interval: the winner alone is master and holds the client within one
/// interval; a backup that followed the loser never takes over (the loser's
/// last advert only restarts its Master_Down_Timer); each loser changes
/// state once, the winner never; and no advert storm follows.
#[test]
fn three_routers_heal_without_false_takeover_or_flapping() {
    let delay = Duration::from_millis(1);
    // (priorities, partition): the winner alone against a master and its
    // backup; all three apart, the middle priority started last.
    type Routers<'a> = &'a [(u8, Duration)];
    type Groups<'a> = &'a [&'a [usize]];
    let cases: [(Routers, Groups); 3] = [
        (&[(200, SEC), (150, SEC), (100, SEC)], &[&[0], &[1, 2]]),
        (&[(200, SEC), (100, SEC), (150, SEC)], &[&[0], &[1], &[2]]),
        (&[(200, SEC), (150, SEC), (100, SEC)], &[&[0, 2], &[1]]),
    ];
    for (routers, groups) in cases {
        for step in 0..100u32 {
            let mut lan = Lan::new(Version::V3, routers, delay);
            for i in 0..3 {
                lan.start(i, at(300 * i as u64));
            }
            lan.run_until(at(10_000));
            assert_eq!(lan.masters(), vec![0]);
            let before: Vec<usize> = (0..3).map(|i| lan.nodes[i].transitions.len()).collect();
            let healed = split_and_heal(&mut lan, groups, SEC * step / 100);
            let case = format!("{groups:?}, heal at {healed:?}");
            // Backups that stayed with a master during the split did not move.
            for g in groups {
                for &i in &g[1..] {
                    assert_eq!(lan.nodes[i].transitions.len(), before[i], "{case}");
                }
            }
            lan.run_until(healed + SEC + delay * 2);
            assert_eq!(lan.masters(), vec![0], "{case}");
            assert_eq!(lan.vip_holders(), 1, "{case}");
            assert_eq!(lan.client, Some(0), "client on the winner: {case}");
            lan.run_until(healed + SEC * 20);
            assert_eq!(lan.masters(), vec![0], "{case}");
            assert_eq!(lan.client, Some(0), "{case}");
            assert_eq!(lan.transitions_after(0, healed), 0, "winner: {case}");
            for g in &groups[1..] {
                assert_eq!(lan.transitions_after(g[0], healed), 1, "loser: {case}");
                for &i in &g[1..] {
                    assert_eq!(lan.transitions_after(i, healed), 0, "backup: {case}");
                }
            }
            // No storm: each loser sent at most its regular advert and its
            // last one, all within the first interval; the winner answered
            // each once and otherwise kept its cadence.
            let settled = healed + SEC + delay * 2;
            let heard: Vec<Instant> = lan
                .delivered
                .iter()
                .filter(|(t, _, to, _)| *t > healed && *to == 0)
                .map(|(t, ..)| *t)
                .collect();
            assert!(heard.iter().all(|t| *t <= settled), "{case}: {heard:?}");
            assert!(heard.len() <= 2 * (groups.len() - 1), "{case}: {heard:?}");
            let sent = lan.nodes[0]
                .sent
                .iter()
                .filter(|(t, _)| *t > healed)
                .count();
            assert!(sent <= 20 + heard.len(), "{case}: {sent} adverts");
        }
    }
}
