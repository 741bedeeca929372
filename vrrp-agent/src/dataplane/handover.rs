//! Starting on the socket path and handing over to XDP: the program is
//! loaded, verified and attached on a background thread while the election
//! already runs on sockets, then takes over without losing an advert.

use std::io;

use tracing::{debug, info};

use super::{
    Base, DataPlane, DataPlaneConfig, DataPlaneError, EventStream, Path, SocketDataPlane,
    XdpDataPlane, XdpMode, add_counters, add_vrid, socket, stream::Inner, xdp_built_in,
};

/// The XDP program being loaded, verified and attached in the background
/// (see [`DataPlane::open_fast`]).
pub struct PendingXdp {
    rx: tokio::sync::oneshot::Receiver<Result<PreparedXdp, DataPlaneError>>,
}

impl PendingXdp {
    /// The program, attached, its maps filled for the configuration given
    /// to [`DataPlane::open_fast`] and seeded from the socket path.
    /// Cancel-safe.
    pub async fn ready(&mut self) -> Result<PreparedXdp, DataPlaneError> {
        (&mut self.rx).await.unwrap_or(Err(DataPlaneError::Io(
            "XDP loader thread",
            io::Error::other("exited without an answer"),
        )))
    }
}

/// An attached XDP program ready to take over from the socket path
/// ([`DataPlane::switch_to_xdp`]); dropping it detaches it.
pub struct PreparedXdp {
    x: XdpDataPlane,
    /// The configuration its maps were filled for.
    cfg: DataPlaneConfig,
    /// The socket path's counters when the program took over its records.
    base: Base,
}

/// Loads the program, fills its maps for `cfg`, carries over the socket
/// path's `LAST_SEEN` records (newest advert, `rx_total`, inter-arrival
/// histogram) and attaches it. The socket path keeps running meanwhile.
fn prepare_xdp(
    cfg: &DataPlaneConfig,
    view: &socket::SocketView,
) -> Result<PreparedXdp, DataPlaneError> {
    let mut x = XdpDataPlane::load(XdpMode::Auto)?;
    x.apply_maps(cfg)?;
    let snap = view.snapshot();
    let mut base = Base {
        counters: snap.counters,
        vrids: snap.vrids,
    };
    for (key, rec) in &snap.last_seen {
        if x.seed_last_seen(*key, rec)?
            && let Some(c) = base.vrids.get_mut(key)
        {
            // Counted by LAST_SEEN.rx_total from now on.
            c.valid = 0;
        }
    }
    x.attach_all()?;
    Ok(PreparedXdp {
        x,
        cfg: cfg.clone(),
        base,
    })
}

impl DataPlane {
    /// Like [`DataPlane::open`], but in `Auto` mode without waiting for
    /// the XDP program: loading and verifying it takes hundreds of
    /// milliseconds, the socket path a few. Opens the socket path at once
    /// and loads the program on a thread; hand the [`PendingXdp`]'s result
    /// to [`DataPlane::switch_to_xdp`]. `Driver`/`Skb` load synchronously
    /// (their errors must fail start-up) and `Off` never loads it: both
    /// return no [`PendingXdp`]. Needs a tokio runtime.
    pub fn open_fast(
        cfg: &DataPlaneConfig,
        mode: XdpMode,
    ) -> Result<(Self, Option<PendingXdp>), DataPlaneError> {
        if mode != XdpMode::Auto || !xdp_built_in() {
            return Ok((DataPlane::open(cfg, mode)?, None));
        }
        let socket = SocketDataPlane::open(cfg)?;
        let view = socket.view();
        let socket = DataPlane::socket(socket);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let cfg = cfg.clone();
        std::thread::Builder::new()
            .name("xdp-load".into())
            .spawn(move || {
                lower_priority();
                let t = std::time::Instant::now();
                let r = prepare_xdp(&cfg, &view);
                debug!(
                    ms = t.elapsed().as_secs_f64() * 1e3,
                    ok = r.is_ok(),
                    "XDP program loaded and attached"
                );
                // The daemon may have stopped: then the program is dropped.
                let _ = tx.send(r);
            })
            .map_err(|e| DataPlaneError::Io("XDP loader thread", e))?;
        Ok((socket, Some(PendingXdp { rx })))
    }

    /// Hands over from the socket path to the prepared program `p`, which
    /// then serves `cfg` (the configuration now, which may differ from the
    /// one it was loaded for). Returns the ring buffer's event stream.
    ///
    /// No advert is lost: the program was attached with each VRID's
    /// `LAST_SEEN` record carried over ([`PendingXdp`]), and the socket
    /// keeps receiving until the caller drops the socket path's
    /// [`EventStream`] after draining it: the program passes adverts on,
    /// so the socket sees every advert up to then (an advert of the overlap
    /// arrives twice, which the agent tolerates). The socket path's
    /// counters at the carry-over become the base of the program's, so no
    /// counter goes backwards; what the socket path counted later, during
    /// the overlap, is not added (a counter may miss the adverts of the
    /// overlap, never count one twice). The effective local priority of
    /// each VRID is the caller's to set again
    /// ([`DataPlane::set_local_priority`]). Quick: the slow parts
    /// (verifier, attach) are done.
    ///
    /// On error the socket path stays in place (and `p` is detached).
    pub fn switch_to_xdp(
        &mut self,
        p: PreparedXdp,
        cfg: &DataPlaneConfig,
    ) -> Result<EventStream, DataPlaneError> {
        if !matches!(self.path, Path::Socket(_)) {
            return Err(DataPlaneError::Config(
                "XDP hand-over: the data plane is not on the socket path".into(),
            ));
        }
        let PreparedXdp {
            mut x,
            cfg: loaded_for,
            mut base,
        } = p;
        // Map writes cost the loop time: only after a reload.
        if *cfg != loaded_for {
            x.apply(cfg)?;
        }
        let events = EventStream::new(Inner::Ring(x.take_events()?));
        let old = std::mem::replace(&mut self.path, Path::Xdp(Box::new(x)));
        if let Path::Socket(mut s) = old {
            s.shutdown();
        }
        add_counters(&mut base.counters, &self.base.counters);
        for (k, c) in &self.base.vrids {
            add_vrid(base.vrids.entry(*k).or_default(), c);
        }
        self.base = base;
        info!(mode = %self.mode(), "data plane handed over from sockets to XDP");
        Ok(events)
    }
}

/// Makes the calling thread yield the CPU to the daemon's (nice 19): the
/// election runs on the socket path while the program is relocated and
/// verified, which is seconds of CPU on a busy machine, and a starved
/// election misses adverts (a false Master_Down at 10 ms adverts).
fn lower_priority() {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    // SAFETY: plain syscall on this thread's id; no memory is passed.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid.cast_unsigned(), 19) };
    if r != 0 {
        debug!(error = %io::Error::last_os_error(), "cannot lower the XDP loader's priority");
    }
}
