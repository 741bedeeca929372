//! Start-up on the socket path, then the hand-over to XDP once the program
//! is loaded (issue 9, defect 7): the election starts within milliseconds
//! of exec, able to hear adverts, instead of after the hundreds of
//! milliseconds the verifier takes.

use futures::FutureExt as _;
use tracing::{info, warn};

use super::{Daemon, dataplane_config};
use crate::dataplane::{DataPlaneError, PendingXdp, XdpDataPlane};

/// The loaded program, once; pending forever when nothing is loading.
pub(super) async fn xdp_ready(
    pending: &mut Option<PendingXdp>,
) -> Result<XdpDataPlane, DataPlaneError> {
    match pending {
        Some(p) => {
            let r = p.ready().await;
            *pending = None;
            r
        }
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// Hands the data plane over from the socket path to the loaded XDP
    /// program without losing an advert: adverts already received on the
    /// socket are handled first, the program takes over each VRID's
    /// `LAST_SEEN` record, and the socket's last adverts (received while
    /// the program was being attached) are handled after the switch.
    /// On failure the daemon stays on the socket path (`xdp = auto`).
    pub(super) async fn switch_to_xdp(&mut self, x: Result<XdpDataPlane, DataPlaneError>) {
        let x = match x {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "XDP unavailable; receiving adverts through sockets");
                return;
            }
        };
        self.drain_events().await;
        let events = match self
            .dataplane
            .switch_to_xdp(x, &dataplane_config(&self.agent))
        {
            Ok(ev) => ev,
            Err(e) => {
                warn!(error = %e, "XDP unavailable; receiving adverts through sockets");
                return;
            }
        };
        // The socket path's stream, with what arrived during the attach.
        let mut socket = std::mem::replace(&mut self.events, events);
        while let Some(ev) = socket.recv().now_or_never() {
            match ev {
                Ok(ev) => self.on_advert(&ev).await,
                Err(e) => {
                    warn!(error = %e, "socket data plane failed during the hand-over");
                    break;
                }
            }
        }
        drop(socket);
        // The program's VRIDs start from the configured priority; the
        // effective one may differ (a MASTER, health tracking).
        let prios: Vec<_> = self
            .io
            .iter()
            .filter_map(|(id, io)| {
                let i = self.agent.instance(*id)?;
                Some((io.key, i.router().priority()))
            })
            .collect();
        for (key, p) in prios {
            if let Err(e) = self.dataplane.set_local_priority(key, p) {
                warn!(error = %e, "updating local priority in the data plane failed");
            }
        }
        info!(mode = %self.dataplane.mode(), "data plane ready");
    }
}
