//! `cargo xtask setup`: installs every prerequisite on a Debian machine.
//!
//! Idempotent and quick when everything is there: each step checks first
//! and only acts on what is missing (`apt-get update` only runs when a
//! package has to be installed). Prints one line per step.

use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

/// Debian packages: the eBPF toolchain's LLVM (for bpf-linker), what the
/// tests, the demo and the benchmarks drive (keepalived, iproute2, tcpdump,
/// ping, arping, procps, redis-server and redis-cli for the hot-standby
/// test and demo) and a C toolchain for `cargo install`.
const PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "zlib1g-dev",
    "libzstd-dev",
    "build-essential",
    "keepalived",
    "iproute2",
    "tcpdump",
    "iputils-ping",
    "arping",
    "procps",
    "redis-server",
    "redis-tools",
    "nftables",
    // systemd-analyze, for the unit's `verify` test (packaging.rs).
    "systemd",
];

/// bpf-linker is built against Debian's LLVM 22 (its default is LLVM 23).
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

fn say(msg: &str) {
    eprintln!("setup: {msg}");
}

/// Runs a command with inherited output; fails with the command line.
fn run_cmd(cmd: &mut Command) -> anyhow::Result<()> {
    let line = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot run {line}"))?;
    if !status.success() {
        bail!("{line} failed ({status})");
    }
    Ok(())
}

/// Runs a command quietly and returns its stdout if it succeeded.
fn probe(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn installed(pkg: &str) -> bool {
    probe("dpkg-query", &["-W", "-f=${Status}", pkg])
        .is_some_and(|s| s.contains("install ok installed"))
}

fn apt_packages() -> anyhow::Result<()> {
    if probe("dpkg-query", &["--version"]).is_none() {
        bail!("dpkg-query not found: `cargo xtask setup` supports Debian-based systems only");
    }
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        say("apt packages: all installed");
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing Debian packages {missing:?}; run `cargo xtask setup` as root to install them"
        );
    }
    say(&format!("apt packages: installing {}", missing.join(" ")));
    run_cmd(
        Command::new("apt-get")
            .args(["update", "-q"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    // Tests and the demo start keepalived and redis-server themselves inside
    // their namespaces: keep the packages' services from starting.
    let _no_services = NoServiceStart::install()?;
    run_cmd(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null()),
    )
    .with_context(|| {
        "installing Debian packages failed; llvm-22-dev may need the apt.llvm.org \
         repository (https://apt.llvm.org) on this release"
    })
}

/// Debian's `policy-rc.d` hook answering 101 ("action forbidden") while the
/// packages install, so no service (redis-server, keepalived) is started on
/// the host. Removed on drop, unless one was already there (then it is left
/// alone and decides).
struct NoServiceStart(Option<&'static str>);

impl NoServiceStart {
    const PATH: &'static str = "/usr/sbin/policy-rc.d";

    fn install() -> anyhow::Result<Self> {
        use std::os::unix::fs::PermissionsExt as _;
        if std::path::Path::new(Self::PATH).exists() {
            return Ok(NoServiceStart(None));
        }
        std::fs::write(
            Self::PATH,
            "#!/bin/sh\n# cargo xtask setup: no service starts during install\nexit 101\n",
        )
        .with_context(|| format!("cannot write {}", Self::PATH))?;
        std::fs::set_permissions(Self::PATH, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot chmod {}", Self::PATH))?;
        Ok(NoServiceStart(Some(Self::PATH)))
    }
}

impl Drop for NoServiceStart {
    fn drop(&mut self) {
        if let Some(path) = self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn rust_toolchain() -> anyhow::Result<()> {
    let toolchains = probe("rustup", &["toolchain", "list"])
        .context("rustup not found: install it from https://rustup.rs first")?;
    if toolchains.lines().any(|l| l.starts_with("nightly")) {
        say("nightly toolchain: present");
    } else {
        say("nightly toolchain: installing (minimal profile)");
        run_cmd(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    let components = probe(
        "rustup",
        &["component", "list", "--toolchain", "nightly", "--installed"],
    )
    .unwrap_or_default();
    if components.lines().any(|l| l.starts_with("rust-src")) {
        say("nightly rust-src: present");
    } else {
        // -Z build-std=core for bpfel-unknown-none needs the core sources.
        say("nightly rust-src: installing");
        run_cmd(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
    }
    Ok(())
}

fn bpf_linker() -> anyhow::Result<()> {
    if let Some(v) = probe("bpf-linker", &["--version"]) {
        say(&format!("bpf-linker: present ({})", v.trim()));
        return Ok(());
    }
    say("bpf-linker: building against LLVM 22 (about a minute)");
    // Without LLVM_PREFIX its build script cannot find libLLVM
    // ("-lLLVM not found"); the llvm-22 feature selects the matching API.
    run_cmd(
        Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("LLVM_PREFIX", LLVM_PREFIX)
            .env_remove("CARGO_TARGET_DIR"),
    )?;
    probe("bpf-linker", &["--version"])
        .map(drop)
        .context("bpf-linker installed but not on PATH: add ~/.cargo/bin to PATH")
}

/// Installs whatever is missing.
pub fn run() -> anyhow::Result<()> {
    apt_packages()?;
    rust_toolchain()?;
    bpf_linker()?;
    say("done");
    Ok(())
}
