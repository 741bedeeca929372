//! keepalived-style notify command lines through parse + pre-flight, against
//! real files.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::{os::unix::fs::PermissionsExt, path::PathBuf};

use vrrp_agent::cmdline::{self, PreflightError, PreflightWarning, RunAs, UnsafeWhy};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("vrrp-cmdline-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn script(dir: &TempDir, name: &str, mode: u32) -> PathBuf {
    let p = dir.0.join(name);
    std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

#[test]
fn a_notify_line_with_arguments_resolves_to_its_script() {
    let dir = TempDir::new("ok");
    let path = script(&dir, "redis master.sh", 0o755);
    let line = format!("'{}' 192.0.2.2 6379", path.display());
    let argv = cmdline::parse(&line).unwrap();
    assert_eq!(argv.len(), 3);
    let ok = cmdline::preflight(&argv, RunAs::ROOT).unwrap();
    assert_eq!(ok.program, path);
    if nix::unistd::Uid::effective().is_root() {
        assert_eq!(
            ok.warnings,
            [],
            "a root-owned 0755 script in a 0755 dir is safe"
        );
    }
}

#[test]
fn a_script_without_x_bits_is_an_error() {
    let dir = TempDir::new("noexec");
    let path = script(&dir, "s.sh", 0o644);
    assert_eq!(
        cmdline::preflight(&[&path], RunAs::ROOT),
        Err(PreflightError::NotExecutable { path, uid: 0 })
    );
}

#[test]
fn a_script_only_root_may_run_is_an_error_for_another_user() {
    let dir = TempDir::new("owneronly");
    let path = script(&dir, "s.sh", 0o700);
    let owner = std::fs::metadata(&path)
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    let other = RunAs {
        uid: owner + 1,
        gid: 65534,
    };
    assert!(matches!(
        cmdline::preflight(&[&path], other),
        Err(PreflightError::NotExecutable { .. })
    ));
}

#[test]
fn a_world_writable_script_is_warned_about() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: files created by a non-root user are unsafe anyway");
        return;
    }
    let dir = TempDir::new("unsafe");
    let path = script(&dir, "s.sh", 0o757);
    let ok = cmdline::preflight(&[&path], RunAs::ROOT).unwrap();
    assert_eq!(
        ok.warnings,
        [PreflightWarning::UnsafePermissions {
            path: path.clone(),
            why: UnsafeWhy::WorldWritable
        }]
    );
    assert!(ok.warnings[0].to_string().contains("unsafe permissions"));
}
