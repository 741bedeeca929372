//! The daemon: the tokio shell around the [`Agent`]. Every decision is the
//! agent's; here is only I/O.
//!
//! One task owns the agent and the data plane and runs one loop:
//!
//! ```text
//!   data-plane events ──► Agent::handle_advert ──┐
//!   deadline timer ─────► Agent::handle_timeout ─┤
//!   netlink link/addr ──► Agent::handle_link ... ┼─► Agent::poll_command ─► exec: adverts,
//!   SIGHUP ─────────────► Agent::reload ─────────┘     VIPs, GARP/NA, notify, data plane
//!   SIGTERM/SIGINT ─────► Agent::handle_stop ─► Handover::poll ─► detach
//!   status requests ────► status document
//! ```
//!
//! - `startup.rs`: the start-up checks, resolving interfaces (netlink stays
//!   here, in the shell; resolved again on link and address events, so an
//!   interface that is not ready at start, or is re-created, is picked up
//!   without a restart), the stale-VIP cleanup.
//! - `exec.rs`: carries out the agent's commands.
//! - `status.rs`: builds the status document from the agent and the data
//!   plane's counters.

mod exec;
mod fast_start;
mod startup;
mod status;

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use anyhow::{Context as _, bail};
use futures::FutureExt as _;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tracing::{debug, error, info, warn};

pub use self::startup::{PreflightError, preflight};
use self::{
    exec::Io,
    startup::{Resolved, remove_stale_vips, resolve},
};
use crate::{
    agent::{self, AdvertIn, Agent, HandoverStep, LastSeen, SeenAdvert},
    checks::{CheckEvent, Runners},
    config::{Config, Instance, XdpMode},
    control::{ConnLimit, ControlSocket, MAX_CONNECTIONS, Status},
    dataplane::{self, DataPlane, DataPlaneConfig, Event, EventStream, VridEntry},
    metrics,
    notify::Notifier,
    proto::{Family, Instant},
    sdnotify,
    timer::DeadlineTimer,
    tx::FrameSender,
    vips::{self, NetEvent, NetEvents, Netlink},
};

/// Check results buffered between the runners and the main loop.
const CHECK_EVENTS: usize = 1024;

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
    let mut steps = fast_start::Steps::new();
    let xdp = opts.xdp_mode(&cfg);
    preflight(&cfg, xdp).await?;
    steps.done("preflight");
    let mut systemd = sdnotify::Service::from_env();
    let mut daemon = Daemon::start(cfg, opts, &mut steps).await?;
    systemd.ready(&format!("instances: {}", daemon.agent.instances().len()));
    let result = daemon.run(signals, &mut systemd).await;
    systemd.stopping();
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

/// The data plane's `LAST_SEEN`, as the agent reads it.
struct Seen<'a>(&'a DataPlane);

impl LastSeen for Seen<'_> {
    fn last_seen(&self, ifindex: u32, vrid: u8, family: Family) -> Option<SeenAdvert> {
        match self.0.last_seen(dataplane::vrid_key(ifindex, vrid, family)) {
            Ok(ls) => ls.map(|ls| SeenAdvert {
                ts: ls.ts,
                advert: ls.rx_advert(),
            }),
            Err(e) => {
                warn!(ifindex, vrid, error = %e, "reading LAST_SEEN failed");
                None
            }
        }
    }
}

fn advert_in(ev: &Event) -> AdvertIn {
    AdvertIn {
        ifindex: ev.ifindex,
        vrid: ev.vrid,
        ts: ev.ts,
        prev_ts: ev.prev_ts,
        advert: ev.rx_advert(),
    }
}

struct Daemon {
    cfg: Config,
    opts: RunOptions,
    netlink: Netlink,
    net_events: NetEvents,
    dataplane: DataPlane,
    events: EventStream,
    /// The XDP program loading in the background (`xdp = auto`): the
    /// daemon runs on the socket path until it is ready.
    xdp: fast_start::XdpLoad,
    agent: Agent,
    /// The I/O side of each instance.
    io: HashMap<crate::agent::InstanceId, Io>,
    frames: HashMap<u32, Arc<FrameSender>>,
    notifier: Option<Notifier>,
    /// The health-check runners and their results.
    runners: Option<Runners>,
    check_rx: mpsc::Receiver<CheckEvent>,
    status_rx: mpsc::Receiver<StatusRequest>,
    servers: Vec<JoinHandle<()>>,
    /// The cap on status connections, and its refusals.
    conn_limit: Arc<ConnLimit>,
    /// The earliest deadline of any instance (sub-millisecond precise).
    timer: DeadlineTimer,
}

impl Daemon {
    async fn start(
        cfg: Config,
        opts: RunOptions,
        steps: &mut fast_start::Steps,
    ) -> anyhow::Result<Daemon> {
        let netlink = Netlink::new()?;
        // Subscribe before looking anything up so no change slips between.
        let net_events = vips::subscribe()?;

        let mut resolved = Vec::new();
        for inst in &cfg.instances {
            resolved.push(resolve(&netlink, inst).await?);
        }
        steps.done("resolve interfaces");
        // A crash may have left our VIPs behind: remove them before we
        // announce anything, so no two routers answer for them.
        for (inst, r) in cfg.instances.iter().zip(&resolved) {
            remove_stale_vips(&netlink, inst, r.link.index).await;
        }
        steps.done("stale VIP cleanup");

        let mut agent = Agent::new();
        let mut io = HashMap::new();
        let mut frames = HashMap::new();
        let now = dataplane::now();
        // An instance still waiting for its advert source (no address yet,
        // IPv6 link-local tentative) cannot elect before it has one, so an
        // early start on the socket path gains it nothing: such a start
        // loads XDP first, as before the fast start, and keeps the
        // socket-to-XDP hand-over out of the FAULT-wait path.
        let all_sourced = resolved.iter().all(|r| r.source.is_some());
        for (inst, r) in cfg.instances.iter().zip(resolved) {
            let (id, i) = Io::open(
                &mut agent,
                &mut frames,
                now,
                inst.clone(),
                r,
                cfg.global.advert_dscp,
            )?;
            io.insert(id, i);
        }
        steps.done("advert sockets");
        let xdp = opts.xdp_mode(&cfg);
        let (mut dataplane, pending_xdp) = if all_sourced {
            DataPlane::open_fast(&dataplane_config(&agent), xdp)
        } else {
            DataPlane::open(&dataplane_config(&agent), xdp).map(|d| (d, None))
        }
        .context("data plane")?;
        let events = dataplane.events()?;
        info!(mode = %dataplane.mode(), xdp_loading = pending_xdp.is_some(), "data plane ready");
        steps.done("data plane");

        // Checks run before the election starts, so weight-0 checks hold
        // their instances in INIT until their first result.
        agent.configure_tracking(&cfg.checks, &cfg.sync_groups);
        let (check_tx, check_rx) = mpsc::channel(CHECK_EVENTS);
        let runners = Runners::spawn(&cfg.checks, check_tx);

        let (status_tx, status_rx) = mpsc::channel::<StatusRequest>(16);
        let conn_limit = ConnLimit::new(MAX_CONNECTIONS);
        let servers = serve_status(&cfg, status_tx, conn_limit.clone()).await?;
        steps.done("control socket and metrics");
        let mut daemon = Daemon {
            notifier: Some(Notifier::new(cfg.global.notify_timeout)),
            runners: Some(runners),
            check_rx,
            cfg,
            opts,
            netlink,
            net_events,
            dataplane,
            events,
            xdp: fast_start::XdpLoad::new(pending_xdp),
            agent,
            io,
            frames,
            status_rx,
            conn_limit,
            timer: DeadlineTimer::new().context("deadline timer")?,
            servers,
        };
        daemon.resync_tracked_links().await;
        daemon.agent.start(dataplane::now());
        daemon.execute().await;
        steps.done("election started");
        Ok(daemon)
    }

    /// The main loop; returns on SIGTERM/SIGINT.
    async fn run(
        &mut self,
        mut signals: Signals,
        systemd: &mut sdnotify::Service,
    ) -> anyhow::Result<()> {
        loop {
            self.timer.arm(self.agent.poll_timeout())?;
            tokio::select! {
                biased;
                _ = signals.term.recv() => { info!("SIGTERM: stopping"); return Ok(()); }
                _ = signals.int.recv() => { info!("SIGINT: stopping"); return Ok(()); }
                _ = signals.hup.recv() => {
                    systemd.reloading();
                    self.reload().await;
                    systemd.ready(&format!("instances: {}", self.agent.instances().len()));
                }
                // Before the events: a flood of adverts must not starve the pings.
                () = systemd.watchdog() => {}
                ev = self.events.recv() => match ev {
                    Ok(ev) => self.on_advert(&ev).await,
                    Err(e) => { error!(error = %e, "data plane event stream failed"); bail!(e); }
                },
                r = self.timer.expired() => {
                    r.context("deadline timer")?;
                    // Events already waiting come first: they are older
                    // than the deadline.
                    self.drain_events().await;
                    self.agent.handle_timeout(dataplane::now(), &Seen(&self.dataplane));
                    self.execute().await;
                    self.maybe_hand_over(true).await;
                    self.dataplane.warn_mismatches();
                }
                nev = self.net_events.next() => match nev {
                    Some(nev) => self.on_net_event(nev).await,
                    None => {
                        warn!("netlink event socket closed; resubscribing");
                        self.net_events = vips::subscribe()?;
                        self.resync_links().await;
                    }
                },
                Some(ev) = self.check_rx.recv() => {
                    self.agent.handle_check(dataplane::now(), &ev);
                    self.execute().await;
                }
                Some(req) = self.status_rx.recv() => { let _ = req.send(self.status()); }
                x = self.xdp.loaded() => self.on_xdp_loaded(x).await,
            }
        }
    }

    async fn on_advert(&mut self, ev: &Event) {
        self.agent.handle_advert(dataplane::now(), &advert_in(ev));
        self.execute().await;
    }

    /// Handles events already waiting in the ring buffer, without blocking.
    async fn drain_events(&mut self) {
        while let Some(ev) = self.events.recv().now_or_never() {
            match ev {
                Ok(ev) => self.on_advert(&ev).await,
                Err(e) => {
                    error!(error = %e, "data plane event stream failed");
                    return;
                }
            }
        }
    }

    async fn on_net_event(&mut self, ev: NetEvent) {
        let now = dataplane::now();
        match ev {
            NetEvent::Link(link) => {
                debug!(ifindex = link.index, up = link.is_up(), "link event");
                if self.agent.tracked_interfaces().contains(&link.name) {
                    self.agent
                        .handle_tracked_link(now, &link.name, link.is_up());
                }
                self.agent.handle_link(now, link.index, link.is_up());
                self.execute().await;
                // An interface re-created under the same name (new index),
                // or one that may have got its source address.
                self.reresolve(|i| {
                    i.config().interface == link.name
                        && (i.ifindex() != link.index || i.source().is_none())
                })
                .await;
            }
            NetEvent::LinkRemoved { index, name } => {
                if let Some(name) = name.filter(|n| self.agent.tracked_interfaces().contains(n)) {
                    self.agent.handle_tracked_link(now, &name, false);
                }
                self.agent.handle_link(now, index, false);
                self.execute().await;
            }
            NetEvent::AddrAdded(addr) => {
                self.reresolve(|i| i.ifindex() == addr.ifindex && i.source().is_none())
                    .await;
            }
            NetEvent::AddrRemoved(addr) => {
                self.agent.handle_vip_removed(addr.ifindex, addr.addr);
                self.execute().await;
                self.reresolve(|i| i.ifindex() == addr.ifindex && i.source() == Some(addr.addr))
                    .await;
            }
        }
    }

    /// Resolves the interface of the instances `which` selects again and
    /// hands the result to the agent.
    async fn reresolve(&mut self, which: impl Fn(&agent::Instance) -> bool) {
        let todo: Vec<_> = self
            .agent
            .instances()
            .iter()
            .filter(|i| which(i))
            .map(|i| (i.id(), i.config().clone()))
            .collect();
        for (id, cfg) in todo {
            let r = match resolve(&self.netlink, &cfg).await {
                Ok(r) => r,
                Err(e) => {
                    debug!(instance = %cfg.name, error = %e, "interface not resolved");
                    continue;
                }
            };
            let Some(io) = self.io.get_mut(&id) else {
                continue;
            };
            if let Err(e) = io.update(&mut self.frames, &cfg, &r) {
                warn!(instance = %cfg.name, error = %e, "cannot open the interface's sockets");
                continue;
            }
            info!(instance = %cfg.name, ifindex = r.link.index, source = ?r.source,
                  up = r.link.is_up(), "interface resolved again");
            self.agent
                .handle_resolved(dataplane::now(), id, r.agent_link());
            self.execute().await;
        }
    }

    /// Reads the state of every tracked interface (a missing one is down).
    async fn resync_tracked_links(&mut self) {
        for name in self.agent.tracked_interfaces() {
            let up = self
                .netlink
                .link_by_name(&name)
                .await
                .is_ok_and(|l| l.is_up());
            self.agent.handle_tracked_link(dataplane::now(), &name, up);
        }
        self.execute().await;
    }

    /// After a lost netlink subscription: re-read the state of every link.
    async fn resync_links(&mut self) {
        self.resync_tracked_links().await;
        let indexes = self.agent.ifindexes();
        for index in indexes {
            let up = match self.netlink.link_by_index(index).await {
                Ok(link) => link.is_up(),
                Err(_) => false,
            };
            self.agent.handle_link(dataplane::now(), index, up);
            self.execute().await;
        }
    }

    /// SIGHUP: re-read the config and hand it to the agent, which decides
    /// what stays, changes, stops and starts. A bad config is logged and
    /// ignored.
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
        if let Some(r) = &mut self.runners {
            r.reload(&new.checks).await;
        }
        self.agent.configure_tracking(&new.checks, &new.sync_groups);
        let to_start = self.agent.reload(now, &new.instances);
        self.execute().await;
        for n in to_start {
            if let Err(e) = self.add_instance(now, n.clone()).await {
                error!(instance = %n.name, error = %e, "reload: cannot start instance");
            }
        }
        self.cfg = new;
        for io in self.io.values_mut() {
            if let Err(e) = io.set_dscp(self.cfg.global.advert_dscp) {
                warn!(instance = %io.name, error = %e, "reload: cannot change advert_dscp");
            }
        }
        self.resync_tracked_links().await;
        self.agent.finish_reload(now);
        self.execute().await;
        info!(
            instances = self.agent.instances().len(),
            "configuration reloaded"
        );
    }

    async fn add_instance(&mut self, now: Instant, inst: Instance) -> anyhow::Result<()> {
        let r: Resolved = resolve(&self.netlink, &inst).await?;
        remove_stale_vips(&self.netlink, &inst, r.link.index).await;
        let dscp = self.cfg.global.advert_dscp;
        let (id, io) = Io::open(&mut self.agent, &mut self.frames, now, inst, r, dscp)?;
        self.io.insert(id, io);
        Ok(())
    }

    /// Graceful stop: every MASTER resigns; XDP is detached once the new
    /// masters advertise (see [`crate::agent::handover`]).
    async fn stop(&mut self) {
        let mut handover = self.agent.handle_stop(dataplane::now());
        self.execute().await;
        loop {
            let now = dataplane::now();
            match handover.poll(now, &Seen(&self.dataplane)) {
                HandoverStep::Wait(until) => {
                    let wait = until.saturating_duration_since(now);
                    let _ = tokio::time::timeout(wait, self.events.recv()).await;
                }
                HandoverStep::Done(grace) => {
                    tokio::time::sleep(grace).await;
                    break;
                }
                HandoverStep::GiveUp => {
                    warn!(pending = ?handover.pending(), "no new master advertised; detaching anyway");
                    break;
                }
            }
        }
        for s in self.servers.drain(..) {
            s.abort();
        }
        if let Some(r) = self.runners.take() {
            r.shutdown().await;
        }
        if let Some(n) = self.notifier.take() {
            // STOP notifications run before we exit, within their timeout.
            n.shutdown().await;
        }
        self.dataplane.shutdown();
        info!("stopped");
    }
}

/// Starts the control socket server and the metrics endpoint.
async fn serve_status(
    cfg: &Config,
    status_tx: mpsc::Sender<StatusRequest>,
    limit: Arc<ConnLimit>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut servers = Vec::new();
    let sock = ControlSocket::bind(&cfg.global.control_socket).await?;
    let tx = status_tx.clone();
    let l = limit.clone();
    servers.push(tokio::spawn(async move {
        sock.serve(l, move || ask(tx.clone())).await
    }));
    if let Some(addr) = cfg.global.metrics_listen {
        let listener = metrics::bind(addr)
            .await
            .with_context(|| format!("metrics_listen {addr}"))?;
        servers.push(tokio::spawn(metrics::serve(listener, limit, move || {
            ask(status_tx.clone())
        })));
        info!(%addr, "metrics endpoint listening");
    }
    Ok(servers)
}

/// Asks the main loop for a status document.
async fn ask(tx: mpsc::Sender<StatusRequest>) -> Status {
    let (reply, rx) = oneshot::channel();
    if tx.send(reply).await.is_err() {
        return Status::default();
    }
    rx.await.unwrap_or_default()
}

/// What the data plane must know: every instance's VRID and VIPs, with
/// the "deliver every advert" flag each one currently wants.
fn dataplane_config(agent: &Agent) -> DataPlaneConfig {
    DataPlaneConfig {
        vrids: agent
            .instances()
            .iter()
            .map(|i| {
                let c = i.config();
                VridEntry {
                    ifindex: i.ifindex(),
                    vrid: c.vrid,
                    family: c.family,
                    version: c.version.number(),
                    v2_adver_int: u16::try_from(c.advert_interval.as_secs()).unwrap_or(u16::MAX),
                    local_priority: c.priority,
                    deliver_all: i.deliver_all(),
                    unicast_peers: c.unicast_peers.clone(),
                    v2_auth_pass: c.auth_pass,
                }
            })
            .collect(),
        vips: agent
            .instances()
            .iter()
            .flat_map(|i| i.config().virtual_ips.iter().map(|v| v.addr))
            .collect(),
    }
}
