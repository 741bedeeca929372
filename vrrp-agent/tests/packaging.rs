//! The cheap packaging checks (`cargo xtask deb --test` does the package
//! itself): the systemd unit passes `systemd-analyze verify`, the man pages
//! render without warnings, the shipped example config is valid.
//!
//! A tool that is missing skips its test with a printed reason, never
//! silently.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use vrrp_agent::{cli, config::Config};

fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging")
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "vrrp-agent-packaging-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A man tree as the package installs it: generated section 1, the
/// hand-written section 5.
fn man_tree(root: &Path) -> Vec<PathBuf> {
    let mut pages = cli::write_man_pages(&root.join("man1")).unwrap();
    let man5 = root.join("man5");
    fs::create_dir_all(&man5).unwrap();
    let toml5 = man5.join("vrrp-agent.toml.5");
    fs::copy(packaging().join("man/vrrp-agent.toml.5"), &toml5).unwrap();
    pages.push(toml5);
    pages
}

fn tool(name: &str) -> bool {
    match Command::new(name).arg("--version").output() {
        Ok(_) => true,
        Err(e) => {
            eprintln!("SKIPPED: cannot run {name} ({e}); install it to run this test");
            false
        }
    }
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    if !tool("systemd-analyze") {
        return;
    }
    let dir = Scratch::new("unit");
    let manpath = dir.0.join("man");
    man_tree(&manpath);
    // verify checks that ExecStart= and friends exist: the binary just built.
    let unit = fs::read_to_string(packaging().join("vrrp-agent.service")).unwrap();
    let unit = unit.replace("/usr/bin/vrrp-agent", env!("CARGO_BIN_EXE_vrrp-agent"));
    let path = dir.0.join("vrrp-agent.service");
    fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .env("MANPATH", &manpath)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify ({}): {stderr}",
        out.status
    );
}

#[test]
fn unit_is_notify_with_a_sighup_reload_and_bounded_capabilities() {
    let unit = fs::read_to_string(packaging().join("vrrp-agent.service")).unwrap();
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for want in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
        "RuntimeDirectory=vrrp-agent",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET",
    ] {
        assert!(lines.contains(&want), "{want} missing");
    }
    let caps = lines
        .iter()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("CapabilityBoundingSet");
    assert!(!caps.contains("CAP_SYS_ADMIN"), "{caps}");
    // The daemon's start-up check insists on these two.
    assert!(caps.contains("CAP_NET_ADMIN") && caps.contains("CAP_NET_RAW"));
}

#[test]
fn man_pages_render_without_warnings() {
    if !tool("groff") {
        return;
    }
    let dir = Scratch::new("man");
    for page in man_tree(&dir.0) {
        let out = Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .arg(&page)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{}: {stderr}",
            page.display()
        );
    }
}

#[test]
fn shipped_example_is_valid_and_has_an_instance() {
    let (cfg, warnings) = Config::load_with_warnings(&packaging().join("vrrp-agent.toml"))
        .unwrap_or_else(|e| panic!("{}", e.lines().join("\n")));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(cfg.instances.len(), 1);
    assert_eq!(
        cfg.global.control_socket,
        Path::new(vrrp_agent::config::DEFAULT_CONTROL_SOCKET),
        "the unit's RuntimeDirectory= holds the default control socket"
    );
}
