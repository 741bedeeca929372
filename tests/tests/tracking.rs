//! Health tracking end to end (SPEC "Health checks, tracking, sync groups"):
//! two vrrp-agent daemons in a lab, checks driven by the test through files
//! and scripts it controls, judged by instance state and by which host holds
//! the VIP. Run as root by `cargo xtask test`.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::{os::unix::fs::PermissionsExt, path::Path, process::Command, time::Duration};

use tests::cluster::{Agent, Lab, agent_bin, wait_holder, wait_until};

const VIP: &str = "192.0.2.10";
const SETTLE: Duration = Duration::from_secs(10);

/// A one-instance config with `checks` before the instance and `extra`
/// keys in it.
fn config(priority: u8, checks: &str, extra: &str) -> String {
    format!(
        r#"[global]
router_id = "r{priority}"
control_socket = "{{SOCKET}}"
{checks}
[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = {priority}
version = 3
advert_interval = "100ms"
virtual_ips = ["{VIP}/24"]
{extra}
"#
    )
}

fn script(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

/// A master (150) and a plain backup (100); the master's config gets
/// `checks` and `track`.
fn pair(lab: &Lab, checks: &str, track: &str) -> (Agent, Agent) {
    let m = lab.agent(0, &config(150, checks, track));
    m.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    let b = lab.agent(1, &config(100, "", ""));
    b.wait_state("VI_1", "BACKUP", SETTLE).unwrap();
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 0);
    (m, b)
}

fn check_status(a: &Agent, name: &str) -> serde_json::Value {
    let st = a.status().expect("status");
    st["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name).cloned())
        .unwrap_or_default()
}

/// Weight 0: the master's check fails -> FAULT, the VIP moves to the
/// backup; fixed -> it preempts back.
#[test]
fn weight_zero_file_check_failure_moves_the_vip_and_back() {
    let lab = Lab::new("tw", 2);
    let w = lab.dir.path().join("weight");
    std::fs::write(&w, "0\n").unwrap();
    let checks = format!(
        "[[check]]\nname = \"maint\"\nkind = \"file\"\npath = \"{}\"\n",
        w.display()
    );
    let (m, b) = pair(&lab, &checks, "track = [{ check = \"maint\" }]");
    std::fs::write(&w, "1\n").unwrap();
    m.wait_state("VI_1", "FAULT", SETTLE).unwrap();
    b.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 1);
    let st = m.status().unwrap();
    let inst = &st["instances"][0];
    assert_eq!(inst["track"][0]["check"], "maint");
    assert_eq!(inst["track"][0]["weight"], 0);
    assert!(
        inst["fault_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("maint"),
        "{inst}"
    );
    assert_eq!(check_status(&m, "maint")["kind"], "file");
    std::fs::write(&w, "0\n").unwrap();
    m.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 0);
}

/// A negative weight lowers the master's priority below the backup's,
/// which preempts; the master stays up as BACKUP.
#[test]
fn negative_weight_drops_priority_and_the_backup_preempts() {
    let lab = Lab::new("tn", 2);
    let flag = lab.dir.path().join("fail");
    let checks = format!(
        "[[check]]\nname = \"ping\"\nkind = \"exec\"\ncommand = [\"test\", \"!\", \"-e\", \"{}\"]\n\
         interval = \"100ms\"\n",
        flag.display()
    );
    let (m, b) = pair(
        &lab,
        &checks,
        "track = [{ check = \"ping\", weight = -60 }]",
    );
    std::fs::write(&flag, "").unwrap();
    b.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    m.wait_state("VI_1", "BACKUP", SETTLE).unwrap();
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 1);
    let st = m.status().unwrap();
    assert_eq!(st["instances"][0]["effective_priority"], 90);
    assert_eq!(st["instances"][0]["track"][0]["state"], "down");
    assert_eq!(st["instances"][0]["track"][0]["weight"], -60);
    std::fs::remove_file(&flag).unwrap();
    m.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    assert_eq!(
        m.status().unwrap()["instances"][0]["effective_priority"],
        150
    );
}

/// A check command that does not exist is a `check` error at its position.
#[test]
fn missing_check_command_is_a_check_error() {
    let lab = Lab::new("tc", 1);
    let f = lab.dir.path().join("c.toml");
    std::fs::write(
        &f,
        config(
            100,
            "[[check]]\nname = \"ping\"\nkind = \"exec\"\ncommand = [\"/nonexistent/redis-cli\", \"ping\"]\n",
            "track = [{ check = \"ping\" }]",
        ),
    )
    .unwrap();
    let out = Command::new(agent_bin())
        .args(["check", "--config"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "{}:7:11: `command`: command not found",
            f.display()
        )),
        "{err}"
    );
}

/// A hung exec check is killed at its timeout and counted as a failure:
/// weight 0 puts the master in FAULT and the backup takes the VIP.
#[test]
fn hung_exec_check_is_killed_and_counted() {
    let lab = Lab::new("th", 2);
    let hang = lab.dir.path().join("hang");
    let s = script(
        lab.dir.path(),
        "check.sh",
        &format!("if [ -e {} ]; then sleep 1000; fi\nexit 0", hang.display()),
    );
    let checks = format!(
        "[[check]]\nname = \"ping\"\nkind = \"exec\"\ncommand = [\"{s}\"]\n\
         interval = \"300ms\"\ntimeout = \"200ms\"\nfall = 2\n"
    );
    let (m, b) = pair(&lab, &checks, "track = [{ check = \"ping\" }]");
    std::fs::write(&hang, "").unwrap();
    m.wait_state("VI_1", "FAULT", SETTLE).unwrap();
    b.wait_state("VI_1", "MASTER", SETTLE).unwrap();
    let counted = wait_until(SETTLE, || {
        let c = check_status(&m, "ping");
        c["state"] == "down"
            && c["consecutive"].as_u64().unwrap_or(0) >= 3
            && c["last_result"]
                .as_str()
                .unwrap_or_default()
                .contains("timed out")
    });
    assert!(counted.is_some(), "{}", check_status(&m, "ping"));
    std::fs::remove_file(&hang).unwrap();
    m.wait_state("VI_1", "MASTER", SETTLE).unwrap();
}

/// A check that alternates success and failure never has `fall`
/// failures in a row: the VIP does not move.
#[test]
fn flapping_check_with_rise_and_fall_does_not_flap_the_vip() {
    let lab = Lab::new("tf", 2);
    let toggle = lab.dir.path().join("toggle");
    let s = script(
        lab.dir.path(),
        "flap.sh",
        &format!(
            "if [ -e {t} ]; then rm {t}; exit 1; else touch {t}; exit 0; fi",
            t = toggle.display()
        ),
    );
    let checks = format!(
        "[[check]]\nname = \"flap\"\nkind = \"exec\"\ncommand = [\"{s}\"]\n\
         interval = \"500ms\"\nrise = 2\nfall = 2\n"
    );
    let (m, b) = pair(&lab, &checks, "track = [{ check = \"flap\" }]");
    let before = m.status().unwrap()["instances"][0]["transitions"].clone();
    // About 8 runs of the check, alternating. Not faster: a run that
    // overruns its timeout (= interval) on a loaded machine counts as a
    // failure and could make two in a row, which is not what this tests.
    std::thread::sleep(Duration::from_secs(4));
    let st = m.status().unwrap();
    assert_eq!(st["instances"][0]["state"], "MASTER");
    assert_eq!(st["instances"][0]["transitions"], before);
    assert_eq!(b.state("VI_1").as_deref(), Some("BACKUP"));
    assert_eq!(check_status(&m, "flap")["state"], "up");
    wait_holder(&[lab.router(0), lab.router(1)], VIP, 0);
}
