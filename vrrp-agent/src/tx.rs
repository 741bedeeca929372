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
    os::{
        fd::{AsFd, AsRawFd},
        unix::fs::MetadataExt,
    },
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, SockFilter, Socket, Type};
use tokio::io::{Interest, unix::AsyncFd};
use vrrp_common::IPPROTO_VRRP;

use crate::{
    config::VirtualIp,
    proto::{
        Advert, EmitError, V3Checksum, announce,
        auth::{self, Password},
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
///
/// The raw socket is shared by every sender of one (network namespace,
/// interface, source address, DSCP), like the group membership: 255 VRIDs
/// on a link send through one socket, so [`send_batch`] can hand the
/// adverts that fall due together to the kernel in one `sendmmsg`.
pub struct AdvertSender {
    sock: Arc<AdvertSocket>,
    ifname: String,
    /// Holds the IGMP / MLD membership of the VRRP group on the interface
    /// for as long as the sender lives (see the module doc).
    _group: Arc<GroupMembership>,
}

/// One raw advert socket and what it is bound to.
///
/// Non-blocking, and in the reactor only while a send waits for buffer
/// space ([`AdvertSocket::writable`]): registered for good, every advert
/// sent would wake the loop once more for the EPOLLOUT edge it causes.
struct AdvertSocket {
    sock: Socket,
    src: IpAddr,
    ifindex: u32,
    dscp: u8,
}

/// (network namespace inode, ifindex, source, DSCP) of an advert socket.
type SocketKey = (u64, u32, IpAddr, u8);

/// Advert sockets in use, shared by the senders with one [`SocketKey`].
static SOCKETS: Mutex<Vec<(SocketKey, Weak<AdvertSocket>)>> = Mutex::new(Vec::new());

/// The inode of the calling thread's network namespace (0 without /proc:
/// the daemon's one namespace is all there is).
fn netns_inode() -> u64 {
    std::fs::metadata("/proc/thread-self/ns/net").map_or(0, |m| m.ino())
}

impl AdvertSocket {
    /// The socket for `(ifindex, src, dscp)` in the calling thread's
    /// namespace, opened now unless a live sender already holds it.
    fn get(ifname: &str, ifindex: u32, src: IpAddr, dscp: u8) -> Result<Arc<Self>, TxError> {
        let key = (netns_inode(), ifindex, src, dscp);
        let mut socks = SOCKETS.lock().unwrap_or_else(PoisonError::into_inner);
        socks.retain(|(_, s)| s.strong_count() > 0);
        if let Some(s) = socks
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, s)| s.upgrade())
        {
            return Ok(s);
        }
        let s = Arc::new(Self::open(ifname, ifindex, src, dscp)?);
        socks.push((key, Arc::downgrade(&s)));
        Ok(s)
    }

    /// A raw IP socket (protocol 112) bound to `ifname` and to `src`, with
    /// multicast loopback off, sending with `dscp`.
    fn open(ifname: &str, ifindex: u32, src: IpAddr, dscp: u8) -> Result<Self, TxError> {
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
        set_dscp(&sock, src, dscp).map_err(setup)?;
        sock.set_nonblocking(true).map_err(setup)?;
        Ok(Self {
            sock,
            src,
            ifindex,
            dscp,
        })
    }

    /// The socket address of `dst`, which must be of the source's family.
    fn to(&self, dst: IpAddr) -> Result<SockAddr, TxError> {
        match (dst, self.src) {
            (IpAddr::V4(d), IpAddr::V4(_)) => Ok(SocketAddrV4::new(d, 0).into()),
            (IpAddr::V6(d), IpAddr::V6(_)) => {
                Ok(SocketAddrV6::new(d, 0, 0, scope_for(&d, self.ifindex)).into())
            }
            _ => Err(TxError::Family {
                dst,
                family: if self.src.is_ipv4() { "IPv4" } else { "IPv6" },
            }),
        }
    }

    /// Sends `msgs` (destination, bytes) with as few `sendmmsg` calls as
    /// the kernel allows, pushing one result per message onto `results`.
    async fn send_many(&self, msgs: &[(IpAddr, &[u8])], results: &mut Vec<Result<(), TxError>>) {
        let mut rest = msgs;
        while !rest.is_empty() {
            // A destination of the wrong family fails alone.
            let ok = rest.iter().take_while(|(d, _)| self.to(*d).is_ok()).count();
            if ok == 0 {
                results.push(self.to(rest[0].0).map(|_| ()));
                rest = &rest[1..];
                continue;
            }
            let (run, tail) = rest.split_at(ok);
            let addrs: Vec<SockAddr> = run.iter().filter_map(|(d, _)| self.to(*d).ok()).collect();
            let mut sent = 0;
            while sent < run.len() {
                let r = match sendmmsg(&self.sock, &run[sent..], &addrs[sent..]) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        match self.writable().await {
                            Ok(()) => continue,
                            Err(e) => Err(e),
                        }
                    }
                    r => r,
                };
                match r {
                    Ok(n) => {
                        results.extend((0..n).map(|_| Ok(())));
                        sent += n;
                    }
                    // The kernel reports the error of the first message
                    // it could not send; the next call goes on after it.
                    Err(source) => {
                        results.push(Err(TxError::Send {
                            dst: run[sent].0.to_string(),
                            source,
                        }));
                        sent += 1;
                    }
                }
            }
            rest = tail;
        }
    }
}

impl AdvertSocket {
    /// Waits until the socket has buffer space again (after EAGAIN).
    async fn writable(&self) -> io::Result<()> {
        // SAFETY: the borrowed socket stays open for the whole life of the
        // AsyncFd, which is dropped (deregistered) before this returns.
        let fd = unsafe { AsyncFd::register_with_interest(self.sock.as_fd(), Interest::WRITABLE) }
            .map_err(io::Error::from)?;
        fd.writable().await.map(|_| ())
    }
}

/// One `sendmmsg(2)` of `msgs` to `addrs` (same length); the number sent.
fn sendmmsg(sock: &Socket, msgs: &[(IpAddr, &[u8])], addrs: &[SockAddr]) -> io::Result<usize> {
    let mut iov: Vec<libc::iovec> = msgs
        .iter()
        .map(|(_, m)| libc::iovec {
            iov_base: m.as_ptr().cast_mut().cast(),
            iov_len: m.len(),
        })
        .collect();
    let mut hdrs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .zip(addrs)
        .map(|(v, a)| {
            // SAFETY: mmsghdr is plain data; all-zero is a valid empty value.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = a.as_ptr().cast_mut().cast();
            h.msg_hdr.msg_namelen = a.len();
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    let n = u32::try_from(hdrs.len()).unwrap_or(u32::MAX);
    // SAFETY: every header points at an address and an iovec that live in
    // `addrs` and `iov` until the call returns, and each iovec at a message
    // borrowed for as long; the kernel only reads them (and writes
    // msg_len in the headers, which we own).
    let r = unsafe { libc::sendmmsg(sock.as_raw_fd(), hdrs.as_mut_ptr(), n, 0) };
    usize::try_from(r).map_err(|_| io::Error::last_os_error())
}

/// One advert to send: by whom, where to, and its bytes.
pub struct Outgoing<'a> {
    /// The instance's sender.
    pub sender: &'a AdvertSender,
    /// 224.0.0.18, ff02::12 or a unicast peer.
    pub dst: IpAddr,
    /// The message (from `Advert::emit`).
    pub msg: &'a [u8],
}

/// Sends every advert of `batch`; consecutive adverts on one socket go in
/// one `sendmmsg` (at 255 instances: one system call, not 255). Returns
/// one result per advert, in order.
pub async fn send_batch(batch: &[Outgoing<'_>]) -> Vec<Result<(), TxError>> {
    let mut results = Vec::with_capacity(batch.len());
    let mut rest = batch;
    while let Some(first) = rest.first() {
        let sock = &first.sender.sock;
        let n = rest
            .iter()
            .take_while(|o| Arc::ptr_eq(&o.sender.sock, sock))
            .count();
        let (run, tail) = rest.split_at(n);
        let msgs: Vec<(IpAddr, &[u8])> = run.iter().map(|o| (o.dst, o.msg)).collect();
        sock.send_many(&msgs, &mut results).await;
        rest = tail;
    }
    results
}

impl AdvertSender {
    /// A sender from `src` (the interface's primary IPv4 address, or its
    /// IPv6 link-local address) on `ifname`, with DSCP
    /// [`DEFAULT_ADVERT_DSCP`] until [`AdvertSender::set_dscp`]; and the
    /// membership of the VRRP group of `src`'s family on the interface.
    pub fn new(ifname: &str, ifindex: u32, src: IpAddr) -> Result<AdvertSender, TxError> {
        let sock = AdvertSocket::get(ifname, ifindex, src, DEFAULT_ADVERT_DSCP)?;
        let domain = if src.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let group = GroupMembership::get(domain, ifindex).map_err(|source| TxError::Setup {
            what: "VRRP group membership",
            ifname: ifname.to_owned(),
            source,
        })?;
        Ok(AdvertSender {
            sock,
            ifname: ifname.to_owned(),
            _group: group,
        })
    }

    /// Sends the adverts from now on with DSCP `dscp` (0..=63), on the
    /// socket shared by the senders with that DSCP.
    pub fn set_dscp(&mut self, dscp: u8) -> Result<(), TxError> {
        if dscp != self.sock.dscp {
            let s = &self.sock;
            self.sock = AdvertSocket::get(&self.ifname, s.ifindex, s.src, dscp)?;
        }
        Ok(())
    }

    /// The TOS / Traffic Class byte the socket sends with.
    pub fn tos(&self) -> io::Result<u8> {
        let sock = &self.sock.sock;
        let tos = if self.sock.src.is_ipv4() {
            sock.tos_v4()?
        } else {
            sock.tclass_v6()?
        };
        Ok(u8::try_from(tos).unwrap_or(u8::MAX))
    }

    /// The source address adverts carry.
    pub fn src(&self) -> IpAddr {
        self.sock.src
    }

    /// Sends one VRRP message to `dst` (224.0.0.18, ff02::12 or a unicast peer).
    pub async fn send(&self, dst: IpAddr, msg: &[u8]) -> Result<(), TxError> {
        let mut results = Vec::with_capacity(1);
        self.sock.send_many(&[(dst, msg)], &mut results).await;
        results.pop().unwrap_or(Ok(()))
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
        let key = (netns_inode(), ifindex, domain == Domain::IPV6);
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

/// The bytes of the last advert an instance sent, per destination.
///
/// A MASTER in steady state sends the same advert every interval: same
/// priority, VIPs, source and destinations. Its bytes (header, VIP list,
/// checksum) are built once and sent again until any input changes; a
/// change of any of them builds them anew.
#[derive(Debug, Default)]
pub struct AdvertCache {
    key: Option<(Advert, IpAddr, V3Checksum, Option<Password>)>,
    msgs: Vec<(IpAddr, Vec<u8>)>,
}

impl AdvertCache {
    /// The message for `dst`: the cached bytes when `advert`, `src`,
    /// `checksum` and the VRRPv2 `password` are those they were built
    /// from, else built now (and cached).
    pub fn get(
        &mut self,
        advert: &Advert,
        src: IpAddr,
        dst: IpAddr,
        checksum: V3Checksum,
        password: Option<&Password>,
    ) -> Result<&[u8], EmitError> {
        let same = self.key.as_ref().is_some_and(|(a, s, c, p)| {
            a == advert && *s == src && *c == checksum && p.as_ref() == password
        });
        if !same {
            self.key = None;
            self.msgs.clear();
        }
        let i = match self.msgs.iter().position(|(d, _)| *d == dst) {
            Some(i) => i,
            None => {
                let mut msg = advert.emit(src, dst, checksum)?;
                if let Some(pass) = password {
                    auth::set_password(&mut msg, pass);
                }
                if self.key.is_none() {
                    self.key = Some((advert.clone(), src, checksum, password.copied()));
                }
                self.msgs.push((dst, msg));
                self.msgs.len() - 1
            }
        };
        Ok(&self.msgs[i].1)
    }

    /// The bytes last built for `dst`, if any.
    pub fn cached(&self, dst: IpAddr) -> Option<&[u8]> {
        self.msgs
            .iter()
            .find(|(d, _)| *d == dst)
            .map(|(_, m)| m.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advert(priority: u8) -> Advert {
        Advert {
            version: crate::proto::Version::V3,
            vrid: 7,
            priority,
            interval: Duration::from_millis(100),
            addrs: vec!["192.0.2.10".parse().unwrap()],
        }
    }

    /// The cache gives exactly what `emit` builds, for every change of
    /// its inputs: a stale advert on the wire would carry an old priority
    /// or VIP list.
    #[test]
    fn cached_advert_is_rebuilt_when_any_input_changes() {
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        let other_src: IpAddr = "192.0.2.2".parse().unwrap();
        let group: IpAddr = VRRP_GROUP_V4.into();
        let peer: IpAddr = "192.0.2.3".parse().unwrap();
        let mut more_vips = advert(100);
        more_vips.addrs.push("192.0.2.11".parse().unwrap());
        let mut cache = AdvertCache::default();
        let cases = [
            (advert(100), src, group, V3Checksum::default()),
            (advert(100), src, group, V3Checksum::default()),
            (advert(0), src, group, V3Checksum::default()),
            (advert(100), src, group, V3Checksum::default()),
            (advert(100), src, peer, V3Checksum::default()),
            (more_vips, src, group, V3Checksum::default()),
            (advert(100), other_src, group, V3Checksum::default()),
            (advert(100), src, group, V3Checksum::Rfc9568),
        ];
        for (a, s, d, c) in cases {
            let want = a.emit(s, d, c).unwrap();
            assert_eq!(
                cache.get(&a, s, d, c, None).unwrap(),
                want.as_slice(),
                "{a:?} {s} {d} {c:?}"
            );
        }
        // A password (VRRPv2) is part of the key too: set, changed, removed.
        let mut v2 = advert(100);
        v2.version = crate::proto::Version::V2;
        v2.interval = std::time::Duration::from_secs(1);
        let c = V3Checksum::default();
        for pass in [None, Some(*b"secret\0\0"), Some(*b"other\0\0\0"), None] {
            let mut want = v2.emit(src, group, c).unwrap();
            if let Some(p) = &pass {
                assert!(auth::set_password(&mut want, p));
            }
            assert_eq!(
                cache.get(&v2, src, group, c, pass.as_ref()).unwrap(),
                want.as_slice(),
                "{pass:?}"
            );
        }
    }

    /// The DSCP goes in the upper six bits; the ECN bits stay clear.
    #[test]
    fn dscp_maps_to_the_tos_byte() {
        assert_eq!(dscp_to_tos(DEFAULT_ADVERT_DSCP), 0xc0, "CS6");
        assert_eq!(dscp_to_tos(46), 0xb8, "EF");
        assert_eq!(dscp_to_tos(0), 0);
        assert_eq!(dscp_to_tos(63), 0xfc);
    }
}
