//! What the benchmarks see and send on the wire, from threads that entered a
//! lab namespace: a capture of VRRP adverts and ARP on the bridge (kernel
//! receive timestamps), a client probing the VIP with ICMP echo every
//! millisecond, and a flood generator (AF_PACKET). All times are
//! CLOCK_REALTIME nanoseconds, the clock of the kernel's packet timestamps.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::lab::enter_netns;

/// Now, CLOCK_REALTIME, in nanoseconds.
pub fn now_ns() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The source MAC of every flood frame; the capture filters it out in the
/// kernel so that a flood does not cost the capture anything.
pub const FLOOD_MAC: [u8; 6] = [0x02, 0x66, 0x6c, 0x6f, 0x6f, 0x64];

/// One captured frame of interest.
#[derive(Clone, Copy, Debug)]
pub enum Seen {
    /// A VRRP advertisement.
    Advert {
        /// Kernel receive time (ns).
        t: i64,
        /// IPv4 source.
        src: Ipv4Addr,
        /// VRID.
        vrid: u8,
        /// Advertised priority.
        prio: u8,
    },
    /// A VRRP advertisement over IPv6.
    Advert6 {
        /// Kernel receive time (ns).
        t: i64,
        /// VRID.
        vrid: u8,
    },
    /// An IPv6 neighbour advertisement (how a new master announces an IPv6 VIP).
    Na {
        /// Kernel receive time (ns).
        t: i64,
        /// The target address.
        ip: Ipv6Addr,
        /// The sender's MAC (Ethernet source).
        mac: [u8; 6],
    },
    /// A gratuitous ARP (sender IP = target IP).
    Garp {
        /// Kernel receive time (ns).
        t: i64,
        /// The announced address.
        ip: Ipv4Addr,
        /// The announcing MAC.
        mac: [u8; 6],
    },
}

fn sock(domain: i32, ty: i32, proto: i32) -> anyhow::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        bail!("socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, val: &T) -> anyhow::Result<()> {
    // SAFETY: val points to a live T of the given size for the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(val).cast(),
            u32::try_from(size_of::<T>()).unwrap_or(0),
        )
    };
    if rc != 0 {
        bail!(
            "setsockopt({level}, {name}): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

fn ifindex(name: &str) -> anyhow::Result<i32> {
    let c = std::ffi::CString::new(name)?;
    // SAFETY: c is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        bail!("no interface {name}");
    }
    Ok(i32::try_from(idx)?)
}

fn packet_socket(ifname: &str, proto: u16) -> anyhow::Result<OwnedFd> {
    let fd = sock(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto.to_be()))?;
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto.to_be();
    sll.sll_ifindex = ifindex(ifname)?;
    // SAFETY: sll is a valid sockaddr_ll of the size passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::from_ref(&sll).cast(),
            u32::try_from(size_of::<libc::sockaddr_ll>())?,
        )
    };
    if rc != 0 {
        bail!(
            "bind AF_PACKET {ifname}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(fd)
}

/// Receives one datagram with its kernel timestamp (SO_TIMESTAMPNS); None on
/// timeout.
fn recv_ts(fd: &OwnedFd, buf: &mut [u8]) -> Option<(usize, i64)> {
    let mut cbuf = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is valid, fields set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&cbuf);
    // SAFETY: msg points at live buffers of the stated sizes.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
    let n = usize::try_from(n).ok()?;
    let mut t = now_ns();
    // SAFETY: walking the control buffer the kernel filled, with the libc macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                t = ts.tv_sec * 1_000_000_000 + ts.tv_nsec;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Some((n, t))
}

fn timeout(fd: &OwnedFd, d: Duration) -> anyhow::Result<()> {
    let tv = libc::timeval {
        tv_sec: libc::time_t::try_from(d.as_secs())?,
        tv_usec: libc::suseconds_t::from(d.subsec_micros()),
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)
}

/// Classic BPF: keep VRRP (IPv4 protocol 112, IPv6 next header 112), ARP and
/// IPv6 neighbour advertisements, drop frames from [`FLOOD_MAC`].
fn capture_filter() -> Vec<libc::sock_filter> {
    let f = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: u16::try_from(code).unwrap_or(0),
        jt,
        jf,
        k,
    };
    let mac_hi = u32::from(u16::from_be_bytes([FLOOD_MAC[0], FLOOD_MAC[1]]));
    let mac_lo = u32::from_be_bytes([FLOOD_MAC[2], FLOOD_MAC[3], FLOOD_MAC[4], FLOOD_MAC[5]]);
    let (ld_h, ld_w, ld_b) = (
        libc::BPF_LD | libc::BPF_H | libc::BPF_ABS,
        libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
        libc::BPF_LD | libc::BPF_B | libc::BPF_ABS,
    );
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    vec![
        f(ld_h, 0, 0, 12),     // 0: ethertype
        f(jeq, 9, 0, 0x0806),  // 1: ARP -> 11
        f(jeq, 0, 2, 0x0800),  // 2: not IPv4 -> 5
        f(ld_b, 0, 0, 23),     // 3: IP protocol
        f(jeq, 6, 11, 112),    // 4: VRRP -> 11, else drop (16)
        f(jeq, 0, 10, 0x86dd), // 5: not IPv6 -> drop
        f(ld_b, 0, 0, 20),     // 6: IPv6 next header
        f(jeq, 3, 0, 112),     // 7: VRRP -> 11
        f(jeq, 0, 7, 58),      // 8: not ICMPv6 -> drop
        f(ld_b, 0, 0, 54),     // 9: ICMPv6 type
        f(jeq, 0, 5, 136),     // 10: not a neighbour advertisement -> drop
        f(ld_w, 0, 0, 8),      // 11: source MAC bytes 2..6
        f(jeq, 0, 2, mac_lo),  // 12: differs -> accept (15)
        f(ld_h, 0, 0, 6),      // 13: source MAC bytes 0..2
        f(jeq, 1, 0, mac_hi),  // 14: flood -> drop
        f(ret, 0, 0, 0xffff),  // 15: accept
        f(ret, 0, 0, 0),       // 16: drop
    ]
}

/// A running capture on the bridge of a lab.
pub struct Capture {
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    /// Starts capturing on `ifname` in namespace `ns`.
    pub fn start(ns: &str, ifname: &str) -> anyhow::Result<Capture> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ns, ifname) = (ns.to_owned(), ifname.to_owned());
        let (tx, rx) = std::sync::mpsc::channel();
        let (s2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let fd = (|| {
                enter_netns(&ns)?;
                let fd = packet_socket(&ifname, libc::ETH_P_ALL as u16)?;
                setsockopt(&fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &1i32)?;
                setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &(8i32 << 20))?;
                timeout(&fd, Duration::from_millis(50))?;
                let mut prog = capture_filter();
                let fprog = libc::sock_fprog {
                    len: u16::try_from(prog.len())?,
                    filter: prog.as_mut_ptr(),
                };
                setsockopt(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)?;
                anyhow::Ok(fd)
            })();
            let fd = match fd {
                Ok(fd) => {
                    let _ = tx.send(Ok(()));
                    fd
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let mut buf = [0u8; 2048];
            while !stop2.load(Ordering::Relaxed) {
                let Some((n, t)) = recv_ts(&fd, &mut buf) else {
                    continue;
                };
                if let Some(s) = parse(&buf[..n], t)
                    && let Ok(mut v) = s2.lock()
                {
                    v.push(s);
                }
            }
        });
        rx.recv().context("capture thread died")??;
        Ok(Capture {
            seen,
            stop,
            thread: Some(thread),
        })
    }

    /// Everything captured so far.
    pub fn snapshot(&self) -> Vec<Seen> {
        self.seen.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Waits (up to `timeout`) for the next advert from `src` captured after
    /// this call; returns its time. Polls every 100 µs so that what follows
    /// happens at a known phase of the advert cycle.
    pub fn next_advert_from(&self, src: Ipv4Addr, timeout: Duration) -> Option<i64> {
        let start = self.seen.lock().map(|v| v.len()).unwrap_or(0);
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if let Ok(v) = self.seen.lock() {
                let hit = v.iter().skip(start).find_map(|s| match *s {
                    Seen::Advert { t, src: a, .. } if a == src => Some(t),
                    _ => None,
                });
                if hit.is_some() {
                    return hit;
                }
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        None
    }

    /// Forgets everything captured so far (keeps memory bounded between trials).
    pub fn clear(&self) {
        if let Ok(mut v) = self.seen.lock() {
            v.clear();
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn parse(f: &[u8], t: i64) -> Option<Seen> {
    let ethertype = u16::from_be_bytes([*f.get(12)?, *f.get(13)?]);
    match ethertype {
        0x0800 => {
            let ihl = usize::from(f.get(14)? & 0x0f) * 4;
            if *f.get(23)? != 112 {
                return None;
            }
            let src = Ipv4Addr::new(f[26], f[27], f[28], f[29]);
            let vrrp = f.get(14 + ihl..)?;
            Some(Seen::Advert {
                t,
                src,
                vrid: *vrrp.get(1)?,
                prio: *vrrp.get(2)?,
            })
        }
        0x86dd => {
            let v6 = |at: usize| -> Option<Ipv6Addr> {
                let b: [u8; 16] = f.get(at..at + 16)?.try_into().ok()?;
                Some(Ipv6Addr::from(b))
            };
            match *f.get(20)? {
                112 => Some(Seen::Advert6 {
                    t,
                    vrid: *f.get(55)?,
                }),
                58 if *f.get(54)? == 136 => {
                    let mut mac = [0u8; 6];
                    mac.copy_from_slice(f.get(6..12)?);
                    Some(Seen::Na {
                        t,
                        ip: v6(62)?,
                        mac,
                    })
                }
                _ => None,
            }
        }
        0x0806 => {
            let a = f.get(14..42)?;
            let spa = Ipv4Addr::new(a[14], a[15], a[16], a[17]);
            let tpa = Ipv4Addr::new(a[24], a[25], a[26], a[27]);
            if spa != tpa {
                return None;
            }
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&a[8..14]);
            Some(Seen::Garp { t, ip: spa, mac })
        }
        _ => None,
    }
}

/// A client sending ICMP echo requests to one address every `period` and
/// recording when each reply arrives.
pub struct Prober {
    replies: Arc<Mutex<Vec<i64>>>,
    sent: Arc<Mutex<Vec<i64>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Prober {
    /// Starts probing `dst` from namespace `ns`.
    pub fn start(ns: &str, dst: Ipv4Addr, period: Duration) -> anyhow::Result<Prober> {
        let replies = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let ns = ns.to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        let (r2, stop2, sent2) = (replies.clone(), stop.clone(), sent.clone());
        let id = u16::try_from(std::process::id() & 0xffff).unwrap_or(0x5151);
        let thread = std::thread::spawn(move || {
            let fd = (|| {
                enter_netns(&ns)?;
                let fd = sock(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP)?;
                setsockopt(&fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &1i32)?;
                anyhow::Ok(fd)
            })();
            let fd = match fd {
                Ok(fd) => {
                    let _ = tx.send(Ok(()));
                    fd
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            // SAFETY: sockaddr_in is plain data; all-zero is a valid value.
            let mut to: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            to.sin_family = libc::AF_INET as u16;
            to.sin_addr.s_addr = u32::from(dst).to_be();
            let mut seq: u16 = 0;
            let mut next = Instant::now();
            let mut buf = [0u8; 1500];
            while !stop2.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= next {
                    let pkt = echo_request(id, seq);
                    seq = seq.wrapping_add(1);
                    // SAFETY: pkt and `to` are live buffers of the sizes passed.
                    unsafe {
                        libc::sendto(
                            fd.as_raw_fd(),
                            pkt.as_ptr().cast(),
                            pkt.len(),
                            libc::MSG_DONTWAIT,
                            std::ptr::from_ref(&to).cast(),
                            u32::try_from(size_of::<libc::sockaddr_in>()).unwrap_or(0),
                        )
                    };
                    if let Ok(mut v) = sent2.lock() {
                        v.push(now_ns());
                    }
                    next += period;
                    if next < now {
                        next = now + period;
                    }
                    continue;
                }
                let wait = next - now;
                let mut pfd = libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // ppoll, not poll: the wait is sub-millisecond, and poll's
                // whole milliseconds would turn this into a busy loop.
                let ts = libc::timespec {
                    tv_sec: libc::time_t::try_from(wait.as_secs()).unwrap_or(1),
                    tv_nsec: libc::c_long::from(wait.subsec_nanos()),
                };
                // SAFETY: pfd is one live pollfd, ts a live timespec; no sigmask.
                let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
                if rc <= 0 {
                    continue;
                }
                while let Some((n, t)) = recv_ts_nowait(&fd, &mut buf) {
                    // IPv4 header, then ICMP echo reply (type 0) with our id.
                    let Some(ihl) = buf.first().map(|b| usize::from(b & 0x0f) * 4) else {
                        continue;
                    };
                    let icmp = buf.get(ihl..n).unwrap_or(&[]);
                    if icmp.len() >= 8
                        && icmp[0] == 0
                        && u16::from_be_bytes([icmp[4], icmp[5]]) == id
                        && let Ok(mut v) = r2.lock()
                    {
                        v.push(t);
                    }
                }
            }
        });
        rx.recv().context("prober thread died")??;
        Ok(Prober {
            replies,
            sent,
            stop,
            thread: Some(thread),
        })
    }

    /// Arrival times of the replies received so far.
    pub fn replies(&self) -> Vec<i64> {
        self.replies.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// When each echo request was sent (since the last [`Prober::clear`]).
    pub fn sent(&self) -> Vec<i64> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Forgets the replies received so far.
    pub fn clear(&self) {
        if let Ok(mut v) = self.replies.lock() {
            v.clear();
        }
        if let Ok(mut v) = self.sent.lock() {
            v.clear();
        }
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn recv_ts_nowait(fd: &OwnedFd, buf: &mut [u8]) -> Option<(usize, i64)> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: pfd is one live pollfd.
    if unsafe { libc::poll(&mut pfd, 1, 0) } <= 0 {
        return None;
    }
    recv_ts(fd, buf)
}

fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![8, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"vrrp-bench-probe");
    let c = checksum(&[&p]);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// Internet checksum (RFC 1071) over the concatenation of `parts`.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(0)
}

/// Kinds of flood frame (all IPv4 protocol 112 to 224.0.0.18, from
/// documentation addresses).
#[derive(Clone, Copy, Debug)]
enum Bad {
    /// A well-formed VRRPv3 advert for a VRID nobody here runs.
    ForeignVrid,
    /// The benchmarked VRID, wrong VRRP checksum.
    Checksum,
    /// The benchmarked VRID, TTL 254 (RFC 5798 §7.1: must be 255).
    Ttl,
    /// The benchmarked VRID, version 1.
    Version,
    /// The benchmarked VRID, cut short of its address list.
    Truncated,
}

/// One flood frame. `seq` varies the source address and the foreign VRID.
fn flood_frame(dst_mac: [u8; 6], vrid: u8, bad: Bad, seq: u32) -> Vec<u8> {
    let [_, _, hi, lo] = seq.to_be_bytes();
    let src = Ipv4Addr::new(203, 0, 113, 1 + lo % 250);
    let dst = Ipv4Addr::new(224, 0, 0, 18);
    let vrid = match bad {
        Bad::ForeignVrid => 200 + (hi ^ lo) % 50,
        _ => vrid,
    };
    let vip = Ipv4Addr::new(198, 51, 100, 200);
    // VRRPv3 (RFC 5798 §5.1): version/type, VRID, priority 254, count 1,
    // max advert interval 10 ms, checksum, one address.
    let version = if matches!(bad, Bad::Version) { 1 } else { 3 };
    let mut vrrp = vec![(version << 4) | 1, vrid, 254, 1, 0, 1, 0, 0];
    vrrp.extend_from_slice(&vip.octets());
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 112, 0, u8::try_from(vrrp.len()).unwrap_or(0)]);
    let mut c = checksum(&[&pseudo, &vrrp]);
    if matches!(bad, Bad::Checksum) {
        c ^= 0x5a5a;
    }
    vrrp[6..8].copy_from_slice(&c.to_be_bytes());
    if matches!(bad, Bad::Truncated) {
        vrrp.truncate(8);
    }
    let ttl = if matches!(bad, Bad::Ttl) { 254 } else { 255 };
    let total = u16::try_from(20 + vrrp.len()).unwrap_or(0);
    let mut ip = vec![0x45, 0xc0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, ttl, 112, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let hc = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&hc.to_be_bytes());
    let mut f = Vec::with_capacity(14 + ip.len() + vrrp.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&FLOOD_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&vrrp);
    f
}

/// Result of a flood.
#[derive(Clone, Copy, Debug)]
pub struct FloodStats {
    /// Frames handed to the kernel.
    pub sent: u64,
    /// How long sending took.
    pub secs: f64,
}

/// Sends up to `rate * duration` flood frames at `rate` per second out of
/// `port` (a bridge port, so the frames reach only the host behind it) in
/// namespace `ns`, addressed to `dst_mac`. Runs on a thread of its own
/// (it enters `ns`); returns when done or after `duration` plus a second.
pub fn flood(
    ns: &str,
    port: &str,
    dst_mac: [u8; 6],
    vrid: u8,
    rate: u64,
    duration: Duration,
) -> JoinHandle<anyhow::Result<FloodStats>> {
    let (ns, port) = (ns.to_owned(), port.to_owned());
    std::thread::spawn(move || {
        enter_netns(&ns)?;
        let fd = packet_socket(&port, 0)?;
        // Skip the qdisc: we want the wire, not a queue.
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &1i32)?;
        let kinds = [
            Bad::ForeignVrid,
            Bad::ForeignVrid,
            Bad::ForeignVrid,
            Bad::Checksum,
            Bad::Ttl,
            Bad::Version,
            Bad::Truncated,
        ];
        let frames: Vec<Vec<u8>> = (0u32..1024)
            .map(|i| {
                let k = kinds[usize::try_from(i).unwrap_or(0) % kinds.len()];
                flood_frame(dst_mac, vrid, k, i)
            })
            .collect();
        const BATCH: usize = 64;
        let total = rate.saturating_mul(duration.as_millis() as u64) / 1000;
        let hard_stop = duration + Duration::from_secs(1);
        let t0 = Instant::now();
        let mut sent: u64 = 0;
        let mut i = 0usize;
        while sent < total && t0.elapsed() < hard_stop {
            // Pace: never ahead of rate * elapsed.
            let due = (t0.elapsed().as_secs_f64() * rate as f64) as u64;
            if sent >= due {
                std::thread::sleep(Duration::from_micros(100));
                continue;
            }
            let n = BATCH.min(usize::try_from(total - sent).unwrap_or(BATCH));
            let mut iovs: Vec<libc::iovec> = (0..n)
                .map(|k| {
                    let f = &frames[(i + k) % frames.len()];
                    libc::iovec {
                        iov_base: f.as_ptr().cast_mut().cast(),
                        iov_len: f.len(),
                    }
                })
                .collect();
            let mut msgs: Vec<libc::mmsghdr> = iovs
                .iter_mut()
                .map(|iov| {
                    // SAFETY: mmsghdr is plain data; all-zero is valid.
                    let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    m.msg_hdr.msg_iov = iov;
                    m.msg_hdr.msg_iovlen = 1;
                    m
                })
                .collect();
            // SAFETY: msgs/iovs point at frames that live for the call.
            let rc = unsafe {
                libc::sendmmsg(
                    fd.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    u32::try_from(n).unwrap_or(0),
                    0,
                )
            };
            if rc < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::ENOBUFS) {
                    std::thread::yield_now();
                    continue;
                }
                bail!("sendmmsg: {e}");
            }
            let rc = usize::try_from(rc).unwrap_or(0);
            sent += rc as u64;
            i = (i + rc) % frames.len();
        }
        Ok(FloodStats {
            sent,
            secs: t0.elapsed().as_secs_f64(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flood_frames_are_what_they_claim() {
        let mac = [2, 0, 0, 0, 0, 1];
        let good = flood_frame(mac, 51, Bad::ForeignVrid, 7);
        // IPv4 header checksum verifies.
        assert_eq!(checksum(&[&good[14..34]]), 0);
        // VRRP checksum with pseudo-header verifies.
        let mut pseudo = good[26..34].to_vec();
        pseudo.extend_from_slice(&[0, 112, 0, 12]);
        assert_eq!(checksum(&[&pseudo, &good[34..]]), 0);
        assert!(good[35] >= 200, "foreign VRID");
        let bad = flood_frame(mac, 51, Bad::Checksum, 7);
        assert_eq!(bad[35], 51);
        assert_ne!(checksum(&[&pseudo, &bad[34..]]), 0);
        assert_eq!(flood_frame(mac, 51, Bad::Ttl, 7)[22], 254);
        assert_eq!(flood_frame(mac, 51, Bad::Version, 7)[34] >> 4, 1);
        assert_eq!(flood_frame(mac, 51, Bad::Truncated, 7).len(), 14 + 20 + 8);
        match parse(&good, 1) {
            Some(Seen::Advert { vrid, prio, .. }) => {
                assert!(vrid >= 200);
                assert_eq!(prio, 254);
            }
            other => panic!("{other:?}"),
        }
    }
}
