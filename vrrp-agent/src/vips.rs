//! Interfaces and virtual IPs through rtnetlink: look up an interface, list,
//! add and remove addresses, and watch link / address changes.
//!
//! Everything that changes kernel addresses is here, so a reader looking for
//! "who adds the VIP" finds one place.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::{Stream, StreamExt, TryStreamExt};
use rtnetlink::{
    Handle,
    constants::{RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK},
    packet_core::{NetlinkMessage, NetlinkPayload},
    packet_route::{
        RouteNetlinkMessage,
        address::{AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope},
        link::{LinkAttribute, LinkFlags, LinkMessage},
    },
    sys::{AsyncSocket, SocketAddr},
};

use crate::config::VirtualIp;

/// Netlink failures.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// Opening the netlink socket failed.
    #[error("cannot open a netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    /// The interface does not exist.
    #[error("interface `{0}` does not exist")]
    NoSuchInterface(String),
    /// A request failed.
    #[error("netlink {op} failed: {source}")]
    Request {
        /// What was attempted.
        op: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
}

/// What the agent needs to know about an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Hardware address, when it is a 6-byte (Ethernet) one.
    pub mac: Option<[u8; 6]>,
    /// Administratively up (IFF_UP).
    pub admin_up: bool,
    /// Carrier present (IFF_LOWER_UP, else IFF_RUNNING).
    pub carrier: bool,
}

impl LinkInfo {
    /// Usable for VRRP: admin up and with carrier (what keepalived checks, IFF_UP && IFF_RUNNING).
    pub fn is_up(&self) -> bool {
        self.admin_up && self.carrier
    }
}

/// One address on an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddr {
    /// Interface index.
    pub ifindex: u32,
    /// The address (IFA_LOCAL for IPv4 point-to-point, else IFA_ADDRESS).
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// IFA_F_SECONDARY: not the primary address of its subnet.
    pub secondary: bool,
    /// IFA_F_TENTATIVE: IPv6 DAD not finished (cannot be used as source yet).
    pub tentative: bool,
    /// IFA_F_DADFAILED.
    pub dad_failed: bool,
    /// Link scope (e.g. fe80::/10).
    pub link_scope: bool,
}

/// A change reported by the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// A link appeared or changed (flags, carrier, MAC, name).
    Link(LinkInfo),
    /// A link was removed.
    LinkRemoved {
        /// Its index.
        index: u32,
        /// Its name, when the kernel said.
        name: Option<String>,
    },
    /// An address was added.
    AddrAdded(IfAddr),
    /// An address was removed (by us or by someone else).
    AddrRemoved(IfAddr),
}

/// A netlink route socket for requests.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens a route netlink socket and spawns its I/O task on the current tokio runtime.
    pub fn new() -> Result<Netlink, NetlinkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// Looks an interface up by name.
    pub async fn link_by_name(&self, name: &str) -> Result<LinkInfo, NetlinkError> {
        let mut links = self
            .handle
            .clone()
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(link_info(&msg)),
            Ok(None) => Err(NetlinkError::NoSuchInterface(name.to_owned())),
            Err(e) if errno(&e) == Some(libc::ENODEV) => {
                Err(NetlinkError::NoSuchInterface(name.to_owned()))
            }
            Err(source) => Err(NetlinkError::Request {
                op: format!("get link {name}"),
                source,
            }),
        }
    }

    /// Looks an interface up by index.
    pub async fn link_by_index(&self, index: u32) -> Result<LinkInfo, NetlinkError> {
        let mut links = self
            .handle
            .clone()
            .link()
            .get()
            .match_index(index)
            .execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(link_info(&msg)),
            Ok(None) => Err(NetlinkError::NoSuchInterface(format!("#{index}"))),
            Err(e) if errno(&e) == Some(libc::ENODEV) => {
                Err(NetlinkError::NoSuchInterface(format!("#{index}")))
            }
            Err(source) => Err(NetlinkError::Request {
                op: format!("get link #{index}"),
                source,
            }),
        }
    }

    /// Addresses on one interface, in the kernel's order (primary before secondary).
    pub async fn addresses(&self, ifindex: u32) -> Result<Vec<IfAddr>, NetlinkError> {
        let msgs: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute()
            .try_collect()
            .await
            .map_err(|source| NetlinkError::Request {
                op: format!("list addresses of #{ifindex}"),
                source,
            })?;
        Ok(msgs.iter().filter_map(if_addr).collect())
    }

    /// Adds a VIP. Already present is success. IPv6 VIPs are added with
    /// IFA_F_NODAD: the address moves between routers, and duplicate address
    /// detection would keep it unusable for a second after every failover.
    pub async fn add_vip(&self, ifindex: u32, vip: &VirtualIp) -> Result<(), NetlinkError> {
        let mut req = self.handle.address().add(ifindex, vip.addr, vip.prefix_len);
        if vip.addr.is_ipv6() {
            req.message_mut().header.flags |= AddressHeaderFlags::Nodad;
        }
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(source) => Err(NetlinkError::Request {
                op: format!("add {vip} to #{ifindex}"),
                source,
            }),
        }
    }

    /// Removes a VIP. Already absent is success.
    pub async fn del_vip(&self, ifindex: u32, vip: &VirtualIp) -> Result<(), NetlinkError> {
        let msg = match vip.addr {
            IpAddr::V4(a) => rtnetlink::AddressMessageBuilder::<Ipv4Addr>::new()
                .index(ifindex)
                .address(a, vip.prefix_len)
                .build(),
            IpAddr::V6(a) => rtnetlink::AddressMessageBuilder::<Ipv6Addr>::new()
                .index(ifindex)
                .address(a, vip.prefix_len)
                .build(),
        };
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    errno(&e),
                    Some(libc::EADDRNOTAVAIL | libc::ENOENT | libc::ENODEV)
                ) =>
            {
                Ok(())
            }
            Err(source) => Err(NetlinkError::Request {
                op: format!("delete {vip} from #{ifindex}"),
                source,
            }),
        }
    }
}

/// The interface's primary IPv4 address: the first non-secondary one that
/// is not a VIP (the advert source and tie-break address, RFC 3768 §5.1.1.1).
pub fn primary_ipv4(addrs: &[IfAddr], vips: &[VirtualIp]) -> Option<Ipv4Addr> {
    addrs.iter().find_map(|a| match a.addr {
        IpAddr::V4(v4) if !a.secondary && !vips.iter().any(|v| v.addr == a.addr) => Some(v4),
        _ => None,
    })
}

/// The interface's IPv6 link-local address, usable as a source (DAD done);
/// RFC 9568 §5.1.2.1: IPv6 adverts are sent from it.
pub fn link_local_ipv6(addrs: &[IfAddr], vips: &[VirtualIp]) -> Option<Ipv6Addr> {
    addrs.iter().find_map(|a| match a.addr {
        IpAddr::V6(v6)
            if (v6.segments()[0] & 0xffc0) == 0xfe80
                && !a.tentative
                && !a.dad_failed
                && !vips.iter().any(|v| v.addr == a.addr) =>
        {
            Some(v6)
        }
        _ => None,
    })
}

/// Link and address change notifications (RTMGRP_LINK, RTMGRP_IPV4_IFADDR,
/// RTMGRP_IPV6_IFADDR). Also a [`Stream`].
pub struct NetEvents {
    rx: futures::channel::mpsc::UnboundedReceiver<(
        NetlinkMessage<RouteNetlinkMessage>,
        SocketAddr,
    )>,
    conn: tokio::task::JoinHandle<()>,
}

impl NetEvents {
    /// The next event; `None` when the socket failed (the caller should then
    /// resubscribe and resynchronise with a full dump, since events were lost).
    pub async fn next(&mut self) -> Option<NetEvent> {
        loop {
            let (msg, _) = self.rx.next().await?;
            if let Some(ev) = event(msg) {
                return Some(ev);
            }
        }
    }
}

impl Stream for NetEvents {
    type Item = NetEvent;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<NetEvent>> {
        loop {
            match self.rx.poll_next_unpin(cx) {
                std::task::Poll::Ready(Some((msg, _))) => {
                    if let Some(ev) = event(msg) {
                        return std::task::Poll::Ready(Some(ev));
                    }
                }
                std::task::Poll::Ready(None) => return std::task::Poll::Ready(None),
                std::task::Poll::Pending => return std::task::Poll::Pending,
            }
        }
    }
}

impl Drop for NetEvents {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

/// Subscribes to link and IPv4/IPv6 address changes (spawns the socket's
/// I/O task on the current tokio runtime; dropping the [`NetEvents`] ends it).
pub fn subscribe() -> Result<NetEvents, NetlinkError> {
    let (mut conn, _handle, rx) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
    let groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
    conn.socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, groups))
        .map_err(NetlinkError::Socket)?;
    Ok(NetEvents {
        rx,
        conn: tokio::spawn(conn),
    })
}

fn event(msg: NetlinkMessage<RouteNetlinkMessage>) -> Option<NetEvent> {
    let NetlinkPayload::InnerMessage(m) = msg.payload else {
        return None;
    };
    match m {
        RouteNetlinkMessage::NewLink(l) => Some(NetEvent::Link(link_info(&l))),
        RouteNetlinkMessage::DelLink(l) => {
            let info = link_info(&l);
            Some(NetEvent::LinkRemoved {
                index: info.index,
                name: Some(info.name).filter(|n| !n.is_empty()),
            })
        }
        RouteNetlinkMessage::NewAddress(a) => if_addr(&a).map(NetEvent::AddrAdded),
        RouteNetlinkMessage::DelAddress(a) => if_addr(&a).map(NetEvent::AddrRemoved),
        _ => None,
    }
}

fn link_info(msg: &LinkMessage) -> LinkInfo {
    let mut name = String::new();
    let mut mac = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name.clone_from(n),
            LinkAttribute::Address(a) => mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
            _ => {}
        }
    }
    let flags = msg.header.flags;
    LinkInfo {
        index: msg.header.index,
        name,
        mac,
        admin_up: flags.contains(LinkFlags::Up),
        carrier: flags.contains(LinkFlags::LowerUp) || flags.contains(LinkFlags::Running),
    }
}

fn if_addr(msg: &AddressMessage) -> Option<IfAddr> {
    let mut address = None;
    let mut local = None;
    let mut ext_flags = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Flags(f) => ext_flags = Some(f.bits()),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
    // point-to-point links (and equal to IFA_LOCAL otherwise).
    let addr = local.or(address)?;
    let flags = ext_flags.unwrap_or(u32::from(msg.header.flags.bits()));
    Some(IfAddr {
        ifindex: msg.header.index,
        addr,
        prefix_len: msg.header.prefix_len,
        secondary: flags & 0x01 != 0,
        tentative: flags & 0x40 != 0,
        dad_failed: flags & 0x08 != 0,
        link_scope: msg.header.scope == AddressScope::Link,
    })
}

/// The errno of a netlink error answer.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}
