//! The few AF_PACKET socket calls the data plane needs, with their unsafe
//! confined here.

use std::{
    io,
    mem::size_of,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

/// Ethernet multicast address of 224.0.0.18 (RFC 1112 §6.4 mapping).
pub(crate) const MAC_VRRP_V4: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
/// Ethernet multicast address of ff02::12 (RFC 2464 §7 mapping).
pub(crate) const MAC_VRRP_V6: [u8; 6] = [0x33, 0x33, 0x00, 0x00, 0x00, 0x12];

const ETH_P_ALL: u16 = 0x0003;

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    let len = libc::socklen_t::try_from(size_of::<T>()).map_err(io::Error::other)?;
    // SAFETY: `val` points to a live, initialised T of `len` bytes for the
    // duration of the call; the fd is owned and open.
    check(unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (val as *const T).cast(), len) })
}

/// An AF_PACKET raw socket that receives nothing yet (protocol 0), so a
/// filter can be attached before any frame is queued.
pub(crate) fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with constant arguments; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds an Ethernet multicast address to the interface's receive filter for
/// as long as the socket lives (the kernel refcounts it). Needed on real
/// NICs so 224.0.0.18 / ff02::12 frames reach XDP or the socket at all.
pub(crate) fn add_multicast(fd: &OwnedFd, ifindex: u32, mac: [u8; 6]) -> io::Result<()> {
    let mut mr = libc::packet_mreq {
        mr_ifindex: i32::try_from(ifindex).map_err(io::Error::other)?,
        mr_type: libc::PACKET_MR_MULTICAST as u16,
        mr_alen: 6,
        mr_address: [0; 8],
    };
    mr.mr_address[..6].copy_from_slice(&mac);
    setsockopt(fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mr)
}

/// Removes a membership added by [`add_multicast`].
pub(crate) fn drop_multicast(fd: &OwnedFd, ifindex: u32, mac: [u8; 6]) -> io::Result<()> {
    let mut mr = libc::packet_mreq {
        mr_ifindex: i32::try_from(ifindex).map_err(io::Error::other)?,
        mr_type: libc::PACKET_MR_MULTICAST as u16,
        mr_alen: 6,
        mr_address: [0; 8],
    };
    mr.mr_address[..6].copy_from_slice(&mac);
    setsockopt(fd, libc::SOL_PACKET, libc::PACKET_DROP_MEMBERSHIP, &mr)
}

/// Classic BPF: accept untagged IPv4 with protocol 112 and IPv6 with next
/// header 112, drop everything else in the kernel, so the socket path does
/// not copy all traffic to userspace.
pub(crate) fn attach_vrrp_filter(fd: &OwnedFd) -> io::Result<()> {
    const fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
        libc::sock_filter { code, jt, jf, k }
    }
    const LDH_ABS: u16 = 0x28; // BPF_LD | BPF_H | BPF_ABS
    const LDB_ABS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let mut prog = [
        op(LDH_ABS, 0, 0, 12),   // 0: ethertype
        op(JEQ_K, 0, 2, 0x0800), // 1: IPv4? else 4
        op(LDB_ABS, 0, 0, 23),   // 2: IPv4 protocol
        op(JEQ_K, 3, 4, 112),    // 3: VRRP -> 7 accept, else 8 drop
        op(JEQ_K, 0, 3, 0x86dd), // 4: IPv6? else 8
        op(LDB_ABS, 0, 0, 20),   // 5: IPv6 next header
        op(JEQ_K, 0, 1, 112),    // 6: VRRP -> 7, else 8
        op(RET_K, 0, 0, 0xffff), // 7: accept
        op(RET_K, 0, 0, 0),      // 8: drop
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

/// Skips frames the host itself sends (our own adverts), Linux >= 4.20.
pub(crate) fn ignore_outgoing(fd: &OwnedFd) -> io::Result<()> {
    setsockopt(fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &1i32)
}

/// Kernel receive timestamps as `SCM_TIMESTAMPNS` control messages.
pub(crate) fn enable_timestamps(fd: &OwnedFd) -> io::Result<()> {
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &1i32)
}

/// Starts receiving every protocol on every interface (the filter decides).
pub(crate) fn bind_all(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ETH_P_ALL.to_be();
    sll.sll_ifindex = 0;
    let len =
        libc::socklen_t::try_from(size_of::<libc::sockaddr_ll>()).map_err(io::Error::other)?;
    // SAFETY: `sll` is a valid sockaddr_ll of `len` bytes; the fd is open.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            len,
        )
    })
}

/// One received frame.
pub(crate) struct Frame {
    pub len: usize,
    pub ifindex: u32,
    pub pkttype: u8,
    /// `CLOCK_REALTIME` ns from `SCM_TIMESTAMPNS`, if present.
    pub ts_real_ns: Option<u64>,
}

/// Receives one frame without blocking; `Ok(None)` when the queue is empty.
pub(crate) fn recv_frame(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<Option<Frame>> {
    use nix::sys::socket::{ControlMessageOwned, LinkAddr, MsgFlags, recvmsg};
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = loop {
        match recvmsg::<LinkAddr>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
        ) {
            Ok(m) => break m,
            Err(nix::errno::Errno::EAGAIN) => return Ok(None),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut ts_real_ns = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmTimestampns(ts) = c {
                let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
                let nanos = u64::try_from(ts.tv_nsec()).unwrap_or(0);
                ts_real_ns = Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos));
            }
        }
    }
    let (ifindex, pkttype) = msg
        .address
        .map(|a| (u32::try_from(a.ifindex()).unwrap_or(0), a.pkttype()))
        .unwrap_or((0, 0));
    Ok(Some(Frame {
        len: msg.bytes,
        ifindex,
        pkttype,
        ts_real_ns,
    }))
}

/// The interface name of an index, for logs.
pub fn ifname(ifindex: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes as if_indextoname requires; the
    // returned pointer (if non-null) points into buf, NUL-terminated.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return format!("if#{ifindex}");
    }
    // SAFETY: non-null result is the NUL-terminated name written into buf.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

/// The index of an interface name in the current network namespace.
pub fn ifindex(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("interface {name:?}: {e}"),
        )
    })
}
