//! `cargo xtask test`: every test, in two layers.
//!
//! 1. Unprivileged: `cargo test` over the workspace (protocol core, codec,
//!    config, data-plane decoding), without the eBPF crate (it only builds
//!    for bpfel-unknown-none) and without the `tests` crate.
//! 2. Privileged (root): the `tests` crate, one test at a time because the
//!    tests share kernel state (XDP attachments, namespaces): the XDP
//!    program under BPF_PROG_TEST_RUN, network-namespace end-to-end tests
//!    and keepalived interop.
//!
//! The eBPF objects are always built here (`AYA_BUILD_SKIP` is cleared), and
//! the privileged tests are told to fail rather than skip when XDP is
//! missing.

use std::process::Command;

use anyhow::{Context as _, bail};
use clap::Args;

/// Arguments of `cargo xtask test`.
#[derive(Args)]
pub struct TestArgs {
    /// Only the unprivileged unit tests (no root needed).
    #[arg(long)]
    unit_only: bool,
    /// Only the privileged tests (`tests` crate).
    #[arg(long, conflicts_with = "unit_only")]
    privileged_only: bool,
    /// Test name filter passed to the test binaries.
    filter: Option<String>,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn cargo(args: &[&str], test_args: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.args(args)
        .env_remove("AYA_BUILD_SKIP")
        .env("VRRP_TESTS_REQUIRE_XDP", "1");
    if !test_args.is_empty() {
        cmd.arg("--").args(test_args);
    }
    eprintln!("test: {}", format!("{cmd:?}").replace('"', ""));
    let status = cmd.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs setup, then the unit tests, then the privileged tests. Every layer
/// runs even if an earlier one failed (and every test binary, with
/// `--no-fail-fast`), so one run shows all failures.
pub fn run(args: TestArgs) -> anyhow::Result<()> {
    crate::setup::run()?;
    let filter: Vec<&str> = args.filter.as_deref().into_iter().collect();
    let mut failed = Vec::new();
    if !args.privileged_only {
        eprintln!("test: unit tests");
        let unit = [
            "test",
            "--no-fail-fast",
            "--workspace",
            "--exclude",
            "vrrp-ebpf",
            "--exclude",
            "tests",
        ];
        if let Err(e) = cargo(&unit, &filter) {
            eprintln!("test: {e:#}");
            failed.push("unit tests");
        }
    }
    if !args.unit_only {
        if !is_root() {
            bail!(
                "the privileged tests need root (network namespaces, XDP, raw sockets): \
                 run `cargo xtask test` as root, or `cargo xtask test --unit-only`"
            );
        }
        eprintln!("test: privileged tests (network namespaces, XDP, keepalived interop)");
        let mut test_args = vec!["--test-threads=1"];
        test_args.extend(filter);
        if let Err(e) = cargo(
            &["test", "--no-fail-fast", "--package", "tests"],
            &test_args,
        ) {
            eprintln!("test: {e:#}");
            failed.push("privileged tests");
        }
        // The benchmark harness, reduced, so that it never rots (a check,
        // not a measurement); skipped when a test filter is given.
        if args.filter.is_none() {
            eprintln!("test: cargo xtask bench --quick (the benchmark harness)");
            if let Err(e) = crate::bench::quick() {
                eprintln!("test: {e:#}");
                failed.push("bench --quick");
            }
        }
    }
    if !failed.is_empty() {
        bail!("failed: {}", failed.join(", "));
    }
    eprintln!("test: all passed");
    Ok(())
}
