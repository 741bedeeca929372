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
use futures::StreamExt as _;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};
use vrrp_common::VridKey;

use super::{Daemon, Seen, dataplane_config, startup::Resolved};
use crate::{
    agent::{Agent, Command, InstanceId},
    config::{Instance, VirtualIp},
    dataplane,
    proto::{Advert, Instant, V3Checksum},
    tx::{self, AdvertSender, FrameSender},
};

/// Counters written by announcement tasks too.
#[derive(Clone, Default)]
pub(super) struct TxCounters {
    pub(super) adverts: Arc<AtomicU64>,
    pub(super) prio0: Arc<AtomicU64>,
    pub(super) garp: Arc<AtomicU64>,
}

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
    pub(super) announce: Option<JoinHandle<()>>,
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
            announce: None,
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
            if let Some(sender) = &self.sender {
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
    pub(super) fn set_dscp(&mut self, dscp: u8) -> std::io::Result<()> {
        self.advert_dscp = dscp;
        self.sender.as_ref().map_or(Ok(()), |s| s.set_dscp(dscp))
    }
}

impl Daemon {
    /// Carries out every queued command, in order (the agent emits them in
    /// the order the wire needs: the advert first).
    pub(super) async fn execute(&mut self) {
        while let Some(cmd) = self.agent.poll_command() {
            self.exec(cmd).await;
        }
    }

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
                advert,
                dsts,
                checksum,
                ..
            } => send_advert(io, &advert, &dsts, checksum).await,
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
                let frames = self.frames.get(&io.ifindex).cloned();
                add_vips(&self.netlink, io, frames.as_deref(), &vips).await;
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
                    announce(io, frames, vips, first..repeat, interval);
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

async fn send_advert(io: &Io, advert: &Advert, dsts: &[std::net::IpAddr], checksum: V3Checksum) {
    let Some(sender) = &io.sender else {
        debug!(instance = %io.name, "no advert source address; advert not sent");
        return;
    };
    let src = sender.src();
    for dst in dsts {
        let msg = match advert.emit(src, *dst, checksum) {
            Ok(mut m) => {
                if let Some(p) = &io.auth_pass {
                    crate::proto::auth::set_password(&mut m, p);
                }
                m
            }
            Err(e) => {
                error!(instance = %io.name, error = %e, "cannot build advert");
                return;
            }
        };
        match sender.send(*dst, &msg).await {
            Ok(()) => {
                io.counters.adverts.fetch_add(1, Ordering::Relaxed);
                if advert.priority == 0 {
                    io.counters.prio0.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => warn!(instance = %io.name, error = %e, "advert not sent"),
        }
    }
}

/// Stops a running announcement and removes the VIPs (requests pipelined).
async fn remove_vips(netlink: &crate::vips::Netlink, io: &mut Io, vips: &[VirtualIp]) {
    if let Some(t) = io.announce.take() {
        t.abort();
    }
    let dels = vips.iter().map(|v| netlink.del_vip(io.ifindex, v));
    for (vip, res) in vips.iter().zip(futures::future::join_all(dels).await) {
        if let Err(e) = res {
            error!(instance = %io.name, %vip, error = %e, "cannot remove virtual IP");
        }
    }
}

/// Adds the VIPs (requests pipelined on the netlink socket) and sends each
/// one's first gratuitous ARP / unsolicited NA as soon as it exists.
async fn add_vips(
    netlink: &crate::vips::Netlink,
    io: &Io,
    frames: Option<&FrameSender>,
    vips: &[VirtualIp],
) {
    let ifindex = io.ifindex;
    let mut adds: futures::stream::FuturesOrdered<_> = vips
        .iter()
        .map(|v| async move { (v, netlink.add_vip(ifindex, v).await) })
        .collect();
    let mut sent = 0;
    while let Some((vip, res)) = adds.next().await {
        if let Err(e) = res {
            error!(instance = %io.name, %vip, error = %e, "cannot add virtual IP");
            continue;
        }
        let Some(frames) = frames else { continue };
        for frame in tx::announce_frames(io.mac, io.ll_src, std::slice::from_ref(vip)) {
            match frames.send(&frame).await {
                Ok(()) => sent += 1,
                Err(e) => warn!(instance = %io.name, %vip, error = %e, "announcement not sent"),
            }
        }
    }
    io.counters.garp.fetch_add(sent, Ordering::Relaxed);
}

/// Starts the gratuitous ARP / unsolicited NA rounds in the background
/// (they span `garp_repeat * garp_interval`; the election goes on).
fn announce(
    io: &mut Io,
    frames: Arc<FrameSender>,
    vips: Vec<VirtualIp>,
    rounds: std::ops::Range<u32>,
    interval: Duration,
) {
    if let Some(old) = io.announce.take() {
        old.abort();
    }
    let (mac, ll) = (io.mac, io.ll_src);
    let garp = io.counters.garp.clone();
    let name = io.name.clone();
    io.announce = Some(tokio::spawn(async move {
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
