//! Loading the program into the kernel (retried while the verifier is
//! interrupted) and attaching it to, and detaching it from, interfaces.

use std::collections::BTreeMap;

use aya::{
    EbpfLoader,
    maps::Array,
    programs::{ProgramError, Xdp, XdpMode as AyaXdpMode},
};
use tracing::{info, warn};
use vrrp_common::{XDP_PROGRAM, maps};

use crate::dataplane::{
    ActiveMode, DataPlaneError, XdpMode, config::Desired, mismatch::PeerMismatches, sys,
};

use crate::dataplane::objects::VRRP as OBJECT;

use super::{REQUIRED_MAPS, XdpDataPlane, map_err, xdp_built_in};

/// How often the program load is tried before giving up on EAGAIN.
pub(super) const LOAD_ATTEMPTS: usize = 5;

/// Runs `load` until it does not fail with EAGAIN, at most `attempts`
/// times. The verifier gives up with EAGAIN when a signal arrives while it
/// works (a SIGHUP, or any signal with a handler); on a loaded machine the
/// verification of our program takes seconds, and one such signal would
/// otherwise leave the daemon on the socket data plane for good. libbpf
/// retries the same way.
pub(super) fn retry_on_eagain<E>(
    attempts: usize,
    errno: impl Fn(&E) -> Option<i32>,
    mut load: impl FnMut() -> Result<(), E>,
) -> Result<(), E> {
    let mut tried = 1;
    loop {
        match load() {
            Err(e) if errno(&e) == Some(libc::EAGAIN) && tried < attempts => {
                warn!(
                    attempt = tried,
                    "the verifier was interrupted; loading the XDP program again"
                );
                tried += 1;
            }
            r => return r,
        }
    }
}

/// The errno of a failed program load.
pub(super) fn load_errno(e: &ProgramError) -> Option<i32> {
    match e {
        ProgramError::LoadError { io_error, .. } => io_error.raw_os_error(),
        _ => None,
    }
}

impl XdpDataPlane {
    /// Loads the embedded program and checks its maps. Nothing is attached
    /// yet; call [`XdpDataPlane::apply`].
    pub fn load(mode: XdpMode) -> Result<Self, DataPlaneError> {
        if !xdp_built_in() {
            return Err(DataPlaneError::NotBuiltIn);
        }
        let mut ebpf = EbpfLoader::new()
            .load(OBJECT)
            .map_err(|e| DataPlaneError::Load(Box::new(e)))?;
        for name in REQUIRED_MAPS {
            if ebpf.map(name).is_none() {
                return Err(DataPlaneError::MissingMap(name));
            }
        }
        let prog: &mut Xdp = ebpf
            .program_mut(XDP_PROGRAM)
            .ok_or(DataPlaneError::MissingProgram)?
            .try_into()
            .map_err(|e| DataPlaneError::Program {
                ifname: String::new(),
                source: e,
            })?;
        retry_on_eagain(LOAD_ATTEMPTS, load_errno, || prog.load()).map_err(|e| {
            DataPlaneError::Program {
                ifname: String::new(),
                source: e,
            }
        })?;
        let membership =
            sys::packet_socket().map_err(|e| DataPlaneError::Io("AF_PACKET socket", e))?;
        let last_seen = ebpf
            .take_map(maps::LAST_SEEN)
            .ok_or(DataPlaneError::MissingMap(maps::LAST_SEEN))
            .and_then(|m| Array::try_from(m).map_err(map_err(maps::LAST_SEEN)))?;
        Ok(Self {
            ebpf,
            mode,
            links: BTreeMap::new(),
            applied: Desired::default(),
            vip_slots: BTreeMap::new(),
            vip_table: BTreeMap::new(),
            vrid_table: BTreeMap::new(),
            membership,
            events_taken: false,
            last_seen,
            mismatches: PeerMismatches::default(),
            mismatch_counts: std::collections::HashMap::new(),
            mismatch_scan_ns: 0,
        })
    }

    /// Attaches the program to every configured interface it is not
    /// attached to yet.
    pub fn attach_all(&mut self) -> Result<(), DataPlaneError> {
        let todo: Vec<u32> = self
            .applied
            .ifindexes
            .iter()
            .filter(|i| !self.links.contains_key(i))
            .copied()
            .collect();
        for ifindex in todo {
            self.attach(ifindex)?;
        }
        Ok(())
    }

    fn program(&mut self) -> Result<&mut Xdp, DataPlaneError> {
        self.ebpf
            .program_mut(XDP_PROGRAM)
            .ok_or(DataPlaneError::MissingProgram)?
            .try_into()
            .map_err(|e| DataPlaneError::Program {
                ifname: String::new(),
                source: e,
            })
    }

    fn attach(&mut self, ifindex: u32) -> Result<(), DataPlaneError> {
        let ifname = sys::ifname(ifindex);
        let mode = self.mode;
        let prog = self.program()?;
        let (link, active) = match mode {
            XdpMode::Driver => (
                prog.attach_to_if_index(ifindex, AyaXdpMode::Driver),
                ActiveMode::Driver,
            ),
            XdpMode::Skb => (
                prog.attach_to_if_index(ifindex, AyaXdpMode::Skb),
                ActiveMode::Skb,
            ),
            XdpMode::Auto | XdpMode::Off => {
                // Native first (it runs before the skb is built); drivers
                // without XDP support, or veth above ~3.5 KB MTU, refuse it.
                match prog.attach_to_if_index(ifindex, AyaXdpMode::Driver) {
                    Ok(l) => (Ok(l), ActiveMode::Driver),
                    Err(err) => {
                        warn!(interface = %ifname, error = %err, "native XDP attach failed; trying generic (skb) mode");
                        (
                            prog.attach_to_if_index(ifindex, AyaXdpMode::Skb),
                            ActiveMode::Skb,
                        )
                    }
                }
            }
        };
        let link = link.map_err(|source| DataPlaneError::Program {
            ifname: ifname.clone(),
            source,
        })?;
        for mac in [sys::MAC_VRRP_V4, sys::MAC_VRRP_V6] {
            if let Err(err) = sys::add_multicast(&self.membership, ifindex, mac) {
                warn!(interface = %ifname, error = %err, "cannot join the VRRP multicast MAC; adverts may be filtered by the NIC");
            }
        }
        info!(interface = %ifname, mode = active.as_str(), "XDP program attached");
        self.links.insert(ifindex, (link, active));
        Ok(())
    }

    pub(super) fn detach(&mut self, ifindex: u32) {
        let Some((link, _)) = self.links.remove(&ifindex) else {
            return;
        };
        let ifname = sys::ifname(ifindex);
        for mac in [sys::MAC_VRRP_V4, sys::MAC_VRRP_V6] {
            let _ = sys::drop_multicast(&self.membership, ifindex, mac);
        }
        match self.program().and_then(|p| {
            p.detach(link).map_err(|source| DataPlaneError::Program {
                ifname: ifname.clone(),
                source,
            })
        }) {
            Ok(()) => info!(interface = %ifname, "XDP program detached"),
            Err(err) => warn!(interface = %ifname, error = %err, "XDP detach failed"),
        }
    }

    /// Detaches from every interface. Also done on drop.
    pub fn shutdown(&mut self) {
        let ifs: Vec<u32> = self.links.keys().copied().collect();
        for ifindex in ifs {
            self.detach(ifindex);
        }
    }

    /// The mode of the first attached interface (the requested one while
    /// nothing is attached).
    pub fn mode(&self) -> ActiveMode {
        match (self.links.values().next(), self.mode) {
            (Some((_, m)), _) => *m,
            (None, XdpMode::Skb) => ActiveMode::Skb,
            (None, _) => ActiveMode::Driver,
        }
    }

    /// Attached interfaces and the mode each one got.
    pub fn attachments(&self) -> Vec<(u32, ActiveMode)> {
        self.links.iter().map(|(i, (_, m))| (*i, *m)).collect()
    }
}
