//! `vrrp-agent status` against a control socket served in-process.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use vrrp_agent::control::{
    self, ConnLimit, ControlSocket, Counters, InstanceStatus, MAX_CONNECTIONS, State, Status,
    VipCounters, XdpStatus,
};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("vrrp-status-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sample() -> Status {
    let mut counters = Counters {
        adverts_tx: 12,
        garp_tx: 5,
        ..Default::default()
    };
    counters.rx_dropped.ttl = 2;
    Status {
        router_id: "lb1".into(),
        xdp: XdpStatus {
            mode: "driver".into(),
            interfaces: vec!["eth0".into()],
        },
        instances: vec![InstanceStatus {
            name: "VI_1".into(),
            interface: "eth0".into(),
            vrid: 51,
            version: 3,
            family: "ipv4".into(),
            state: State::Master,
            priority: 100,
            effective_priority: 100,
            master: Some("192.0.2.1".parse().unwrap()),
            advert_interval_ms: 1000,
            master_adver_interval_ms: 1000,
            virtual_ips: vec!["192.0.2.10/24".into()],
            transitions: 1,
            last_transition_unix_ms: 1_764_000_000_000,
            counters,
            track: Vec::new(),
            fault_reason: None,
            vip_counters: vec![VipCounters {
                vip: "192.0.2.10".parse().unwrap(),
                rx_packets: 3,
                rx_bytes: 300,
            }],
            advert_interarrival: Default::default(),
            peer_mismatch: vec![],
        }],
        checks: Vec::new(),
        sync_groups: Vec::new(),
        connections_refused: 0,
    }
}

/// Runs a control server for `sample()` on a background runtime.
fn serve(path: &Path) -> std::sync::mpsc::Receiver<()> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let path = path.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let sock = ControlSocket::bind(&path).await.unwrap();
            ready_tx.send(()).unwrap();
            sock.serve(ConnLimit::new(MAX_CONNECTIONS), || async { sample() })
                .await;
        });
    });
    ready_rx.recv().unwrap();
    let (_keep_tx, keep_rx) = std::sync::mpsc::channel();
    keep_rx
}

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vrrp-agent"))
}

#[test]
fn status_json_has_the_spec_fields() {
    let d = TempDir::new("json");
    let sock = d.0.join("sub/ctl.sock");
    let _srv = serve(&sock);
    // The socket is private to its owner.
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let out = agent()
        .args(["status", "--json", "--socket"])
        .arg(&sock)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Every key of the SPEC example, with the same JSON types.
    let spec: serde_json::Value = serde_json::from_str(
        r#"{"router_id": "lb1", "xdp": {"mode": "driver", "interfaces": ["eth0"]},
  "instances": [
    {"name": "VI_1", "interface": "eth0", "vrid": 51, "version": 3,
     "family": "ipv4", "state": "MASTER", "priority": 100,
     "effective_priority": 100, "master": "192.0.2.1",
     "advert_interval_ms": 1000, "master_adver_interval_ms": 1000,
     "virtual_ips": ["192.0.2.10/24"], "transitions": 1,
     "last_transition_unix_ms": 1764000000000,
     "counters": {"adverts_rx": 0, "adverts_tx": 12, "garp_tx": 5,
                  "prio0_rx": 0, "prio0_tx": 0, "vip_rx_packets": 0,
                  "vip_rx_bytes": 0, "rx_dropped": {"ttl": 2, "version": 0,
                  "checksum": 0, "length": 0, "vrid": 0, "interval": 0,
                  "peer": 0}}}]}"#,
    )
    .unwrap();
    assert_superset(&v, &spec, "$");
}

/// `have` contains every key of `want` with equal scalar values.
fn assert_superset(have: &serde_json::Value, want: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => {
            for (k, wv) in w {
                let hv = h
                    .get(k)
                    .unwrap_or_else(|| panic!("{at}.{k} missing in {have}"));
                assert_superset(hv, wv, &format!("{at}.{k}"));
            }
        }
        (Value::Array(h), Value::Array(w)) => {
            assert_eq!(h.len(), w.len(), "{at}");
            for (i, (hv, wv)) in h.iter().zip(w).enumerate() {
                assert_superset(hv, wv, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(have, want, "{at}"),
    }
}

#[test]
fn status_table() {
    let d = TempDir::new("table");
    let sock = d.0.join("ctl.sock");
    let _srv = serve(&sock);
    let out = agent()
        .args(["status", "--socket"])
        .arg(&sock)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "router_id: lb1    xdp: driver (eth0)");
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    let row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(header.len(), row.len(), "{text}");
    let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("NAME"), "VI_1");
    assert_eq!(col("STATE"), "MASTER");
    assert_eq!(col("MASTER"), "192.0.2.1");
    assert_eq!(col("ADV_TX"), "12");
    assert_eq!(col("DROPPED"), "2");
    assert_eq!(col("VIPS"), "192.0.2.10/24");
    assert_eq!(lines[3], "VI_1: dropped ttl=2");
}

#[test]
fn second_daemon_refused_stale_socket_replaced() {
    let d = TempDir::new("inuse");
    let sock = d.0.join("ctl.sock");
    let _srv = serve(&sock);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt
        .block_on(ControlSocket::bind(&sock))
        .err()
        .expect("bind must fail");
    assert!(matches!(err, control::ControlError::InUse(_)), "{err}");

    // A socket file nobody listens on is stale and gets replaced.
    let stale = d.0.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    // Other tests spawn processes: a child between fork and exec briefly
    // holds a copy of the listener, so wait until it is really stale.
    for _ in 0..200 {
        if std::os::unix::net::UnixStream::connect(&stale).is_err() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let s = rt
        .block_on(ControlSocket::bind(&stale))
        .unwrap_or_else(|e| panic!("stale socket not replaced: {e:?}"));
    drop(s);
    assert!(!stale.exists(), "socket removed on drop");

    // A regular file is never deleted.
    let file = d.0.join("file");
    std::fs::write(&file, "keep").unwrap();
    let err = rt
        .block_on(ControlSocket::bind(&file))
        .err()
        .expect("bind must fail");
    assert!(matches!(err, control::ControlError::NotASocket(_)), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
}

#[test]
fn unknown_command_is_an_error_answer() {
    let d = TempDir::new("cmd");
    let sock = d.0.join("ctl.sock");
    let _srv = serve(&sock);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = rt.block_on(control::request(&sock, "launch")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"], "unknown command `launch`");
    let st = rt.block_on(control::query_status(&sock)).unwrap();
    assert_eq!(st, sample());
}
