//! Advert sockets (one raw socket per namespace, interface, source and
//! DSCP, shared by the senders there) and the VRRP group memberships they
//! hold (see the module doc of `tx`).

use std::{
    io,
    net::{IpAddr, Ipv6Addr, SocketAddrV4, SocketAddrV6},
    os::{
        fd::{AsFd, AsRawFd},
        unix::fs::MetadataExt,
    },
    sync::{Arc, Mutex, PoisonError, Weak},
};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, SockFilter, Socket, Type};
use tokio::io::{Interest, unix::AsyncFd};
use vrrp_common::IPPROTO_VRRP;

use crate::proto::packet::{VRRP_GROUP_V4, VRRP_GROUP_V6};

use super::{DEFAULT_ADVERT_DSCP, TxError, dscp_to_tos};

/// Sends VRRP messages (the bytes from `proto::packet::Advert::emit`) from
/// one interface. TTL / hop limit 255 as RFC 9568 §5.1.1.3 / §5.1.2.3 require.
///
/// The raw socket is shared by every sender of one (network namespace,
/// interface, source address, DSCP), like the group membership: 255 VRIDs
/// on a link send through one socket, so [`send_batch`] can hand the
/// adverts that fall due together to the kernel in one `sendmmsg`.
///
/// [`send_batch`]: super::send_batch
pub struct AdvertSender {
    pub(super) sock: Arc<AdvertSocket>,
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
pub(super) struct AdvertSocket {
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
    pub(super) async fn send_many(
        &self,
        msgs: &[(IpAddr, &[u8])],
        results: &mut Vec<Result<(), TxError>>,
    ) {
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
