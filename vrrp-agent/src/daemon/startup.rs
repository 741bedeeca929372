//! Before the loop: the one-line start-up checks, resolving each instance's
//! interface, and removing VIPs a crash left behind.

use std::net::{IpAddr, Ipv6Addr};

use anyhow::Context as _;
use tracing::{error, info, warn};

use crate::{
    agent::{self, Link},
    config::{Config, Instance, VirtualIp, XdpMode},
    control,
    proto::Family,
    vips::{self, LinkInfo, Netlink},
};

/// What an instance needs to know about its interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Resolved {
    pub(super) link: LinkInfo,
    /// Advert source: primary IPv4 address or IPv6 link-local address;
    /// `None` while the interface has none (the instance waits in FAULT).
    pub(super) source: Option<IpAddr>,
    pub(super) ll_src: Option<Ipv6Addr>,
}

impl Resolved {
    /// What the agent needs of it.
    pub(super) fn agent_link(&self) -> Link {
        Link {
            ifindex: self.link.index,
            up: self.link.is_up(),
            source: self.source,
        }
    }
}

/// Looks up the instance's interface by name and its advert source. Only
/// a missing interface is an error; an interface that is down, has no IPv4
/// address yet or a tentative IPv6 link-local address resolves without a
/// source, and is resolved again when netlink reports a change.
pub(super) async fn resolve(netlink: &Netlink, inst: &Instance) -> anyhow::Result<Resolved> {
    let link = netlink
        .link_by_name(&inst.interface)
        .await
        .with_context(|| format!("instance {}: interface {}", inst.name, inst.interface))?;
    let addrs = netlink.addresses(link.index).await?;
    // An address owner's VIPs are its own addresses, usable as the source;
    // anyone else's never are (they move with the master).
    let not_source: &[VirtualIp] = if agent::removes_stale_vips(inst) {
        &inst.virtual_ips
    } else {
        &[]
    };
    let ll_src = vips::link_local_ipv6(&addrs, not_source);
    let source = match (inst.unicast_src, inst.family) {
        // Chosen explicitly: usable once it is on the interface (DAD done).
        (Some(src), _) => addrs
            .iter()
            .any(|a| a.addr == src && !a.tentative && !a.dad_failed)
            .then_some(src),
        // RFC 9568 §5.1.1.1: the primary address.
        (None, Family::V4) => vips::primary_ipv4(&addrs, not_source).map(IpAddr::V4),
        // RFC 9568 §5.1.2.1: the link-local address.
        (None, Family::V6) => ll_src.map(IpAddr::V6),
    };
    if let (None, Some(src)) = (source, inst.unicast_src) {
        info!(instance = %inst.name, interface = %inst.interface, unicast_src = %src,
              "unicast_src is not (yet) a usable address of the interface; waiting in FAULT");
    } else if source.is_none() {
        info!(instance = %inst.name, interface = %inst.interface,
              "no advert source address on the interface yet; waiting in FAULT");
    }
    Ok(Resolved {
        link,
        source,
        ll_src,
    })
}

/// Removes the instance's VIPs found on the interface: a crash may have
/// left them, and no two routers may answer for them. Not an address
/// owner's ([`agent::removes_stale_vips`]).
pub(super) async fn remove_stale_vips(netlink: &Netlink, inst: &Instance, ifindex: u32) {
    if !agent::removes_stale_vips(inst) {
        return;
    }
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
