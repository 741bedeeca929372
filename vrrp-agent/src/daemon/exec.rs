//! Carries out the agent's commands: sockets, netlink, the data plane and
//! notify scripts. Nothing here decides; a failure is logged and counted.

use std::{
    collections::HashMap,
    net::Ipv6Addr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use futures::{FutureExt as _, StreamExt as _, future::BoxFuture};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};
use vrrp_common::VridKey;

use super::{Daemon, Seen, dataplane_config, startup::Resolved};
use crate::{
    agent::{Agent, Command, InstanceId},
    config::{Instance, VirtualIp},
    dataplane,
    proto::{Advert, Instant, V3Checksum},
    tx::{self, AdvertCache, AdvertSender, FrameSender},
};

/// A `SendAdvert` command waiting to be sent with the ones after it.
pub(super) struct PendingAdvert {
    id: InstanceId,
    advert: Advert,
    dsts: Vec<std::net::IpAddr>,
    checksum: V3Checksum,
}

/// Counters written by announcement tasks too.
#[derive(Clone, Default)]
pub(super) struct TxCounters {
    pub(super) adverts: Arc<AtomicU64>,
    pub(super) prio0: Arc<AtomicU64>,
    pub(super) garp: Arc<AtomicU64>,
}

/// The end of an instance's latest VIP addition, which runs as its own
/// task (shared: the announcement and a later removal wait for it).
type Adding = futures::future::Shared<BoxFuture<'static, ()>>;

/// The I/O side of one instance.
pub(super) struct Io {
    pub(super) name: String,
    pub(super) ifindex: u32,
    pub(super) mac: [u8; 6],
    /// IPv6 link-local source for unsolicited NAs.
    pub(super) ll_src: Option<Ipv6Addr>,
    pub(super) key: VridKey,
    /// `None` while the interface has no advert source address.
    pub(super) sender: Option<AdvertSender>,
    /// The bytes of the advert last sent, sent again while unchanged.
    advert_cache: AdvertCache,
    pub(super) announce: Option<JoinHandle<()>>,
    /// The VIP addition in flight, if any.
    adding: Option<Adding>,
    pub(super) counters: TxCounters,
    /// `global.advert_dscp`, applied to every advert socket opened.
    advert_dscp: u8,
    /// `auth_pass` (v2): written into every advert sent.
    auth_pass: Option<crate::proto::auth::Password>,
}

impl Io {
    /// Opens the sockets of a resolved instance and adds it to the agent.
    pub(super) fn open(
        agent: &mut Agent,
        frames: &mut HashMap<u32, Arc<FrameSender>>,
        now: Instant,
        cfg: Instance,
        r: Resolved,
        advert_dscp: u8,
    ) -> anyhow::Result<(InstanceId, Io)> {
        let mut io = Io {
            name: cfg.name.clone(),
            ifindex: 0,
            mac: [0; 6],
            ll_src: None,
            key: VridKey::default(),
            sender: None,
            advert_cache: AdvertCache::default(),
            announce: None,
            adding: None,
            counters: TxCounters::default(),
            advert_dscp,
            auth_pass: None,
        };
        io.update(frames, &cfg, &r)?;
        info!(instance = %cfg.name, interface = %cfg.interface, vrid = cfg.vrid,
              source = ?r.source, "instance configured");
        let id = agent.add_instance(now, cfg, r.agent_link());
        Ok((id, io))
    }

    /// Takes a (re-)resolved interface: a new index or source gets new
    /// sockets.
    pub(super) fn update(
        &mut self,
        frames: &mut HashMap<u32, Arc<FrameSender>>,
        cfg: &Instance,
        r: &Resolved,
    ) -> anyhow::Result<()> {
        let index = r.link.index;
        let moved = index != self.ifindex;
        if moved || self.sender.as_ref().map(AdvertSender::src) != r.source {
            self.sender = r
                .source
                .map(|src| AdvertSender::new(&cfg.interface, index, src))
                .transpose()?;
            if let Some(sender) = &mut self.sender {
                sender.set_dscp(self.advert_dscp).context("advert_dscp")?;
            }
        }
        // One GARP/NA socket per interface, shared by its instances.
        if let std::collections::hash_map::Entry::Vacant(e) = frames.entry(index) {
            e.insert(Arc::new(FrameSender::new(&cfg.interface, index)?));
        }
        self.ifindex = index;
        self.mac = r.link.mac.unwrap_or_default();
        self.ll_src = r.ll_src;
        self.key = dataplane::vrid_key(index, cfg.vrid, cfg.family);
        self.auth_pass = cfg.auth_pass;
        Ok(())
    }

    /// `global.advert_dscp` changed (reload): applies it to the advert socket.
    pub(super) fn set_dscp(&mut self, dscp: u8) -> Result<(), tx::TxError> {
        self.advert_dscp = dscp;
        self.sender.as_mut().map_or(Ok(()), |s| s.set_dscp(dscp))
    }
}

impl Daemon {
    /// Carries out every queued command, in order (the agent emits them in
    /// the order the wire needs: the advert first).
    /// Adverts that follow each other in the queue are sent together
    /// ([`Daemon::send_adverts`]); any other command first sends those
    /// before it, so the order on the wire is the agent's.
    pub(super) async fn execute(&mut self) {
        let mut adverts = Vec::new();
        while let Some(cmd) = self.agent.poll_command() {
            match cmd {
                Command::SendAdvert {
                    id,
                    advert,
                    dsts,
                    checksum,
                } => {
                    // The cache holds one advert per instance: a second
                    // one of the same instance goes in the next batch.
                    if adverts.iter().any(|a: &PendingAdvert| a.id == id) {
                        self.send_adverts(&mut adverts).await;
                    }
                    adverts.push(PendingAdvert {
                        id,
                        advert,
                        dsts,
                        checksum,
                    });
                }
                cmd => {
                    self.send_adverts(&mut adverts).await;
                    self.exec(cmd).await;
                }
            }
        }
        self.send_adverts(&mut adverts).await;
    }

    /// Sends the queued adverts (and empties the queue): the bytes of each
    /// come from its instance's [`AdvertCache`], and those that share a
    /// socket (every instance on one interface) go to the kernel in one
    /// `sendmmsg`.
    async fn send_adverts(&mut self, adverts: &mut Vec<PendingAdvert>) {
        if adverts.is_empty() {
            return;
        }
        let mut built = Vec::new();
        for a in adverts.iter() {
            let Some(io) = self.io.get_mut(&a.id) else {
                debug!(id = %a.id, "advert for an instance without I/O");
                continue;
            };
            let Some(src) = io.sender.as_ref().map(AdvertSender::src) else {
                debug!(instance = %io.name, "no advert source address; advert not sent");
                continue;
            };
            for dst in &a.dsts {
                let auth = io.auth_pass.as_ref();
                if let Err(e) = io.advert_cache.get(&a.advert, src, *dst, a.checksum, auth) {
                    error!(instance = %io.name, error = %e, "cannot build advert");
                    break;
                }
                built.push((a.id, *dst, a.advert.priority == 0));
            }
        }
        let mut batch = Vec::with_capacity(built.len());
        let mut whose = Vec::with_capacity(built.len());
        for (id, dst, prio0) in built {
            let Some(io) = self.io.get(&id) else { continue };
            let (Some(sender), Some(msg)) = (&io.sender, io.advert_cache.cached(dst)) else {
                continue;
            };
            batch.push(tx::Outgoing { sender, dst, msg });
            whose.push((io, prio0));
        }
        for ((io, prio0), r) in whose.into_iter().zip(tx::send_batch(&batch).await) {
            match r {
                Ok(()) => {
                    io.counters.adverts.fetch_add(1, Ordering::Relaxed);
                    if prio0 {
                        io.counters.prio0.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => warn!(instance = %io.name, error = %e, "advert not sent"),
            }
        }
        adverts.clear();
    }

    // Long because: one arm per `Command` variant, each a few lines of I/O.
    async fn exec(&mut self, cmd: Command) {
        let id = match &cmd {
            Command::ApplyDataPlane => {
                if let Err(e) = self.dataplane.apply(&dataplane_config(&self.agent)) {
                    error!(error = %e, "updating the data plane failed");
                }
                return;
            }
            Command::Notify { queue, state, argv } => {
                info!(queue, state, command = ?argv, "notify");
                if let Some(n) = &self.notifier {
                    n.notify(queue, state, argv.clone());
                }
                return;
            }
            Command::SendAdvert { id, .. }
            | Command::StateChanged { id, .. }
            | Command::SetLocalPriority { id, .. }
            | Command::Tracking { id, .. }
            | Command::AddVips { id, .. }
            | Command::Announce { id, .. }
            | Command::RemoveVips { id, .. }
            | Command::RestoreVip { id, .. }
            | Command::SetDeliverAll { id, .. }
            | Command::Forget { id } => *id,
        };
        let Some(io) = self.io.get_mut(&id) else {
            debug!(%id, ?cmd, "command for an instance without I/O");
            return;
        };
        match cmd {
            Command::SendAdvert {
                id,
                advert,
                dsts,
                checksum,
            } => {
                let mut one = vec![PendingAdvert {
                    id,
                    advert,
                    dsts,
                    checksum,
                }];
                self.send_adverts(&mut one).await;
            }
            Command::StateChanged {
                from,
                to,
                priority,
                master,
                ..
            } => info!(instance = %io.name, %from, %to, priority, master = ?master, "state change"),
            Command::SetLocalPriority { priority, .. } => {
                if let Err(e) = self.dataplane.set_local_priority(io.key, priority) {
                    debug!(error = %e, "updating local priority in the data plane failed");
                }
            }
            Command::Notify { .. } => {}
            Command::Tracking {
                effective_priority,
                fault,
                pending,
                reasons,
                ..
            } => info!(
                instance = %io.name, effective_priority, fault = fault.as_deref().unwrap_or("none"),
                pending, reasons = %reasons.join("; "), "tracking"
            ),
            Command::AddVips { vips, .. } => {
                // Its own task: the adverts and VIPs of every other
                // instance due now go out meanwhile, and all instances'
                // requests are pipelined on the netlink socket.
                let frames = self.frames.get(&io.ifindex).cloned();
                let task = tokio::spawn(add_vips(
                    self.netlink.clone(),
                    VipTarget::of(io),
                    frames,
                    vips,
                ));
                io.adding = Some(task.map(drop).boxed().shared());
            }
            Command::Announce {
                vips,
                repeat,
                interval,
                first_round_sent,
                ..
            } => {
                if let Some(frames) = self.frames.get(&io.ifindex).cloned() {
                    let first = u32::from(first_round_sent);
                    let after = io.adding.clone();
                    announce(io, frames, vips, first..repeat, interval, after);
                }
            }
            Command::RemoveVips { vips, .. } => remove_vips(&self.netlink, io, &vips).await,
            Command::RestoreVip { vip, .. } => {
                warn!(instance = %io.name, %vip,
                      "virtual IP removed by someone else while MASTER; restoring it");
                if let Err(e) = self.netlink.add_vip(io.ifindex, &vip).await {
                    error!(instance = %io.name, %vip, error = %e, "cannot restore virtual IP");
                }
            }
            Command::SetDeliverAll { on, .. } => {
                if let Err(e) = self.dataplane.set_deliver_all(io.key, on) {
                    warn!(error = %e, "updating the data plane failed");
                } else if on {
                    self.agent
                        .handle_deliver_all_set(dataplane::now(), id, &Seen(&self.dataplane));
                }
            }
            Command::Forget { .. } => {
                if let Some(mut io) = self.io.remove(&id)
                    && let Some(t) = io.announce.take()
                {
                    t.abort();
                }
            }
            Command::ApplyDataPlane => {}
        }
    }
}

/// Stops a running announcement and removes the VIPs (requests pipelined)
/// once an addition still in flight has ended.
async fn remove_vips(netlink: &crate::vips::Netlink, io: &mut Io, vips: &[VirtualIp]) {
    if let Some(t) = io.announce.take() {
        t.abort();
    }
    if let Some(adding) = io.adding.take() {
        adding.await;
    }
    let dels = vips.iter().map(|v| netlink.del_vip(io.ifindex, v));
    for (vip, res) in vips.iter().zip(futures::future::join_all(dels).await) {
        if let Err(e) = res {
            error!(instance = %io.name, %vip, error = %e, "cannot remove virtual IP");
        }
    }
}

/// What [`add_vips`] needs of an instance's [`Io`], owned.
struct VipTarget {
    name: String,
    ifindex: u32,
    mac: [u8; 6],
    ll_src: Option<Ipv6Addr>,
    garp: Arc<AtomicU64>,
}

impl VipTarget {
    fn of(io: &Io) -> Self {
        VipTarget {
            name: io.name.clone(),
            ifindex: io.ifindex,
            mac: io.mac,
            ll_src: io.ll_src,
            garp: io.counters.garp.clone(),
        }
    }
}

/// Adds the VIPs (requests pipelined on the netlink socket) and sends each
/// one's first gratuitous ARP / unsolicited NA as soon as it exists.
async fn add_vips(
    netlink: crate::vips::Netlink,
    io: VipTarget,
    frames: Option<Arc<FrameSender>>,
    vips: Vec<VirtualIp>,
) {
    let ifindex = io.ifindex;
    let netlink = &netlink;
    let mut adds: futures::stream::FuturesUnordered<_> = vips
        .iter()
        .map(|v| async move { (v, netlink.add_vip(ifindex, v).await) })
        .collect();
    while let Some((vip, res)) = adds.next().await {
        if let Err(e) = res {
            error!(instance = %io.name, %vip, error = %e, "cannot add virtual IP");
            continue;
        }
        let Some(frames) = &frames else { continue };
        for frame in tx::announce_frames(io.mac, io.ll_src, std::slice::from_ref(vip)) {
            match frames.send(&frame).await {
                Ok(()) => {
                    io.garp.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => warn!(instance = %io.name, %vip, error = %e, "announcement not sent"),
            }
        }
    }
}

/// Starts the gratuitous ARP / unsolicited NA rounds in the background
/// (they span `garp_repeat * garp_interval`; the election goes on).
fn announce(
    io: &mut Io,
    frames: Arc<FrameSender>,
    vips: Vec<VirtualIp>,
    rounds: std::ops::Range<u32>,
    interval: Duration,
    after: Option<Adding>,
) {
    if let Some(old) = io.announce.take() {
        old.abort();
    }
    let (mac, ll) = (io.mac, io.ll_src);
    let garp = io.counters.garp.clone();
    let name = io.name.clone();
    io.announce = Some(tokio::spawn(async move {
        // Never announce a VIP before it exists.
        if let Some(adding) = after {
            adding.await;
        }
        for round in rounds {
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
