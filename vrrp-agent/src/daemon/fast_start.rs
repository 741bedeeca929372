//! Start-up on the socket path, then the hand-over to XDP once the program
//! is loaded (issue 9, defect 7): the election starts within milliseconds
//! of exec, able to hear adverts, instead of after the hundreds of
//! milliseconds the verifier takes.

use std::time::Duration;

use futures::FutureExt as _;
use tracing::{debug, info, warn};

use super::{Daemon, dataplane_config};
use crate::dataplane;
use crate::dataplane::{DataPlaneError, PendingXdp, PreparedXdp};

/// Start-up step timestamps, logged at debug level: where the time from
/// exec to the first advert goes.
pub(super) struct Steps {
    t0: std::time::Instant,
    last: std::time::Instant,
}

impl Steps {
    pub(super) fn new() -> Self {
        let now = std::time::Instant::now();
        Steps { t0: now, last: now }
    }

    /// Logs the time since the previous step and since the start.
    pub(super) fn done(&mut self, step: &'static str) {
        let now = std::time::Instant::now();
        debug!(
            step,
            ms = (now - self.last).as_secs_f64() * 1e3,
            total_ms = (now - self.t0).as_secs_f64() * 1e3,
            "start-up step done"
        );
        self.last = now;
    }
}

/// Where the XDP program is (`xdp = auto`).
#[derive(Default)]
pub(super) enum XdpLoad {
    /// Nothing to load (XDP already attached, or the socket path for good).
    #[default]
    Idle,
    /// Being loaded and verified on its thread.
    Loading(PendingXdp),
    /// Loaded, waiting for a moment when the hand-over delays no advert.
    Loaded(Box<PreparedXdp>),
}

impl XdpLoad {
    /// `Loading` while `pending` is some.
    pub(super) fn new(pending: Option<PendingXdp>) -> Self {
        pending.map_or(XdpLoad::Idle, XdpLoad::Loading)
    }

    /// The loader's answer, once; pending forever otherwise.
    pub(super) async fn loaded(&mut self) -> Result<PreparedXdp, DataPlaneError> {
        match self {
            XdpLoad::Loading(p) => {
                let r = p.ready().await;
                *self = XdpLoad::Idle;
                r
            }
            _ => std::future::pending().await,
        }
    }
}

/// The hand-over blocks the loop for a few milliseconds (maps, attach):
/// done at once only if no deadline falls within this, else right after
/// the next deadline was handled (a MASTER has just advertised).
const HAND_OVER_ROOM: Duration = Duration::from_millis(20);

impl Daemon {
    /// The loader answered: hand over now if no deadline is near.
    pub(super) async fn on_xdp_loaded(&mut self, x: Result<PreparedXdp, DataPlaneError>) {
        match x {
            Ok(x) => {
                self.xdp = XdpLoad::Loaded(Box::new(x));
                self.maybe_hand_over(false).await;
            }
            Err(e) => warn!(error = %e, "XDP unavailable; receiving adverts through sockets"),
        }
    }

    /// Hands over to a loaded program if no deadline falls within
    /// [`HAND_OVER_ROOM`], or `after_deadline` (the loop just handled one).
    pub(super) async fn maybe_hand_over(&mut self, after_deadline: bool) {
        if !matches!(self.xdp, XdpLoad::Loaded(_)) {
            return;
        }
        let now = dataplane::now();
        let room = self
            .agent
            .poll_timeout()
            .is_none_or(|d| d.saturating_duration_since(now) >= HAND_OVER_ROOM);
        if !(after_deadline || room) {
            return;
        }
        if let XdpLoad::Loaded(x) = std::mem::take(&mut self.xdp) {
            self.switch_to_xdp(*x).await;
        }
    }

    /// Hands the data plane over from the socket path to the loaded XDP
    /// program without losing an advert: adverts already received on the
    /// socket are handled first, the program takes over each VRID's
    /// `LAST_SEEN` record, and the socket's last adverts (received while
    /// the program was being attached) are handled after the switch.
    /// On failure the daemon stays on the socket path (`xdp = auto`).
    async fn switch_to_xdp(&mut self, x: PreparedXdp) {
        let t0 = std::time::Instant::now();
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
        // effective one may differ (health tracking).
        let prios: Vec<_> = self
            .io
            .iter()
            .filter_map(|(id, io)| {
                let i = self.agent.instance(*id)?;
                let p = i.router().priority();
                (p != i.config().priority).then_some((io.key, p))
            })
            .collect();
        for (key, p) in prios {
            if let Err(e) = self.dataplane.set_local_priority(key, p) {
                warn!(error = %e, "updating local priority in the data plane failed");
            }
        }
        info!(mode = %self.dataplane.mode(), ms = t0.elapsed().as_secs_f64() * 1e3,
              "data plane ready (handed over)");
    }
}
