//! Transmit side: advertisements on a raw IP socket, gratuitous ARP /
//! unsolicited NA frames on a packet socket.
//!
//! Source MAC: RFC 9568 §7.3 says adverts and announcements come from the
//! virtual MAC 00-00-5E-00-01-{VRID}. keepalived without `use_vmac` sends from
//! the interface's own MAC and announces the VIPs with it; we do the same, so
//! a mixed keepalived / vrrp-agent pair behaves identically and no VMAC
//! interface is needed. The kernel therefore fills in the Ethernet header of
//! adverts (raw IP socket), and announcement frames carry the interface MAC.
//!
//! DSCP: adverts are network control traffic and are marked CS6 by default
//! (DSCP 48, TOS / Traffic Class byte 0xc0), as keepalived marks them, so a
//! congested queue that honours DSCP does not hold a healthy master's adverts
//! behind bulk traffic until its backups take over. GARP / NA frames are
//! layer 2 and carry no DSCP.
//!
//! Group membership: the data plane receives adverts below IP (XDP, or a
//! packet socket with a link-layer membership), which never makes the kernel
//! send an IGMP / MLD report. A switch or Linux bridge that snoops MLD (the
//! bridge default) with a querier present then does not forward ff02::12 to
//! our port and every router believes itself alone; for IGMP the same holds
//! on switches that snoop the link-local 224.0.0.x range (a Linux bridge
//! floods it). So each [`AdvertSender`] also holds the membership of
//! 224.0.0.18 or ff02::12 on its interface: the kernel sends the reports,
//! answers queries, and re-reports after a link flap (the membership belongs
//! to the interface, which keeps it across down/up). One UDP socket per
//! (network namespace, interface, family) joins, shared by the senders
//! there and closed (leaving the group) with the last of them, so 255 VRIDs
//! on a link cost one descriptor, not 255. A UDP socket that is bound to no
//! port receives nothing, so the membership costs no per-advert copy to
//! user space, and the raw advert socket is kept out of group delivery with
//! `IP*_MULTICAST_ALL` off.

use std::{
    io,
    net::{IpAddr, Ipv6Addr, SocketAddrV4, SocketAddrV6},
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, SockFilter, Socket, Type};
use tokio::io::{Interest, unix::AsyncFd};
use vrrp_common::IPPROTO_VRRP;

use crate::{
    config::VirtualIp,
    proto::{
        announce,
        packet::{VRRP_GROUP_V4, VRRP_GROUP_V6},
    },
};

/// TX socket failures.
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    /// Creating or configuring a socket failed.
    #[error("cannot set up {what} socket on {ifname}: {source}")]
    Setup {
        /// Which socket.
        what: &'static str,
        /// Interface.
        ifname: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Sending failed.
    #[error("send to {dst} failed: {source}")]
    Send {
        /// Destination (address or interface).
        dst: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The destination is of the other address family.
    #[error("cannot send to {dst}: the socket is {family}")]
    Family {
        /// Destination.
        dst: IpAddr,
        /// The socket's family.
        family: &'static str,
    },
}

/// DSCP of adverts unless configured otherwise: CS6, network control (RFC 4594).
pub const DEFAULT_ADVERT_DSCP: u8 = 48;

/// The IPv4 TOS / IPv6 Traffic Class byte for `dscp`: the DSCP in the upper
/// six bits, ECN (the lower two) left to the network. `dscp` above 63 is cut
/// to its six bits (the config rejects it before).
pub fn dscp_to_tos(dscp: u8) -> u8 {
    (dscp & 0x3f) << 2
}

/// Sends VRRP messages (the bytes from `proto::packet::Advert::emit`) from
/// one interface. TTL / hop limit 255 as RFC 9568 §5.1.1.3 / §5.1.2.3 require.
pub struct AdvertSender {
    sock: AsyncFd<Socket>,
    src: IpAddr,
    ifindex: u32,
    /// Holds the IGMP / MLD membership of the VRRP group on the interface
    /// for as long as the sender lives (see the module doc).
    _group: Arc<GroupMembership>,
}

impl AdvertSender {
    /// A raw IP socket (protocol 112) bound to `ifname` and to `src` (the
    /// interface's primary IPv4 address, or its IPv6 link-local address),
    /// with multicast loopback off, sending with DSCP
    /// [`DEFAULT_ADVERT_DSCP`] until [`AdvertSender::set_dscp`]; and the
    /// membership of the VRRP group of `src`'s family on the interface.
    pub fn new(ifname: &str, ifindex: u32, src: IpAddr) -> Result<AdvertSender, TxError> {
        let setup = |source| TxError::Setup {
            what: "advert",
            ifname: ifname.to_owned(),
            source,
        };
        let domain = if src.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let sock = Socket::new(
            domain,
            Type::RAW,
            Some(Protocol::from(i32::from(IPPROTO_VRRP))),
        )
        .map_err(setup)?;
        sock.bind_device(Some(ifname.as_bytes())).map_err(setup)?;
        // Send-only: drop every packet the kernel would queue to it (a raw
        // socket gets a copy of every received VRRP packet otherwise).
        sock.attach_filter(&[SockFilter::new(0x06, 0, 0, 0)])
            .map_err(setup)?; // BPF_RET|BPF_K 0
        match src {
            IpAddr::V4(a) => {
                sock.set_ttl_v4(255).map_err(setup)?;
                sock.set_multicast_ttl_v4(255).map_err(setup)?;
                sock.set_multicast_loop_v4(false).map_err(setup)?;
                sock.set_multicast_if_v4(&a).map_err(setup)?;
                sock.set_multicast_all_v4(false).map_err(setup)?;
                sock.bind(&SockAddr::from(SocketAddrV4::new(a, 0)))
                    .map_err(setup)?;
            }
            IpAddr::V6(a) => {
                sock.set_unicast_hops_v6(255).map_err(setup)?;
                sock.set_multicast_hops_v6(255).map_err(setup)?;
                sock.set_multicast_loop_v6(false).map_err(setup)?;
                sock.set_multicast_if_v6(ifindex).map_err(setup)?;
                // Only a saving (kernels before 4.20 lack the option): a
                // copy of each group advert dropped by the filter above.
                let _ = sock.set_multicast_all_v6(false);
                sock.bind(&SockAddr::from(SocketAddrV6::new(
                    a,
                    0,
                    0,
                    scope_for(&a, ifindex),
                )))
                .map_err(setup)?;
            }
        }
        set_dscp(&sock, src, DEFAULT_ADVERT_DSCP).map_err(setup)?;
        sock.set_nonblocking(true).map_err(setup)?;
        let group = GroupMembership::get(domain, ifindex).map_err(|source| TxError::Setup {
            what: "VRRP group membership",
            ifname: ifname.to_owned(),
            source,
        })?;
        // SAFETY: `sock` owns a valid open file descriptor, which AsyncFd takes
        // ownership of; nothing else closes or replaces it.
        let sock = unsafe { AsyncFd::register_with_interest(sock, Interest::WRITABLE) }
            .map_err(|e| setup(e.into()))?;
        Ok(AdvertSender {
            sock,
            src,
            ifindex,
            _group: group,
        })
    }

    /// Sets the DSCP (0..=63) of the adverts sent from now on.
    pub fn set_dscp(&self, dscp: u8) -> io::Result<()> {
        set_dscp(self.sock.get_ref(), self.src, dscp)
    }

    /// The TOS / Traffic Class byte the socket sends with.
    pub fn tos(&self) -> io::Result<u8> {
        let sock = self.sock.get_ref();
        let tos = if self.src.is_ipv4() {
            sock.tos_v4()?
        } else {
            sock.tclass_v6()?
        };
        Ok(u8::try_from(tos).unwrap_or(u8::MAX))
    }

    /// The source address adverts carry.
    pub fn src(&self) -> IpAddr {
        self.src
    }

    /// Sends one VRRP message to `dst` (224.0.0.18, ff02::12 or a unicast peer).
    pub async fn send(&self, dst: IpAddr, msg: &[u8]) -> Result<(), TxError> {
        let to: SockAddr = match (dst, self.src) {
            (IpAddr::V4(d), IpAddr::V4(_)) => SocketAddrV4::new(d, 0).into(),
            (IpAddr::V6(d), IpAddr::V6(_)) => {
                SocketAddrV6::new(d, 0, 0, scope_for(&d, self.ifindex)).into()
            }
            _ => {
                return Err(TxError::Family {
                    dst,
                    family: if self.src.is_ipv4() { "IPv4" } else { "IPv6" },
                });
            }
        };
        let send_err = |source| TxError::Send {
            dst: dst.to_string(),
            source,
        };
        loop {
            let mut guard = self.sock.writable().await.map_err(send_err)?;
            match guard.try_io(|s| s.get_ref().send_to(msg, &to)) {
                Ok(r) => return r.map(|_| ()).map_err(send_err),
                Err(_would_block) => continue,
            }
        }
    }
}

/// The membership of 224.0.0.18 (IPv4) or ff02::12 (IPv6) on one
/// interface: a UDP socket bound to no port; dropping it leaves the group.
struct GroupMembership {
    _sock: Socket,
}

/// (network namespace inode, ifindex, IPv6) of a membership.
type GroupKey = (u64, u32, bool);

/// Memberships in use, shared by the senders of one interface and family.
static GROUPS: Mutex<Vec<(GroupKey, Weak<GroupMembership>)>> = Mutex::new(Vec::new());

impl GroupMembership {
    /// The membership for `ifindex` in the calling thread's network
    /// namespace, joined now unless a live sender already holds it.
    fn get(domain: Domain, ifindex: u32) -> io::Result<Arc<GroupMembership>> {
        // Without /proc the daemon's one namespace is all there is.
        let netns = std::fs::metadata("/proc/thread-self/ns/net").map_or(0, |m| m.ino());
        let key = (netns, ifindex, domain == Domain::IPV6);
        let mut groups = GROUPS.lock().unwrap_or_else(PoisonError::into_inner);
        groups.retain(|(_, g)| g.strong_count() > 0);
        if let Some(g) = groups
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, g)| g.upgrade())
        {
            return Ok(g);
        }
        let sock = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        if domain == Domain::IPV4 {
            sock.join_multicast_v4_n(&VRRP_GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))?;
        } else {
            sock.join_multicast_v6(&VRRP_GROUP_V6, ifindex)?;
        }
        let g = Arc::new(GroupMembership { _sock: sock });
        groups.push((key, Arc::downgrade(&g)));
        Ok(g)
    }
}

/// IP_TOS or IPV6_TCLASS, by the family of the socket's source `src`.
fn set_dscp(sock: &Socket, src: IpAddr, dscp: u8) -> io::Result<()> {
    let tos = u32::from(dscp_to_tos(dscp));
    if src.is_ipv4() {
        sock.set_tos_v4(tos)
    } else {
        sock.set_tclass_v6(tos)
    }
}

/// Link-local and multicast link-scope destinations need the interface as scope id.
fn scope_for(a: &Ipv6Addr, ifindex: u32) -> u32 {
    let s = a.segments()[0];
    if (s & 0xffc0) == 0xfe80 || (s & 0xff0f) == 0xff02 {
        ifindex
    } else {
        0
    }
}

/// Sends whole Ethernet frames (gratuitous ARP, unsolicited NA) on one interface.
pub struct FrameSender {
    sock: AsyncFd<Socket>,
    ifname: String,
}

impl FrameSender {
    /// An AF_PACKET raw socket bound to `ifindex`; protocol 0 so it receives nothing.
    pub fn new(ifname: &str, ifindex: u32) -> Result<FrameSender, TxError> {
        let setup = |source| TxError::Setup {
            what: "packet",
            ifname: ifname.to_owned(),
            source,
        };
        let sock =
            Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0))).map_err(setup)?;
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = 0;
        sll.sll_ifindex =
            i32::try_from(ifindex).map_err(|_| setup(io::ErrorKind::InvalidInput.into()))?;
        // SAFETY: the fd is a valid AF_PACKET socket and `sll` is a fully
        // initialised sockaddr_ll whose size we pass.
        let rc = unsafe {
            libc::bind(
                sock.as_raw_fd(),
                (&raw const sll).cast::<libc::sockaddr>(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(setup(io::Error::last_os_error()));
        }
        sock.set_nonblocking(true).map_err(setup)?;
        // SAFETY: `sock` owns a valid open file descriptor, which AsyncFd takes
        // ownership of; nothing else closes or replaces it.
        let sock = unsafe { AsyncFd::register_with_interest(sock, Interest::WRITABLE) }
            .map_err(|e| setup(e.into()))?;
        Ok(FrameSender {
            sock,
            ifname: ifname.to_owned(),
        })
    }

    /// Sends one frame as is.
    pub async fn send(&self, frame: &[u8]) -> Result<(), TxError> {
        let send_err = |source| TxError::Send {
            dst: self.ifname.clone(),
            source,
        };
        loop {
            let mut guard = self.sock.writable().await.map_err(send_err)?;
            match guard.try_io(|s| s.get_ref().send(frame)) {
                Ok(r) => return r.map(|_| ()).map_err(send_err),
                Err(_would_block) => continue,
            }
        }
    }

    /// Announces `vips` from `mac`: `repeat` rounds, `interval` apart, of one
    /// gratuitous ARP (IPv4) or unsolicited NA (IPv6, from `ll_src`) per VIP
    /// (RFC 9568 §6.4.1 / §6.4.2 on becoming Active). Returns frames sent;
    /// stops at the first send error.
    pub async fn announce(
        &self,
        mac: [u8; 6],
        ll_src: Option<Ipv6Addr>,
        vips: &[VirtualIp],
        repeat: u32,
        interval: Duration,
    ) -> Result<u64, TxError> {
        let frames = announce_frames(mac, ll_src, vips);
        let mut sent = 0;
        for round in 0..repeat {
            if round > 0 && !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
            for f in &frames {
                self.send(f).await?;
                sent += 1;
            }
        }
        Ok(sent)
    }
}

/// The announcement frames for `vips`: a gratuitous ARP per IPv4 VIP and an
/// unsolicited NA per IPv6 VIP (source: `ll_src`, else the unspecified address
/// is not allowed for NAs, so IPv6 VIPs are skipped without it).
pub fn announce_frames(mac: [u8; 6], ll_src: Option<Ipv6Addr>, vips: &[VirtualIp]) -> Vec<Vec<u8>> {
    vips.iter()
        .filter_map(|v| match v.addr {
            IpAddr::V4(a) => Some(announce::gratuitous_arp(mac, a)),
            IpAddr::V6(a) => ll_src.map(|src| announce::unsolicited_na(mac, src, a)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The DSCP goes in the upper six bits; the ECN bits stay clear.
    #[test]
    fn dscp_maps_to_the_tos_byte() {
        assert_eq!(dscp_to_tos(DEFAULT_ADVERT_DSCP), 0xc0, "CS6");
        assert_eq!(dscp_to_tos(46), 0xb8, "EF");
        assert_eq!(dscp_to_tos(0), 0);
        assert_eq!(dscp_to_tos(63), 0xfc);
    }
}
