//! `cargo xtask bench`.
//!
//! `bench xdp` builds and runs the `xdp_bench` example of the `tests` crate
//! (which loads the XDP objects with aya and times them by
//! BPF_PROG_TEST_RUN), so xtask itself does not depend on aya. The table is
//! printed and written to `<target dir>/bench/xdp.md`.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

/// Arguments of `cargo xtask bench`.
#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    which: Option<Which>,
}

#[derive(Subcommand)]
enum Which {
    /// XDP per-packet cost by BPF_PROG_TEST_RUN, against an empty XDP_PASS baseline.
    Xdp,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.which {
        Some(Which::Xdp) | None => xdp(),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn xdp() -> anyhow::Result<()> {
    crate::setup::run()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("bench xdp needs root (CAP_BPF for BPF_PROG_TEST_RUN)");
    }
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    println!("building and running the xdp_bench example (release)...");
    let out = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "tests",
            "--example",
            "xdp_bench",
        ])
        .output()
        .context("running cargo")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        bail!("xdp_bench failed ({})", out.status);
    }
    let dir = target.join("bench");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let report = dir.join("xdp.md");
    fs::write(&report, format!("# XDP per-packet cost\n\n{stdout}"))
        .with_context(|| format!("writing {}", report.display()))?;
    println!("report: {}", report.display());
    Ok(())
}
