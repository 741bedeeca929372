//! Whole Ethernet frames: gratuitous ARP and unsolicited NA announcements.

use std::{
    io,
    net::{IpAddr, Ipv6Addr},
    os::fd::AsRawFd,
    time::Duration,
};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{Interest, unix::AsyncFd};

use crate::{config::VirtualIp, proto::announce};

use super::TxError;

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
