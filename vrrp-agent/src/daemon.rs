//! The daemon: a thin tokio shell around the protocol core.
//!
//! One task owns everything that decides (the [`VirtualRouter`]s and the
//! data plane) and runs one loop:
//!
//! ```text
//!   data-plane events ──► handle_advert ─┐
//!   Master_Down / Adver timers ─► handle_timeout ─┼─► poll_action ─► adverts, GARP/NA,
//!   netlink link/address changes ─► handle_interface ┘                 VIPs, notify
//!   signals (TERM/INT stop, HUP reload), status requests
//! ```
//!
//! Steady state costs little: the XDP program only wakes us when an advert
//! changes something; at a Master_Down deadline we first ask the kernel for
//! the newest advert of the VRID (`LAST_SEEN`) and hand it to the core, so
//! the election is exactly what it would be had every advert been delivered.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, anyhow, bail};
use futures::{FutureExt as _, StreamExt as _};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tracing::{debug, error, info, warn};
use vrrp_common::{DropReason, Stat, VridKey};

use crate::{
    config::{Config, Instance, VirtualIp, XdpMode},
    control::{self, ControlSocket, Histogram, InstanceStatus, Status, XdpStatus},
    dataplane::{self, AddrFamily, DataPlane, DataPlaneConfig, Event, EventStream, VridEntry},
    metrics,
    notify::Notifier,
    proto::{Action, Advert, Family, Instant, RxAdvert, State, Version, VirtualRouter},
    timer::DeadlineTimer,
    tx::{self, AdvertSender, FrameSender},
    vips::{self, LinkInfo, NetEvent, NetEvents, Netlink},
};

/// Options of `vrrp-agent run` beyond the config file.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The config file (re-read on SIGHUP).
    pub config_path: PathBuf,
    /// `--xdp`, overriding `global.xdp`.
    pub xdp_override: Option<XdpMode>,
}

impl RunOptions {
    /// The XDP mode in force: the command line wins over the config.
    pub fn xdp_mode(&self, cfg: &Config) -> XdpMode {
        self.xdp_override.unwrap_or(cfg.global.xdp)
    }
}

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(cfg: Config, opts: RunOptions) -> anyhow::Result<()> {
    // Handlers first: a SIGHUP during start-up must not kill the daemon
    // (the default action), and a SIGTERM must still stop it gracefully.
    let signals = Signals {
        term: signal(SignalKind::terminate())?,
        int: signal(SignalKind::interrupt())?,
        hup: signal(SignalKind::hangup())?,
    };
    let xdp = opts.xdp_mode(&cfg);
    preflight(&cfg, xdp).await?;
    let mut daemon = Daemon::start(cfg, opts).await?;
    let result = daemon.run(signals).await;
    daemon.stop().await;
    result
}

/// The signals the daemon acts on.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

/// A request from the control socket or the metrics endpoint.
type StatusRequest = oneshot::Sender<Status>;

/// One `[[instance]]` at run time.
struct Running {
    cfg: Instance,
    ifindex: u32,
    mac: [u8; 6],
    /// IPv6 link-local source for unsolicited NAs.
    ll_src: Option<Ipv6Addr>,
    key: VridKey,
    router: VirtualRouter,
    sender: AdvertSender,
    /// The newest advert handed to the core, and when it was received.
    delivered: Delivered,
    /// What the data plane was last told about `wants_every_advert`.
    deliver_all: bool,
    announce: Option<JoinHandle<()>>,
    counters: TxCounters,
    prio0_rx: u64,
    transitions: u64,
    last_transition_unix_ms: u64,
}

/// The newest advert handed to the core of one instance.
///
/// The XDP program suppresses adverts identical (source, priority,
/// interval) to their predecessor and keeps only the newest in `LAST_SEEN`.
/// When a run A1..An of identical adverts ends with a different advert B,
/// B's event overwrites An in `LAST_SEEN`, so the event carries An's receive
/// time (`Event::prev_ts`). If the core has not seen that time, An is handed
/// to it before B, with the content of the last advert delivered (A1's,
/// identical by construction): otherwise a preempting Backup that discards
/// B (lower priority, RFC 9568 §6.4.2) would keep Master_Down_Timer running
/// from A1 and take over up to a Master_Down_Interval too early.
#[derive(Clone, Copy, Debug, Default)]
struct Delivered {
    /// Receive time of the newest advert handed to the core.
    ts: Instant,
    /// Its content; `None` before the first.
    advert: Option<RxAdvert>,
}

impl Delivered {
    /// Hands one advert to the core and remembers it.
    fn deliver(&mut self, router: &mut VirtualRouter, ts: Instant, adv: RxAdvert) {
        if ts >= self.ts {
            self.ts = ts;
            self.advert = Some(adv);
        }
        router.handle_advert(ts, &adv);
    }

    /// Hands a data-plane event to the core: first the suppressed advert it
    /// replaced, if the core never saw it, then the event itself. Returns
    /// the advert re-delivered for the suppressed one, if any.
    fn deliver_event(
        &mut self,
        router: &mut VirtualRouter,
        ev: &Event,
        adv: RxAdvert,
    ) -> Option<(Instant, RxAdvert)> {
        let missed = match (ev.prev_ts, self.advert) {
            (Some(prev), Some(last)) if prev > self.ts && prev <= ev.ts => {
                self.deliver(router, prev, last);
                Some((prev, last))
            }
            _ => None,
        };
        self.deliver(router, ev.ts, adv);
        missed
    }
}

/// Counters written by announcement tasks too.
#[derive(Clone, Default)]
struct TxCounters {
    adverts: Arc<AtomicU64>,
    prio0: Arc<AtomicU64>,
    garp: Arc<AtomicU64>,
}

struct Daemon {
    cfg: Config,
    opts: RunOptions,
    netlink: Netlink,
    net_events: NetEvents,
    dataplane: DataPlane,
    events: EventStream,
    instances: Vec<Running>,
    frames: HashMap<u32, Arc<FrameSender>>,
    links: HashMap<u32, bool>,
    notifier: Option<Notifier>,
    status_rx: mpsc::Receiver<StatusRequest>,
    servers: Vec<JoinHandle<()>>,
    /// The earliest deadline of any instance (sub-millisecond precise).
    timer: DeadlineTimer,
}

impl Daemon {
    async fn start(cfg: Config, opts: RunOptions) -> anyhow::Result<Daemon> {
        let netlink = Netlink::new()?;
        // Subscribe before looking anything up so no change slips between.
        let net_events = vips::subscribe()?;

        let mut resolved = Vec::new();
        for inst in &cfg.instances {
            resolved.push(resolve(&netlink, inst).await?);
        }
        // A crash may have left our VIPs behind: remove them before we
        // announce anything, so no two routers answer for them.
        for (inst, r) in cfg.instances.iter().zip(&resolved) {
            remove_stale_vips(&netlink, inst, r.link.index).await;
        }

        let xdp = opts.xdp_mode(&cfg);
        let dp_cfg = dataplane_config(
            cfg.instances
                .iter()
                .zip(resolved.iter().map(|r| r.link.index)),
            &HashMap::new(),
        );
        let mut dataplane = DataPlane::open(&dp_cfg, xdp).context("data plane")?;
        let events = dataplane.events()?;
        info!(mode = %dataplane.mode(), "data plane ready");

        let (status_tx, status_rx) = mpsc::channel::<StatusRequest>(16);
        let mut servers = Vec::new();
        let sock = ControlSocket::bind(&cfg.global.control_socket).await?;
        let tx = status_tx.clone();
        servers.push(tokio::spawn(async move {
            sock.serve(move || ask(tx.clone())).await
        }));
        if let Some(addr) = cfg.global.metrics_listen {
            let listener = metrics::bind(addr)
                .await
                .with_context(|| format!("metrics_listen {addr}"))?;
            let tx = status_tx.clone();
            servers.push(tokio::spawn(metrics::serve(listener, move || {
                ask(tx.clone())
            })));
            info!(%addr, "metrics endpoint listening");
        }

        let mut daemon = Daemon {
            notifier: Some(Notifier::new(cfg.global.notify_timeout)),
            cfg,
            opts,
            netlink,
            net_events,
            dataplane,
            events,
            instances: Vec::new(),
            frames: HashMap::new(),
            links: HashMap::new(),
            status_rx,
            timer: DeadlineTimer::new().context("deadline timer")?,
            servers,
        };
        let now = dataplane::now();
        let instances = daemon.cfg.instances.clone();
        for (inst, r) in instances.into_iter().zip(resolved) {
            daemon.add_instance(inst, r, now)?;
        }
        for i in 0..daemon.instances.len() {
            daemon.instances[i].router.handle_startup(now);
            daemon.drive(i).await;
        }
        Ok(daemon)
    }

    fn add_instance(&mut self, cfg: Instance, r: Resolved, now: Instant) -> anyhow::Result<()> {
        let sender = AdvertSender::new(&cfg.interface, r.link.index, r.source)?;
        sender
            .set_dscp(self.cfg.global.advert_dscp)
            .context("advert_dscp")?;
        if let std::collections::hash_map::Entry::Vacant(e) = self.frames.entry(r.link.index) {
            e.insert(Arc::new(FrameSender::new(&cfg.interface, r.link.index)?));
        }
        self.links.insert(r.link.index, r.link.is_up());
        let mut router = VirtualRouter::new(cfg.router_config(r.source));
        if !r.link.is_up() {
            router.handle_interface(now, false);
        }
        let key = VridKey::new(r.link.index, cfg.vrid, AddrFamily::from(cfg.family).tag());
        info!(instance = %cfg.name, interface = %cfg.interface, vrid = cfg.vrid,
              source = %r.source, "instance configured");
        self.instances.push(Running {
            ifindex: r.link.index,
            mac: r.link.mac.unwrap_or_default(),
            ll_src: r.ll_src,
            key,
            router,
            sender,
            delivered: Delivered::default(),
            deliver_all: false,
            announce: None,
            counters: TxCounters::default(),
            prio0_rx: 0,
            transitions: 0,
            last_transition_unix_ms: 0,
            cfg,
        });
        Ok(())
    }

    /// The main loop; returns on SIGTERM/SIGINT.
    async fn run(&mut self, mut signals: Signals) -> anyhow::Result<()> {
        loop {
            let next = self.next_deadline();
            self.timer.arm(next)?;
            tokio::select! {
                biased;
                _ = signals.term.recv() => { info!("SIGTERM: stopping"); return Ok(()); }
                _ = signals.int.recv() => { info!("SIGINT: stopping"); return Ok(()); }
                _ = signals.hup.recv() => self.reload().await,
                ev = self.events.recv() => match ev {
                    Ok(ev) => self.on_advert(ev).await,
                    Err(e) => { error!(error = %e, "data plane event stream failed"); bail!(e); }
                },
                r = self.timer.expired() => {
                    r.context("deadline timer")?;
                    self.on_timers().await;
                }
                nev = self.net_events.next() => match nev {
                    Some(nev) => self.on_net_event(nev).await,
                    None => {
                        warn!("netlink event socket closed; resubscribing");
                        self.net_events = vips::subscribe()?;
                        self.resync_links().await;
                    }
                },
                Some(req) = self.status_rx.recv() => { let _ = req.send(self.status()); }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.instances
            .iter()
            .filter_map(|i| i.router.poll_timeout())
            .min()
    }

    /// An advert from the data plane.
    async fn on_advert(&mut self, ev: Event) {
        let Some(i) = self.instances.iter().position(|r| r.key == ev.key()) else {
            debug!(
                vrid = ev.vrid,
                ifindex = ev.ifindex,
                "advert for an unconfigured VRID"
            );
            return;
        };
        let Some(adv) = ev.rx_advert() else { return };
        let inst = &mut self.instances[i];
        if ev.priority == 0 {
            inst.prio0_rx += 1;
        }
        inst.delivered.deliver_event(&mut inst.router, &ev, adv);
        self.drive(i).await;
    }

    /// Fires every due timer. Before a Backup acts on Master_Down, the
    /// newest advert the kernel saw is delivered (the data plane suppresses
    /// adverts that change nothing).
    async fn on_timers(&mut self) {
        self.drain_events().await;
        let now = dataplane::now();
        // Backups whose Master_Down deadline is near read LAST_SEEN now
        // too: usually the master is alive and the deadline moves on, so
        // one wake-up serves many instances. Nothing fires early: the core
        // only acts on deadlines <= now, and a deadline that stays is
        // checked again, exactly, when it comes.
        let horizon = now + CATCH_UP_AHEAD;
        for i in 0..self.instances.len() {
            let Some(deadline) = self.instances[i].router.poll_timeout() else {
                continue;
            };
            let backup = self.instances[i].router.state() == State::Backup;
            if deadline > now && !(backup && deadline <= horizon) {
                continue;
            }
            if backup {
                self.catch_up(i);
            }
            self.instances[i].router.handle_timeout(now);
            self.drive(i).await;
        }
    }

    /// Handles events already waiting in the ring buffer, without blocking.
    async fn drain_events(&mut self) {
        while let Some(ev) = self.events.recv().now_or_never() {
            match ev {
                Ok(ev) => self.on_advert(ev).await,
                Err(e) => {
                    error!(error = %e, "data plane event stream failed");
                    return;
                }
            }
        }
    }

    /// Delivers the kernel's newest advert for instance `i` if the core has
    /// not seen it.
    fn catch_up(&mut self, i: usize) {
        let inst = &mut self.instances[i];
        let ls = match self.dataplane.last_seen(inst.key) {
            Ok(Some(ls)) => ls,
            Ok(None) => return,
            Err(e) => {
                warn!(instance = %inst.cfg.name, error = %e, "reading LAST_SEEN failed");
                return;
            }
        };
        if ls.ts <= inst.delivered.ts {
            return;
        }
        let Some(adv) = ls.rx_advert() else {
            return;
        };
        inst.delivered.deliver(&mut inst.router, ls.ts, adv);
    }

    /// Carries out everything the core of instance `i` asks for.
    ///
    /// The advert goes first: peers and the takeover clock care about the
    /// first advert on the wire. On a takeover each VIP is announced as soon
    /// as netlink has added it — never before, or clients would move to a
    /// host that drops their packets — and the remaining GARP/NA rounds run
    /// in the background.
    async fn drive(&mut self, i: usize) {
        let mut actions = Vec::new();
        while let Some(action) = self.instances[i].router.poll_action() {
            actions.push(action);
        }
        // Reorder only within runs that end at a RemoveVips, so a resign
        // followed by a restart never adds VIPs before removing them.
        for run in actions.split_inclusive_mut(|a| *a == Action::RemoveVips) {
            run.sort_by_key(|a| match a {
                Action::SendAdvert { .. } => 0,
                Action::StateChange { .. } => 1,
                Action::AddVips => 2,
                Action::Announce | Action::RemoveVips => 3,
            });
        }
        let mut first_round_sent = false;
        for action in actions {
            match action {
                Action::SendAdvert { priority } => self.send_advert(i, priority).await,
                Action::AddVips => {
                    self.add_vips(i).await;
                    first_round_sent = true;
                }
                Action::Announce => self.announce(i, std::mem::take(&mut first_round_sent)),
                Action::RemoveVips => self.remove_vips(i).await,
                Action::StateChange { from, to } => self.state_changed(i, from, to),
            }
        }
        let wants = self.instances[i].router.wants_every_advert();
        if wants != self.instances[i].deliver_all {
            let key = self.instances[i].key;
            match self.dataplane.set_deliver_all(key, wants) {
                Ok(()) => self.instances[i].deliver_all = wants,
                Err(e) => warn!(error = %e, "updating the data plane failed"),
            }
            // An advert identical to the previous one may have been
            // suppressed between our last look and the flag change.
            if wants && self.instances[i].router.state() == State::Master {
                self.catch_up(i);
                Box::pin(self.drive(i)).await;
            }
        }
    }

    async fn send_advert(&mut self, i: usize, priority: u8) {
        let inst = &self.instances[i];
        let advert = Advert {
            version: inst.cfg.version,
            vrid: inst.cfg.vrid,
            priority,
            interval: inst.cfg.advert_interval,
            addrs: inst.cfg.virtual_ips.iter().map(|v| v.addr).collect(),
        };
        let src = inst.sender.src();
        for dst in inst.cfg.advert_destinations() {
            let msg = match advert.emit(src, dst, inst.cfg.v3_checksum) {
                Ok(m) => m,
                Err(e) => {
                    error!(instance = %inst.cfg.name, error = %e, "cannot build advert");
                    return;
                }
            };
            match inst.sender.send(dst, &msg).await {
                Ok(()) => {
                    inst.counters.adverts.fetch_add(1, Ordering::Relaxed);
                    if priority == 0 {
                        inst.counters.prio0.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => warn!(instance = %inst.cfg.name, error = %e, "advert not sent"),
            }
        }
    }

    /// Starts the gratuitous ARP / unsolicited NA burst in the background
    /// (it spans `garp_repeat * garp_interval`; the election goes on).
    /// `first_round_sent`: [`Daemon::add_vips`] already sent round one.
    fn announce(&mut self, i: usize, first_round_sent: bool) {
        let inst = &mut self.instances[i];
        let Some(frames) = self.frames.get(&inst.ifindex).cloned() else {
            return;
        };
        if let Some(old) = inst.announce.take() {
            old.abort();
        }
        let (mac, ll, vips) = (inst.mac, inst.ll_src, inst.cfg.virtual_ips.clone());
        let (repeat, interval) = (inst.cfg.garp_repeat, inst.cfg.garp_interval);
        let first = u32::from(first_round_sent);
        let garp = inst.counters.garp.clone();
        let name = inst.cfg.name.clone();
        inst.announce = Some(tokio::spawn(async move {
            for round in first..repeat {
                if round > 0 {
                    tokio::time::sleep(interval).await;
                }
                match frames.announce(mac, ll, &vips, 1, Duration::ZERO).await {
                    Ok(n) => {
                        garp.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => {
                        warn!(instance = %name, error = %e, "announcement not sent");
                        return;
                    }
                }
            }
        }));
    }

    /// Adds the VIPs (requests pipelined on the netlink socket) and sends
    /// each one's first gratuitous ARP / unsolicited NA as soon as it exists.
    async fn add_vips(&mut self, i: usize) {
        let inst = &self.instances[i];
        let frames = self.frames.get(&inst.ifindex).cloned();
        let netlink = &self.netlink;
        let ifindex = inst.ifindex;
        let mut adds: futures::stream::FuturesOrdered<_> = inst
            .cfg
            .virtual_ips
            .iter()
            .map(|v| async move { (v, netlink.add_vip(ifindex, v).await) })
            .collect();
        let mut sent = 0;
        while let Some((vip, res)) = adds.next().await {
            if let Err(e) = res {
                error!(instance = %inst.cfg.name, %vip, error = %e, "cannot add virtual IP");
                continue;
            }
            let Some(frames) = &frames else { continue };
            for frame in tx::announce_frames(inst.mac, inst.ll_src, std::slice::from_ref(vip)) {
                match frames.send(&frame).await {
                    Ok(()) => sent += 1,
                    Err(e) => {
                        warn!(instance = %inst.cfg.name, %vip, error = %e, "announcement not sent")
                    }
                }
            }
        }
        inst.counters.garp.fetch_add(sent, Ordering::Relaxed);
    }

    async fn remove_vips(&mut self, i: usize) {
        let inst = &mut self.instances[i];
        if let Some(t) = inst.announce.take() {
            t.abort();
        }
        let inst = &self.instances[i];
        let dels = inst
            .cfg
            .virtual_ips
            .iter()
            .map(|v| self.netlink.del_vip(inst.ifindex, v));
        for (vip, res) in inst
            .cfg
            .virtual_ips
            .iter()
            .zip(futures::future::join_all(dels).await)
        {
            if let Err(e) = res {
                error!(instance = %inst.cfg.name, %vip, error = %e, "cannot remove virtual IP");
            }
        }
    }

    fn state_changed(&mut self, i: usize, from: State, to: State) {
        let inst = &mut self.instances[i];
        inst.transitions += 1;
        inst.last_transition_unix_ms = unix_ms();
        let master = inst.router.current_master();
        info!(instance = %inst.cfg.name, %from, %to, priority = inst.router.priority(),
              master = ?master, "state change");
        if let Err(e) = self
            .dataplane
            .set_local_priority(inst.key, inst.router.priority())
        {
            debug!(error = %e, "updating local priority in the data plane failed");
        }
        if let (Some(script), Some(notifier)) = (&inst.cfg.notify, &self.notifier) {
            notifier.notify(
                script,
                &inst.cfg.name,
                &to.to_string(),
                inst.router.priority(),
            );
        }
    }

    async fn on_net_event(&mut self, ev: NetEvent) {
        match ev {
            NetEvent::Link(link) => self.link_changed(link.index, link.is_up()).await,
            NetEvent::LinkRemoved { index, .. } => self.link_changed(index, false).await,
            NetEvent::AddrRemoved(addr) => {
                // Ours are only removed after the core left MASTER, so a VIP
                // disappearing from a MASTER was someone else's doing.
                for i in 0..self.instances.len() {
                    let inst = &self.instances[i];
                    if inst.ifindex != addr.ifindex || inst.router.state() != State::Master {
                        continue;
                    }
                    if let Some(vip) = inst.cfg.virtual_ips.iter().find(|v| v.addr == addr.addr) {
                        warn!(instance = %inst.cfg.name, %vip,
                              "virtual IP removed by someone else while MASTER; restoring it");
                        if let Err(e) = self.netlink.add_vip(inst.ifindex, vip).await {
                            error!(instance = %inst.cfg.name, %vip, error = %e, "cannot restore virtual IP");
                        }
                    }
                }
            }
            NetEvent::AddrAdded(_) => {}
        }
    }

    async fn link_changed(&mut self, ifindex: u32, up: bool) {
        let Some(was) = self.links.get_mut(&ifindex) else {
            return;
        };
        if *was == up {
            return;
        }
        *was = up;
        info!(ifindex, up, "interface state changed");
        let now = dataplane::now();
        for i in 0..self.instances.len() {
            if self.instances[i].ifindex == ifindex {
                self.instances[i].router.handle_interface(now, up);
                self.drive(i).await;
            }
        }
    }

    /// After a lost netlink subscription: re-read the state of every link.
    async fn resync_links(&mut self) {
        let indexes: Vec<u32> = self.links.keys().copied().collect();
        for index in indexes {
            match self.netlink.link_by_index(index).await {
                Ok(link) => self.link_changed(index, link.is_up()).await,
                Err(_) => self.link_changed(index, false).await,
            }
        }
    }

    /// SIGHUP: re-read the config. Instances whose settings did not change
    /// keep their state and timers; changed ones are reconfigured in place
    /// when (interface, VRID, family) stayed, else stopped and started anew.
    /// A bad config is logged and ignored.
    async fn reload(&mut self) {
        let new = match Config::load(&self.opts.config_path) {
            Ok(c) => c,
            Err(e) => {
                for line in e.lines() {
                    error!("reload rejected: {line}");
                }
                return;
            }
        };
        if new.global.control_socket != self.cfg.global.control_socket
            || new.global.metrics_listen != self.cfg.global.metrics_listen
            || new.global.xdp != self.cfg.global.xdp
        {
            warn!(
                "reload: changes to [global] control_socket, metrics_listen and xdp need a restart"
            );
        }
        let now = dataplane::now();
        // Stop instances that went away or moved to another (interface, VRID, family).
        let mut i = 0;
        while i < self.instances.len() {
            let next = {
                let cfg = &self.instances[i].cfg;
                new.instances
                    .iter()
                    .find(|n| n.name == cfg.name && n.key() == cfg.key())
            };
            match next {
                Some(n) if *n == self.instances[i].cfg => i += 1,
                Some(n) => {
                    info!(instance = %n.name, "reload: settings changed; reconfiguring");
                    let inst = &mut self.instances[i];
                    let old_vips = std::mem::replace(&mut inst.cfg, n.clone()).virtual_ips;
                    inst.router
                        .reconfigure(now, n.router_config(inst.sender.src()));
                    self.drive(i).await;
                    if self.instances[i].router.state() == State::Master {
                        self.swap_vips(i, &old_vips).await;
                    }
                    i += 1;
                }
                None => {
                    info!(instance = %self.instances[i].cfg.name, "reload: instance removed; stopping it");
                    self.instances[i].router.handle_shutdown(now);
                    self.drive(i).await;
                    self.instances.remove(i);
                }
            }
        }
        // Start new instances.
        for n in &new.instances {
            if self.instances.iter().any(|r| r.cfg.name == n.name) {
                continue;
            }
            let r = match resolve(&self.netlink, n).await {
                Ok(r) => r,
                Err(e) => {
                    error!(instance = %n.name, error = %e, "reload: cannot start instance");
                    continue;
                }
            };
            remove_stale_vips(&self.netlink, n, r.link.index).await;
            if let Err(e) = self.add_instance(n.clone(), r, now) {
                error!(instance = %n.name, error = %e, "reload: cannot start instance");
            }
        }
        self.cfg = new;
        for inst in &self.instances {
            if let Err(e) = inst.sender.set_dscp(self.cfg.global.advert_dscp) {
                warn!(instance = %inst.cfg.name, error = %e, "reload: cannot change advert_dscp");
            }
        }
        // Order instances as in the file, then tell the data plane.
        let order: Vec<String> = self.cfg.instances.iter().map(|i| i.name.clone()).collect();
        self.instances.sort_by_key(|r| {
            order
                .iter()
                .position(|n| *n == r.cfg.name)
                .unwrap_or(usize::MAX)
        });
        let deliver: HashMap<VridKey, bool> = self
            .instances
            .iter()
            .map(|r| (r.key, r.deliver_all))
            .collect();
        let entries =
            dataplane_config(self.instances.iter().map(|r| (&r.cfg, r.ifindex)), &deliver);
        if let Err(e) = self.dataplane.apply(&entries) {
            error!(error = %e, "reload: updating the data plane failed");
        }
        for i in 0..self.instances.len() {
            if self.instances[i].router.state() == State::Init {
                self.instances[i].router.handle_startup(now);
                self.drive(i).await;
            }
        }
        info!(instances = self.instances.len(), "configuration reloaded");
    }

    /// After a reload changed the VIP list of a MASTER: remove the old
    /// ones that went, add the new ones, and announce.
    async fn swap_vips(&mut self, i: usize, old: &[VirtualIp]) {
        let inst = &self.instances[i];
        if inst.cfg.virtual_ips == old {
            return;
        }
        for v in old.iter().filter(|v| !inst.cfg.virtual_ips.contains(v)) {
            if let Err(e) = self.netlink.del_vip(inst.ifindex, v).await {
                warn!(vip = %v, error = %e, "cannot remove virtual IP");
            }
        }
        self.add_vips(i).await;
        self.announce(i, true);
    }

    /// Graceful stop: every MASTER sends priority 0 and removes its VIPs.
    async fn stop(&mut self) {
        let now = dataplane::now();
        let mut resigned = Vec::new();
        let mut wait = Duration::ZERO;
        for i in 0..self.instances.len() {
            let router = &self.instances[i].router;
            if router.state() == State::Master {
                resigned.push(self.instances[i].key);
                wait = wait.max(router.master_down_interval());
            }
            self.instances[i].router.handle_shutdown(now);
            self.drive(i).await;
        }
        self.await_takeover(resigned, wait.min(HANDOVER_WAIT_MAX))
            .await;
        for s in self.servers.drain(..) {
            s.abort();
        }
        if let Some(n) = self.notifier.take() {
            // STOP notifications run before we exit, within their timeout.
            n.shutdown().await;
        }
        self.dataplane.shutdown();
        info!("stopped");
    }

    /// After resigning, waits (at most `limit`) until another router
    /// advertises for every VRID we were MASTER of, plus a short grace for
    /// it to add and announce the VIPs. Detaching XDP takes the kernel's
    /// global rtnl lock for tens of milliseconds (veth: ~20 ms), which would
    /// stall the new master's netlink calls if it shares our kernel
    /// (containers, network namespaces); its takeover comes first.
    async fn await_takeover(&mut self, mut pending: Vec<VridKey>, limit: Duration) {
        if pending.is_empty() {
            return;
        }
        let resigned_at = dataplane::now();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // The data plane may suppress the new master's adverts (same
            // source, priority and interval as the last one it saw), so ask
            // LAST_SEEN rather than rely on events.
            pending.retain(|key| {
                !matches!(self.dataplane.last_seen(*key),
                          Ok(Some(ls)) if ls.ts > resigned_at && ls.priority > 0)
            });
            if pending.is_empty() {
                tokio::time::sleep(TAKEOVER_GRACE).await;
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                return;
            }
            let poll = tokio::time::Instant::now() + Duration::from_millis(1);
            let _ = tokio::time::timeout_at(poll.min(deadline), self.events.recv()).await;
        }
    }

    /// The status document, with fresh counters.
    fn status(&self) -> Status {
        let counters = self.dataplane.counters().ok();
        let vip_counters = self.dataplane.vip_counters().unwrap_or_default();
        let instances = self
            .instances
            .iter()
            .map(|r| {
                let mut s = InstanceStatus::from_config(&r.cfg);
                s.state = r.router.state().to_string();
                s.effective_priority = r.router.priority();
                s.master = r.router.current_master();
                s.master_adver_interval_ms = ms(r.router.master_adver_interval());
                s.transitions = r.transitions;
                s.last_transition_unix_ms = r.last_transition_unix_ms;
                let c = &mut s.counters;
                c.adverts_tx = r.counters.adverts.load(Ordering::Relaxed);
                c.prio0_tx = r.counters.prio0.load(Ordering::Relaxed);
                c.garp_tx = r.counters.garp.load(Ordering::Relaxed);
                c.prio0_rx = r.prio0_rx;
                if let Ok(Some(v)) = self.dataplane.vrid_counters(r.key) {
                    c.adverts_rx = v.valid;
                    for reason in DropReason::ALL {
                        c.rx_dropped.add(reason, v.dropped(reason));
                    }
                }
                if let Some(g) = &counters {
                    c.rx_dropped.vrid = g.stat(Stat::AdvertsForeign);
                }
                for vc in &mut s.vip_counters {
                    if let Some(k) = vip_counters.iter().find(|k| k.vip == vc.vip) {
                        vc.rx_packets = k.rx_packets;
                        vc.rx_bytes = k.rx_bytes;
                    }
                }
                c.vip_rx_packets = s.vip_counters.iter().map(|v| v.rx_packets).sum();
                c.vip_rx_bytes = s.vip_counters.iter().map(|v| v.rx_bytes).sum();
                // Measured by the data plane, which sees every advert (the
                // XDP program wakes the daemon only on changes).
                if let Ok(Some(ls)) = self.dataplane.last_seen(r.key) {
                    s.advert_interarrival = Histogram::from_counts(&ls.hist_counts, ls.hist_sum_ns);
                }
                s
            })
            .collect();
        let mut interfaces: Vec<String> = Vec::new();
        for r in &self.instances {
            if !interfaces.contains(&r.cfg.interface) {
                interfaces.push(r.cfg.interface.clone());
            }
        }
        let mode = match self.dataplane.mode() {
            dataplane::ActiveMode::Socket => "off".to_owned(),
            m => m.as_str().to_owned(),
        };
        Status {
            router_id: self.cfg.global.router_id.clone(),
            xdp: XdpStatus {
                interfaces: if mode == "off" {
                    Vec::new()
                } else {
                    interfaces
                },
                mode,
            },
            instances,
        }
    }
}

/// Asks the main loop for a status document.
async fn ask(tx: mpsc::Sender<StatusRequest>) -> Status {
    let (reply, rx) = oneshot::channel();
    if tx.send(reply).await.is_err() {
        return Status::default();
    }
    rx.await.unwrap_or_default()
}

/// What an instance needs to know about its interface.
struct Resolved {
    link: LinkInfo,
    /// Advert source: primary IPv4 address or IPv6 link-local address.
    source: IpAddr,
    ll_src: Option<Ipv6Addr>,
}

/// How far ahead of its Master_Down deadline a backup may read LAST_SEEN
/// when the timer wakes the daemon anyway (see [`Daemon::on_timers`]).
const CATCH_UP_AHEAD: Duration = Duration::from_millis(2);

/// Longest a graceful stop waits for a backup to take over before it
/// detaches XDP (see [`Daemon::await_takeover`]).
const HANDOVER_WAIT_MAX: Duration = Duration::from_secs(2);
/// Time left to the new master to add and announce its VIPs.
const TAKEOVER_GRACE: Duration = Duration::from_millis(20);

/// How long start-up waits for IPv6 DAD on the link-local address.
const LINK_LOCAL_WAIT_STEP: Duration = Duration::from_millis(100);
const LINK_LOCAL_WAIT_STEPS: u32 = 50;

async fn resolve(netlink: &Netlink, inst: &Instance) -> anyhow::Result<Resolved> {
    let link = netlink
        .link_by_name(&inst.interface)
        .await
        .with_context(|| format!("instance {}: interface {}", inst.name, inst.interface))?;
    let mut addrs = netlink.addresses(link.index).await?;
    let mut ll_src = vips::link_local_ipv6(&addrs, &inst.virtual_ips);
    // Right after boot or link-up the link-local address is still in
    // duplicate address detection (about 1-2 s); IPv6 adverts need it.
    if inst.family == Family::V6 && ll_src.is_none() && link.is_up() {
        info!(interface = %inst.interface, "waiting for the IPv6 link-local address (DAD)");
        for _ in 0..LINK_LOCAL_WAIT_STEPS {
            tokio::time::sleep(LINK_LOCAL_WAIT_STEP).await;
            addrs = netlink.addresses(link.index).await?;
            ll_src = vips::link_local_ipv6(&addrs, &inst.virtual_ips);
            if ll_src.is_some() {
                break;
            }
        }
    }
    let source = match inst.family {
        Family::V4 => vips::primary_ipv4(&addrs, &inst.virtual_ips).map(IpAddr::V4).ok_or_else(|| {
            anyhow!(
                "instance {}: interface {} has no IPv4 address to send adverts from (RFC 9568 §5.1.1.1: the primary address)",
                inst.name,
                inst.interface
            )
        })?,
        Family::V6 => ll_src.map(IpAddr::V6).ok_or_else(|| {
            anyhow!(
                "instance {}: interface {} has no IPv6 link-local address to send adverts from (RFC 9568 §5.1.2.1)",
                inst.name,
                inst.interface
            )
        })?,
    };
    Ok(Resolved {
        link,
        source,
        ll_src,
    })
}

async fn remove_stale_vips(netlink: &Netlink, inst: &Instance, ifindex: u32) {
    let Ok(addrs) = netlink.addresses(ifindex).await else {
        return;
    };
    for vip in &inst.virtual_ips {
        if addrs.iter().any(|a| a.addr == vip.addr) {
            warn!(instance = %inst.name, %vip, "removing a virtual IP left on the interface (crash or manual add)");
            if let Err(e) = netlink.del_vip(ifindex, vip).await {
                error!(instance = %inst.name, %vip, error = %e, "cannot remove stale virtual IP");
            }
        }
    }
}

/// What the data plane must know: every instance's VRID and VIPs, with
/// the "deliver every advert" flag each one currently wants.
fn dataplane_config<'a>(
    instances: impl Iterator<Item = (&'a Instance, u32)> + Clone,
    deliver: &HashMap<VridKey, bool>,
) -> DataPlaneConfig {
    DataPlaneConfig {
        vrids: instances
            .clone()
            .map(|(inst, ifindex)| {
                let key = VridKey::new(ifindex, inst.vrid, AddrFamily::from(inst.family).tag());
                vrid_entry(inst, ifindex, deliver.get(&key).copied().unwrap_or(false))
            })
            .collect(),
        vips: instances
            .flat_map(|(inst, _)| inst.virtual_ips.iter().map(|v| v.addr))
            .collect(),
    }
}

fn vrid_entry(inst: &Instance, ifindex: u32, deliver_all: bool) -> VridEntry {
    VridEntry {
        ifindex,
        vrid: inst.vrid,
        family: inst.family.into(),
        version: match inst.version {
            Version::V2 => 2,
            Version::V3 => 3,
        },
        v2_adver_int: u16::try_from(inst.advert_interval.as_secs()).unwrap_or(u16::MAX),
        local_priority: inst.priority,
        deliver_all,
        unicast_peers: inst.unicast_peers.clone(),
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Capabilities the daemon needs (bit numbers of linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_BPF: u32 = 39;
const CAP_SYS_ADMIN: u32 = 21;

/// Why the daemon refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// Missing privileges.
    #[error("must run as root or with {0} (missing: {1})")]
    Privileges(String, String),
    /// A configured interface does not exist.
    #[error("interface `{interface}` of instance `{instance}` does not exist")]
    NoInterface {
        /// Interface name.
        interface: String,
        /// Instance using it.
        instance: String,
    },
    /// Netlink failed.
    #[error(transparent)]
    Netlink(#[from] vips::NetlinkError),
    /// The control socket is taken.
    #[error(transparent)]
    Control(#[from] control::ControlError),
}

/// The one-line start-up checks: effective capabilities (CAP_NET_ADMIN,
/// CAP_NET_RAW, and CAP_BPF for `xdp = driver|skb`), every interface exists,
/// no other daemon answers on the control socket (a stale one is removed).
pub async fn preflight(cfg: &Config, xdp: XdpMode) -> Result<(), PreflightError> {
    check_capabilities(xdp)?;
    let nl = vips::Netlink::new()?;
    for inst in &cfg.instances {
        match nl.link_by_name(&inst.interface).await {
            Ok(_) => {}
            Err(vips::NetlinkError::NoSuchInterface(_)) => {
                return Err(PreflightError::NoInterface {
                    interface: inst.interface.clone(),
                    instance: inst.name.clone(),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    control::check_socket_free(&cfg.global.control_socket).await?;
    Ok(())
}

fn check_capabilities(xdp: XdpMode) -> Result<(), PreflightError> {
    let eff = effective_caps().unwrap_or(0);
    let has = |c: u32| eff & (1u64 << c) != 0;
    let mut need = vec![
        ("CAP_NET_ADMIN", CAP_NET_ADMIN),
        ("CAP_NET_RAW", CAP_NET_RAW),
    ];
    // `auto` falls back to the socket path, so only an explicit XDP mode
    // makes CAP_BPF mandatory.
    if matches!(xdp, XdpMode::Driver | XdpMode::Skb) {
        need.push(("CAP_BPF", CAP_BPF));
    }
    let missing: Vec<&str> = need
        .iter()
        // CAP_SYS_ADMIN covers BPF on kernels older than 5.8.
        .filter(|(n, c)| !(has(*c) || (*n == "CAP_BPF" && has(CAP_SYS_ADMIN))))
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        let all: Vec<&str> = need.iter().map(|(n, _)| *n).collect();
        return Err(PreflightError::Privileges(
            all.join(", "),
            missing.join(", "),
        ));
    }
    if xdp == XdpMode::Auto && !(has(CAP_BPF) || has(CAP_SYS_ADMIN)) {
        warn!("no CAP_BPF: XDP unavailable, adverts will be received on a socket");
    }
    Ok(())
}

/// `CapEff` of /proc/self/status.
fn effective_caps() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::RouterConfig;

    const MASTER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn backup(start: Instant) -> VirtualRouter {
        let mut r = VirtualRouter::new(RouterConfig {
            vrid: 51,
            version: Version::V3,
            family: Family::V4,
            priority: 100,
            advert_interval: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept_mode: false,
            primary_addr: IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)),
        });
        r.handle_startup(start);
        while r.poll_action().is_some() {}
        assert_eq!(r.state(), State::Backup);
        r
    }

    fn advert(priority: u8) -> RxAdvert {
        RxAdvert {
            src: MASTER,
            priority,
            interval: Duration::from_secs(1),
            version: Version::V3,
        }
    }

    fn event(ts: Instant, prev_ts: Option<Instant>, priority: u8) -> Event {
        Event {
            ts,
            ifindex: 7,
            family: AddrFamily::V4,
            src: MASTER,
            src_mac: [2, 0, 0, 0, 0, 1],
            version: 3,
            vrid: 51,
            priority,
            interval_raw: 100,
            count: 1,
            addrs: vec![IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 100))],
            checksum_form: None,
            reason: vrrp_common::event_reason::PRIORITY,
            prev_ts,
        }
    }

    /// A1 (priority 150) is delivered, A2..An are suppressed by the kernel,
    /// then B (priority 50) arrives: a preempting Backup of priority 100
    /// discards B, and its Master_Down_Timer must run from An, not A1.
    #[test]
    fn suppressed_run_then_change_bases_master_down_on_the_last_of_the_run() {
        let t0 = Instant::from_nanos(1_000_000_000);
        let mut router = backup(t0);
        let mut d = Delivered::default();
        let a1 = t0 + Duration::from_millis(10);
        assert_eq!(
            d.deliver_event(&mut router, &event(a1, None, 150), advert(150)),
            None
        );
        let mdi = router.master_down_interval();
        assert_eq!(router.poll_timeout(), Some(a1 + mdi));

        // A2, A3 suppressed; An = A3 at a1 + 2 s; B at a1 + 2.5 s.
        let an = a1 + Duration::from_secs(2);
        let b = an + Duration::from_millis(500);
        let missed = d.deliver_event(&mut router, &event(b, Some(an), 50), advert(50));
        assert_eq!(missed, Some((an, advert(150))));
        assert_eq!(router.state(), State::Backup);
        assert_eq!(router.poll_timeout(), Some(an + mdi));
        assert_eq!(d.ts, b);
        assert_eq!(d.advert, Some(advert(50)));
    }

    #[test]
    fn predecessor_already_seen_is_not_delivered_again() {
        let t0 = Instant::from_nanos(1_000_000_000);
        let mut router = backup(t0);
        let mut d = Delivered::default();
        let a1 = t0 + Duration::from_millis(10);
        d.deliver_event(&mut router, &event(a1, None, 150), advert(150));
        // The previous LAST_SEEN entry is A1 itself (nothing suppressed).
        let b = a1 + Duration::from_secs(1);
        assert_eq!(
            d.deliver_event(&mut router, &event(b, Some(a1), 120), advert(120)),
            None
        );
        // A catch-up from LAST_SEEN already delivered the newest one.
        let a2 = b + Duration::from_secs(1);
        d.deliver(&mut router, a2, advert(120));
        let c = a2 + Duration::from_secs(1);
        assert_eq!(
            d.deliver_event(&mut router, &event(c, Some(a2), 130), advert(130)),
            None
        );
        // Socket path: no predecessor information.
        let e = c + Duration::from_secs(1);
        assert_eq!(
            d.deliver_event(&mut router, &event(e, None, 130), advert(130)),
            None
        );
        assert_eq!(
            router.poll_timeout(),
            Some(e + router.master_down_interval())
        );
    }
}
