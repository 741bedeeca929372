//! `vrrp-agent check` and the one-line failures of `run` / `status`, through the binary.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::{path::PathBuf, process::Command};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("vrrp-cli-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vrrp-agent"))
}

/// `vrrp-agent check --config <f>`.
fn check(f: &std::path::Path) -> std::process::Output {
    agent().args(["check", "--config"]).arg(f).output().unwrap()
}

const GOOD: &str = r#"[global]
router_id = "lb1"

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = 100
virtual_ips = ["192.0.2.10/24"]
"#;

#[test]
fn check_valid_exits_0_silently() {
    let d = TempDir::new("ok");
    let f = d.0.join("good.toml");
    std::fs::write(&f, GOOD).unwrap();
    let out = check(&f);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
}

#[test]
fn check_invalid_exits_1_with_file_line_col() {
    let d = TempDir::new("bad");
    let f = d.0.join("bad.toml");
    std::fs::write(
        &f,
        GOOD.replace("vrid = 51", "vrid = 300").replace(
            "priority = 100",
            "priority = 100\nversion = 2\nadvert_interval = \"10ms\"",
        ),
    )
    .unwrap();
    let out = check(&f);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let prefix = format!("{}:", f.display());
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(
        lines[0],
        format!("{prefix}7:8: `vrid` must be 1..=255, found 300")
    );
    assert!(
        lines[1].starts_with(&format!("{prefix}10:19: `advert_interval`: VRRPv2")),
        "{text}"
    );
}

/// Issue 9 defect 5: `check` refuses what `run` could not advertise.
#[test]
fn check_rejects_more_vips_than_an_advert_carries() {
    let d = TempDir::new("vips");
    let f = d.0.join("vips.toml");
    let vips: Vec<String> = (0..300)
        .map(|i| format!("\"198.51.{}.{}\"", i / 200, i % 200 + 1))
        .collect();
    let text = GOOD.replace(
        "virtual_ips = [\"192.0.2.10/24\"]",
        &format!("virtual_ips = [\n{}\n]", vips.join(",\n")),
    );
    std::fs::write(&f, text).unwrap();
    let out = check(&f);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8(out.stderr).unwrap();
    // Line 9 opens the list; the 256th address is on line 265.
    let want = format!("{}:265:1: 300 virtual IPs in one instance", f.display());
    assert!(text.starts_with(&want), "{text}");
}

#[test]
fn check_unreadable_file_exits_1() {
    let out = agent()
        .args(["check", "--config", "/nonexistent/vrrp.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stderr).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("/nonexistent/vrrp.toml: cannot read config"),
        "{text}"
    );
}

#[test]
fn run_with_bad_config_fails_before_touching_anything() {
    let d = TempDir::new("run");
    let f = d.0.join("bad.toml");
    std::fs::write(&f, "[global]\n").unwrap();
    let out = agent().args(["run", "--config"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stderr).unwrap();
    assert_eq!(text.lines().count(), 1, "one-line reason: {text}");
    assert!(text.starts_with("vrrp-agent: invalid config: "), "{text}");
    assert!(text.contains(":1:1: no [[instance]] configured"), "{text}");

    // Several problems: still one line, pointing at `check` for the rest.
    std::fs::write(&f, "[global]\nxdp = 1\nfoo = 2\n").unwrap();
    let out = agent().args(["run", "--config"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stderr).unwrap();
    assert_eq!(text.lines().count(), 1, "one-line reason: {text}");
    assert!(
        text.contains("(and 2 more; see `vrrp-agent check --config"),
        "{text}"
    );
}

#[test]
fn run_rejects_unknown_xdp_mode() {
    let out = agent()
        .args(["run", "--config", "x.toml", "--xdp", "fast"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "usage error");
}

#[test]
fn status_without_daemon_exits_1_with_one_line() {
    let d = TempDir::new("status");
    let sock = d.0.join("none.sock");
    let out = agent()
        .args(["status", "--socket"])
        .arg(&sock)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stderr).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("no vrrp-agent is running"), "{text}");
}

/// A script in `dir` with `mode`.
fn script(dir: &std::path::Path, name: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

#[test]
fn check_reports_missing_and_non_executable_commands_at_their_keys() {
    let d = TempDir::new("scripts");
    let not_exec = script(&d.0, "plain.sh", 0o644);
    let f = d.0.join("scripts.toml");
    let text = format!(
        "{GOOD}notify_master = \"{}/missing.sh 192.0.2.2\"\nnotify = \"{} x\"\n\
         [[check]]\nname = \"ping\"\nkind = \"exec\"\ncommand = [\"no-such-cmd-vrrp\", \"ping\"]\n",
        d.0.display(),
        not_exec.display()
    );
    std::fs::write(&f, text).unwrap();
    let out = check(&f);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8(out.stderr).unwrap();
    let prefix = format!("{}:", f.display());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with(&format!(
            "{prefix}10:17: `notify_master`: command not found"
        )),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!("{prefix}11:10: `notify`: "))
            && lines[1].contains("is not executable"),
        "{text}"
    );
    assert!(
        lines[2].starts_with(&format!(
            "{prefix}15:11: `command`: command not found: \"no-such-cmd-vrrp\""
        )),
        "{text}"
    );
}

#[test]
fn check_warns_about_a_script_others_may_write() {
    let d = TempDir::new("unsafe");
    let s = script(&d.0, "notify.sh", 0o777);
    let f = d.0.join("unsafe.toml");
    std::fs::write(&f, format!("{GOOD}notify_fault = \"{} a\"\n", s.display())).unwrap();
    let out = check(&f);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning does not fail: {out:?}"
    );
    let text = String::from_utf8(out.stderr).unwrap();
    assert!(
        text.contains(&format!(
            "{}:10:16: warning: `notify_fault`: unsafe permissions",
            f.display()
        )) && text.contains("is writable by others"),
        "{text}"
    );
}

/// The shipped Redis configs pass `check` once their `/etc/vrrp-agent/`
/// scripts are where the config says (here: the examples directory).
#[test]
fn redis_examples_pass_check() {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/redis");
    let d = TempDir::new("examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        n += 1;
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/etc/vrrp-agent/", &format!("{}/", examples.display()));
        let f = d.0.join(path.file_name().unwrap());
        std::fs::write(&f, text).unwrap();
        let out = check(&f);
        assert_eq!(out.status.code(), Some(0), "{}: {out:?}", path.display());
    }
    assert_eq!(n, 4);
}
