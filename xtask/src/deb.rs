//! `cargo xtask deb [--test]`: the Debian package, with `cargo deb`.
//!
//! 1. `cargo-deb` is installed on demand (`cargo install cargo-deb
//!    --locked`), not by `setup`: only packagers need it.
//! 2. The release binary is built (with the XDP program), and asked for its
//!    man pages and bash/zsh/fish completions (`vrrp-agent generate`, the
//!    clap definition itself), written to `target/release/dist/`. The
//!    shipped `/etc/vrrp-agent/vrrp-agent.toml` is written there too: the
//!    example of `packaging/vrrp-agent.toml` with every line commented out,
//!    so installing the package never starts advertising on a network.
//! 3. `cargo deb --no-build` packs what `[package.metadata.deb]` of
//!    vrrp-agent/Cargo.toml lists: binary, unit (not enabled, not started),
//!    config (a conffile), example, man pages, completions, copyright.
//!
//! `--test` then checks the package without a running systemd: its file
//! list and conffiles, that the maintainer scripts neither enable nor start
//! the unit, and, unpacked into a scratch root, that the shipped binary
//! passes `check` on the shipped example and refuses the inert /etc file
//! (no instance) with a clear line, that
//! `systemd-analyze verify` accepts the shipped unit (with the shipped man
//! pages for its `Documentation=`), and that every man page renders without
//! warnings.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail, ensure};
use clap::Args;

/// Arguments of `cargo xtask deb`.
#[derive(Args)]
pub struct DebArgs {
    /// Then test the package (contents, install into a scratch root, check, verify).
    #[arg(long)]
    test: bool,
}

/// Every file the package must hold (paths as `dpkg-deb --contents` shows them).
const EXPECTED: &[&str] = &[
    "./usr/bin/vrrp-agent",
    "./usr/lib/systemd/system/vrrp-agent.service",
    "./etc/vrrp-agent/vrrp-agent.toml",
    "./usr/share/doc/vrrp-agent/examples/vrrp-agent.toml",
    "./usr/share/doc/vrrp-agent/copyright",
    "./usr/share/doc/vrrp-agent/README.md",
    "./usr/share/man/man1/vrrp-agent.1.gz",
    "./usr/share/man/man1/vrrp-agent-run.1.gz",
    "./usr/share/man/man1/vrrp-agent-check.1.gz",
    "./usr/share/man/man1/vrrp-agent-status.1.gz",
    "./usr/share/man/man1/vrrp-agent-import-keepalived.1.gz",
    "./usr/share/man/man5/vrrp-agent.toml.5.gz",
    "./usr/share/bash-completion/completions/vrrp-agent",
    "./usr/share/zsh/vendor-completions/_vrrp-agent",
    "./usr/share/fish/vendor_completions.d/vrrp-agent.fish",
];

fn say(msg: &str) {
    eprintln!("deb: {msg}");
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

/// Runs `cmd`; fails with its command line.
fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let line = format!("{cmd:?}").replace('"', "");
    say(&line);
    let status = cmd.status().with_context(|| format!("cannot run {line}"))?;
    ensure!(status.success(), "{line} failed ({status})");
    Ok(())
}

/// Runs `cmd` and returns its stdout; fails with its stderr.
fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let line = format!("{cmd:?}").replace('"', "");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {line}"))?;
    ensure!(
        out.status.success(),
        "{line} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ensure_cargo_deb() -> anyhow::Result<()> {
    let have = cargo()
        .args(["deb", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if have {
        return Ok(());
    }
    say("cargo-deb missing: installing it (a few minutes, once)");
    run(cargo().args(["install", "cargo-deb", "--locked"]))
}

/// Builds the package; returns the path of the .deb.
pub fn build() -> anyhow::Result<PathBuf> {
    ensure_cargo_deb()?;
    run(cargo()
        .args(["build", "--release", "--package", "vrrp-agent"])
        .env_remove("AYA_BUILD_SKIP"))?;
    let release = target_dir().join("release");
    let bin = release.join("vrrp-agent");
    let dist = release.join("dist");
    if dist.exists() {
        fs::remove_dir_all(&dist).with_context(|| format!("cannot remove {}", dist.display()))?;
    }
    run(Command::new(&bin)
        .args(["generate", "man"])
        .arg(dist.join("man")))?;
    // cargo-deb compresses the man pages it takes from the source tree, not
    // those under target/release: Debian policy wants them gzipped.
    for page in walk(&dist.join("man"))? {
        run(Command::new("gzip").args(["-9", "-n"]).arg(page))?;
    }
    for shell in ["bash", "zsh", "fish"] {
        run(Command::new(&bin)
            .args(["generate", "completions", shell])
            .arg(dist.join("completions")))?;
    }
    let example = fs::read_to_string(root().join("packaging/vrrp-agent.toml"))
        .context("packaging/vrrp-agent.toml")?;
    fs::create_dir_all(dist.join("etc"))?;
    fs::write(dist.join("etc/vrrp-agent.toml"), commented_out(&example))?;

    // cargo deb prints the path of the package on stdout.
    say("cargo deb --package vrrp-agent --no-build");
    let out = output(cargo().args(["deb", "--package", "vrrp-agent", "--no-build"]))?;
    let deb = out
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with(".deb"))
        .map(|l| PathBuf::from(l.trim()))
        .context("cargo deb printed no package path")?;
    say(&format!("package: {}", deb.display()));
    Ok(deb)
}

/// The shipped /etc file: the example, inert until its lines are uncommented.
fn commented_out(example: &str) -> String {
    let mut s = String::from(
        "# vrrp-agent configuration: inert as shipped (no instance), so that\n\
         # installing the package never claims an address on your network\n\
         # (`check` and the unit refuse it: \"no [[instance]] configured\").\n\
         # Uncomment and adapt the example below (vrrp-agent.toml(5)), then:\n\
         #   vrrp-agent check --config /etc/vrrp-agent/vrrp-agent.toml\n\
         #   systemctl enable --now vrrp-agent\n\
         #\n",
    );
    for line in example.lines() {
        let sep = if line.is_empty() || line.starts_with('#') {
            ""
        } else {
            " "
        };
        s.push_str(&format!("#{sep}{line}\n"));
    }
    s
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Tests the package without a running systemd.
pub fn test(deb: &Path) -> anyhow::Result<()> {
    let contents = output(Command::new("dpkg-deb").arg("--contents").arg(deb))?;
    let paths: Vec<&str> = contents
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    let missing: Vec<&&str> = EXPECTED.iter().filter(|p| !paths.contains(p)).collect();
    ensure!(missing.is_empty(), "missing from the package: {missing:?}");
    say(&format!("contents: all {} expected files", EXPECTED.len()));

    let scratch = Scratch(target_dir().join(format!("deb-test-{}", std::process::id())));
    let _ = fs::remove_dir_all(&scratch.0);
    fs::create_dir_all(&scratch.0)?;
    let (ctrl, root) = (scratch.0.join("DEBIAN"), scratch.0.join("root"));
    run(Command::new("dpkg-deb").arg("-e").arg(deb).arg(&ctrl))?;
    let conffiles = fs::read_to_string(ctrl.join("conffiles")).context("no conffiles")?;
    ensure!(
        conffiles
            .lines()
            .any(|l| l == "/etc/vrrp-agent/vrrp-agent.toml"),
        "/etc/vrrp-agent/vrrp-agent.toml is not a conffile: {conffiles}"
    );
    // cargo-deb's "dont-enable" postinst re-enables the unit on upgrade only
    // if the admin had enabled it (`was-enabled`); nothing may start it.
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        let text = fs::read_to_string(ctrl.join(script)).unwrap_or_default();
        for l in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            let starts = l.contains("deb-systemd-invoke") && !l.contains("stop");
            let enables = l.contains("deb-systemd-helper enable") && !text.contains("was-enabled");
            ensure!(
                !(starts || enables),
                "{script} enables or starts the unit on install: {}",
                l.trim()
            );
        }
    }
    say("control: conffile listed; the unit is neither enabled nor started on install");

    run(Command::new("dpkg").arg("-x").arg(deb).arg(&root))?;
    let bin = root.join("usr/bin/vrrp-agent");
    run(Command::new(&bin)
        .args(["check", "--config"])
        .arg(root.join("usr/share/doc/vrrp-agent/examples/vrrp-agent.toml")))?;
    // The inert /etc file has no instance, which `check` (and so the unit's
    // ExecStartPre) refuses: starting the unit before configuring it fails
    // with this one line instead of idling.
    let etc = root.join("etc/vrrp-agent/vrrp-agent.toml");
    let out = Command::new(&bin)
        .args(["check", "--config"])
        .arg(&etc)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1) && stderr.contains("no [[instance]] configured"),
        "check on the shipped /etc file: {} {stderr}",
        out.status
    );
    let example =
        fs::read_to_string(root.join("usr/share/doc/vrrp-agent/examples/vrrp-agent.toml"))?;
    ensure!(
        fs::read_to_string(&etc)? == commented_out(&example),
        "the /etc file is not the shipped example commented out"
    );
    say(
        "the shipped binary accepts the example; the /etc file is the example, inert, refused until edited",
    );

    let manpath = root.join("usr/share/man");
    for page in walk(&manpath)? {
        let warnings = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&page)
            .env("MANWIDTH", "80")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .output();
        match warnings {
            Ok(o) if o.status.success() && o.stderr.is_empty() => {}
            Ok(o) => bail!(
                "man {}: {}",
                page.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => say(&format!("SKIPPED man page rendering: cannot run man: {e}")),
        }
    }
    say("man pages render without warnings");

    let unit = fs::read_to_string(root.join("usr/lib/systemd/system/vrrp-agent.service"))?;
    let unit_copy = scratch.0.join("vrrp-agent.service");
    let bin_str = bin.to_str().context("non-UTF-8 scratch path")?;
    fs::write(&unit_copy, unit.replace("/usr/bin/vrrp-agent", bin_str))?;
    match Command::new("systemd-analyze").arg("--version").output() {
        Err(e) => say(&format!(
            "SKIPPED systemd-analyze verify: cannot run systemd-analyze ({e}); install the systemd package"
        )),
        Ok(_) => {
            let out = Command::new("systemd-analyze")
                .arg("verify")
                .arg(&unit_copy)
                .env("MANPATH", &manpath)
                .output()?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            ensure!(
                out.status.success() && stderr.trim().is_empty(),
                "systemd-analyze verify: {}",
                stderr.trim()
            );
            say("systemd-analyze verify: the shipped unit is clean");
        }
    }
    Ok(())
}

fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for e in fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            files.extend(walk(&p)?);
        } else {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// `cargo xtask deb [--test]`.
pub fn run_deb(args: DebArgs) -> anyhow::Result<()> {
    let deb = build()?;
    if args.test {
        test(&deb)?;
        say("all package tests passed");
    }
    Ok(())
}
