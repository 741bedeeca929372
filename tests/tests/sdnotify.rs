//! The daemon under a fake systemd: `$NOTIFY_SOCKET` is a datagram socket
//! of this test. READY=1 comes once the instance is configured (the control
//! socket answers at that moment), RELOADING=1 with MONOTONIC_USEC and
//! READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM, WATCHDOG=1 pings
//! from the main loop when `$WATCHDOG_USEC` is set. Run as root by `cargo
//! xtask test`.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::{
    os::unix::net::UnixDatagram,
    process::Command,
    time::{Duration, Instant},
};

use nix::sys::signal::Signal;
use tests::cluster::{Lab, agent_bin};

/// How long any one notification may take (start-up included).
const WAIT: Duration = Duration::from_secs(60);

/// The next notification that is not a watchdog ping, within [`WAIT`];
/// counts the pings on the way.
fn next(rx: &UnixDatagram, pings: &mut usize) -> String {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "only watchdog pings for {WAIT:?}");
        rx.set_read_timeout(Some(left)).unwrap();
        let n = rx.recv(&mut buf).expect("no notification in time");
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg == "WATCHDOG=1" {
            *pings += 1;
        } else {
            return msg;
        }
    }
}

#[test]
fn daemon_reports_ready_reload_stop_and_watchdog() {
    let lab = Lab::new("sdn", 1);
    let dir = lab.dir.path();
    let notify = dir.join("notify.sock");
    let rx = UnixDatagram::bind(&notify).unwrap();
    let socket = dir.join("control.sock");
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"[global]
control_socket = "{}"

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = 100
advert_interval = "100ms"
virtual_ips = ["192.0.2.10/24"]
"#,
            socket.display()
        ),
    )
    .unwrap();
    let bin = agent_bin().display().to_string();
    let notify_env = format!("NOTIFY_SOCKET={}", notify.display());
    let config_str = config.display().to_string();
    let log = dir.join("agent.log");
    let mut child = lab
        .router(0)
        .spawn(
            "env",
            &[
                &notify_env,
                "WATCHDOG_USEC=200000",
                &bin,
                "run",
                "--config",
                &config_str,
            ],
            Some(&log),
        )
        .unwrap();
    let status = || {
        Command::new(agent_bin())
            .args(["status", "--json", "--socket"])
            .arg(&socket)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let mut pings = 0;

    let ready = next(&rx, &mut pings);
    assert_eq!(ready, "READY=1\nSTATUS=instances: 1");
    assert!(status(), "READY=1 before the control socket answers");

    child.signal(Signal::SIGHUP).unwrap();
    let reloading = next(&rx, &mut pings);
    let (first, usec) = reloading.split_once('\n').unwrap();
    assert_eq!(first, "RELOADING=1");
    let usec: u64 = usec
        .strip_prefix("MONOTONIC_USEC=")
        .unwrap()
        .parse()
        .unwrap();
    assert!(usec > 0);
    assert_eq!(next(&rx, &mut pings), "READY=1\nSTATUS=instances: 1");

    // Pings keep coming while the daemon runs (every 100 ms).
    rx.set_read_timeout(Some(WAIT)).unwrap();
    while pings < 3 {
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).expect("no watchdog ping within 60 s");
        assert_eq!(&buf[..n], b"WATCHDOG=1");
        pings += 1;
    }

    child.signal(Signal::SIGTERM).unwrap();
    assert_eq!(next(&rx, &mut pings), "STOPPING=1");
    let exited = tests::cluster::wait_until(Duration::from_secs(30), || child.exited());
    assert!(exited.is_some(), "the agent did not exit after SIGTERM");
    assert_eq!(child.exit_code(), Some(0));
}
