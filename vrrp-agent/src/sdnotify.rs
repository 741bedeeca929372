//! systemd's service notification protocol (`sd_notify(3)`), spoken
//! directly: one datagram of `KEY=VALUE` lines to the unix socket named in
//! `$NOTIFY_SOCKET`. No libsystemd.
//!
//! What the daemon reports (`Type=notify` in `packaging/vrrp-agent.service`):
//!
//! - `READY=1` once every instance is configured (interfaces resolved, data
//!   plane attached, control socket bound): `systemctl start` returns then,
//!   and units ordered after us start then.
//! - `RELOADING=1` with `MONOTONIC_USEC` (what systemd ≥ 253 requires of
//!   `Type=notify-reload`) when a SIGHUP reload begins, `READY=1` when it is
//!   done (also when the new file was rejected: the old config still runs).
//! - `STOPPING=1` when a graceful stop begins (the handover can take a few
//!   advert intervals).
//! - `WATCHDOG=1` every half `$WATCHDOG_USEC` when `WatchdogSec=` is set,
//!   from the daemon's main loop, so a loop that hangs stops the pings and
//!   systemd restarts the service.
//!
//! `$NOTIFY_SOCKET` is an absolute path or, with a leading `@`, a name in
//! the abstract namespace (the `@` stands for the leading NUL byte).
//! `vsock:` addresses (systemd in a VM host) are not supported and are
//! logged once. Outside systemd (no `$NOTIFY_SOCKET`) every call is a no-op.
//! Sends never block the daemon: the socket is non-blocking, and a datagram
//! systemd cannot take is dropped with a warning (the next one still goes).

use std::{
    ffi::OsStr,
    io,
    os::{
        linux::net::SocketAddrExt as _,
        unix::{
            ffi::OsStrExt as _,
            net::{SocketAddr, UnixDatagram},
        },
    },
    time::Duration,
};

use tracing::{debug, warn};

/// Why `$NOTIFY_SOCKET` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SdNotifyError {
    /// Neither an absolute path nor `@abstract`.
    #[error("NOTIFY_SOCKET={0:?} is neither an absolute path nor an @abstract name")]
    Unsupported(String),
    /// The address is valid but the socket could not be made.
    #[error("NOTIFY_SOCKET: {0}")]
    Io(#[from] io::Error),
}

/// The address `$NOTIFY_SOCKET` names.
pub fn parse_notify_socket(value: &OsStr) -> Result<SocketAddr, SdNotifyError> {
    let bytes = value.as_bytes();
    match bytes.first() {
        Some(b'/') => Ok(SocketAddr::from_pathname(value)?),
        Some(b'@') => Ok(SocketAddr::from_abstract_name(&bytes[1..])?),
        _ => Err(SdNotifyError::Unsupported(
            value.to_string_lossy().into_owned(),
        )),
    }
}

/// The watchdog ping period: half of `$WATCHDOG_USEC` (as `sd_watchdog_enabled`
/// advises), when the watchdog is on and meant for this process
/// (`$WATCHDOG_PID`, when set, is `my_pid`).
pub fn watchdog_period(usec: Option<&str>, pid: Option<&str>, my_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(my_pid)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    Some(Duration::from_micros(usec / 2).max(Duration::from_millis(1)))
}

/// A connected notification socket.
#[derive(Debug)]
pub struct SdNotify {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl SdNotify {
    /// A socket sending to `addr`.
    pub fn new(addr: SocketAddr) -> Result<Self, SdNotifyError> {
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(SdNotify { socket, addr })
    }

    /// Sends one notification: `KEY=VALUE` lines.
    pub fn send(&self, state: &str) -> io::Result<()> {
        self.socket.send_to_addr(state.as_bytes(), &self.addr)?;
        Ok(())
    }
}

/// The notifications of a daemon: no-ops when not run by systemd.
#[derive(Debug, Default)]
pub struct Service {
    notify: Option<SdNotify>,
    watchdog: Option<tokio::time::Interval>,
}

impl Service {
    /// From `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`. Needs a
    /// tokio runtime when the watchdog is on.
    pub fn from_env() -> Self {
        let notify = match std::env::var_os("NOTIFY_SOCKET").filter(|v| !v.is_empty()) {
            None => return Service::default(),
            Some(v) => match parse_notify_socket(&v).and_then(SdNotify::new) {
                Ok(n) => n,
                Err(e) => {
                    warn!(error = %e, "systemd notifications disabled");
                    return Service::default();
                }
            },
        };
        let period = watchdog_period(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        Service::new(notify, period)
    }

    /// Notifications to `notify`, watchdog pings every `period`.
    pub fn new(notify: SdNotify, period: Option<Duration>) -> Self {
        let watchdog = period.map(|p| {
            debug!(period = ?p, "systemd watchdog on");
            let mut i = tokio::time::interval_at(tokio::time::Instant::now() + p, p);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        Service {
            notify: Some(notify),
            watchdog,
        }
    }

    fn send(&self, state: &str) {
        if let Some(n) = &self.notify
            && let Err(e) = n.send(state)
        {
            warn!(error = %e, message = state, "cannot notify systemd");
        }
    }

    /// Start-up or reload finished; `status` is shown by `systemctl status`.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// A reload begins.
    pub fn reloading(&self) {
        let usec = crate::dataplane::monotonic_now_ns() / 1000;
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
    }

    /// A graceful stop begins.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// Waits for the next watchdog period, then pings. Never completes when
    /// the watchdog is off, so it can sit in a `select!`. Cancel-safe.
    pub async fn watchdog(&mut self) {
        match &mut self.watchdog {
            Some(i) => {
                i.tick().await;
                self.send("WATCHDOG=1");
            }
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{ffi::OsString, os::unix::ffi::OsStringExt as _};

    use super::*;

    /// A receiving socket on a fresh path, removed on drop.
    struct PathSocket {
        dir: std::path::PathBuf,
        sock: UnixDatagram,
    }

    impl PathSocket {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("vrrp-agent-sdnotify-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let sock = UnixDatagram::bind(dir.join("notify")).unwrap();
            PathSocket { dir, sock }
        }
    }

    impl Drop for PathSocket {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn recv(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn service_to(value: &OsStr) -> Service {
        Service::new(
            SdNotify::new(parse_notify_socket(value).unwrap()).unwrap(),
            None,
        )
    }

    #[test]
    fn path_socket_gets_every_notification() {
        let rx = PathSocket::new("path");
        let svc = service_to(rx.dir.join("notify").as_os_str());
        svc.ready("2 instances");
        assert_eq!(recv(&rx.sock), "READY=1\nSTATUS=2 instances");
        svc.reloading();
        let msg = recv(&rx.sock);
        let mut lines = msg.lines();
        assert_eq!(lines.next(), Some("RELOADING=1"));
        let usec: u64 = lines
            .next()
            .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
            .and_then(|v| v.parse().ok())
            .unwrap();
        // CLOCK_MONOTONIC, in microseconds: what systemd compares with its own.
        let now_usec = crate::dataplane::monotonic_now_ns() / 1000;
        assert!(usec <= now_usec && usec > 0, "{usec} vs {now_usec}");
        svc.stopping();
        assert_eq!(recv(&rx.sock), "STOPPING=1");
    }

    #[test]
    fn abstract_socket_is_reached_through_the_at_sign() {
        let name = format!("vrrp-agent-sdnotify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        let svc = service_to(&OsString::from(format!("@{name}")));
        svc.stopping();
        assert_eq!(recv(&rx), "STOPPING=1");
    }

    #[tokio::test(start_paused = true)]
    async fn watchdog_pings_every_period() {
        let rx = PathSocket::new("watchdog");
        let addr = parse_notify_socket(rx.dir.join("notify").as_os_str()).unwrap();
        let mut svc = Service::new(SdNotify::new(addr).unwrap(), Some(Duration::from_secs(5)));
        let start = tokio::time::Instant::now();
        svc.watchdog().await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        assert_eq!(recv(&rx.sock), "WATCHDOG=1");
        svc.watchdog().await;
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        assert_eq!(recv(&rx.sock), "WATCHDOG=1");
    }

    #[tokio::test(start_paused = true)]
    async fn no_watchdog_never_pings() {
        let mut svc = Service::default();
        let r = tokio::time::timeout(Duration::from_secs(3600), svc.watchdog()).await;
        assert!(r.is_err());
    }

    #[test]
    fn notify_socket_forms() {
        assert!(matches!(
            parse_notify_socket(OsStr::new("vsock:2:1234")),
            Err(SdNotifyError::Unsupported(_))
        ));
        assert!(matches!(
            parse_notify_socket(OsStr::new("run/notify")),
            Err(SdNotifyError::Unsupported(_))
        ));
        let abs = parse_notify_socket(OsStr::new("@sd\0x")).unwrap();
        assert_eq!(abs.as_abstract_name(), Some(&b"sd\0x"[..]));
        let path = parse_notify_socket(OsStr::new("/run/systemd/notify")).unwrap();
        assert_eq!(
            path.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        // Non-UTF-8 paths are paths too.
        let raw = OsString::from_vec(b"/run/\xff".to_vec());
        assert!(parse_notify_socket(&raw).is_ok());
    }

    #[test]
    fn watchdog_period_is_half_the_timeout_for_this_process() {
        let half = Some(Duration::from_secs(15));
        assert_eq!(watchdog_period(Some("30000000"), None, 42), half);
        assert_eq!(watchdog_period(Some("30000000"), Some("42"), 42), half);
        // The watchdog of another process (a parent that forked us).
        assert_eq!(watchdog_period(Some("30000000"), Some("41"), 42), None);
        assert_eq!(watchdog_period(None, None, 42), None);
        assert_eq!(watchdog_period(Some("0"), None, 42), None);
        assert_eq!(watchdog_period(Some("soon"), None, 42), None);
    }
}
