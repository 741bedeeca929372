//! Compiles the XDP program (crate `vrrp-ebpf`) for bpfel-unknown-none with
//! the nightly toolchain and bpf-linker, and leaves the objects in `OUT_DIR`
//! where `src/dataplane` embeds them.
//!
//! `AYA_BUILD_SKIP=1` skips the eBPF build and embeds empty objects, so the
//! pure parts (protocol core, config) build and test on machines without the
//! eBPF toolchain; the agent then refuses XDP modes other than `off`.

use std::{env, fs, path::PathBuf, process::Command};

use anyhow::{Context as _, anyhow};
// A build-dependency only so that cargo rebuilds when the eBPF crate changes
// (see Cargo.toml); no code of it runs here.
use vrrp_ebpf as _;

const OBJECTS: [&str; 2] = ["vrrp", "vrrp-baseline"];

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v == "true");
    if skip {
        for name in OBJECTS {
            fs::write(out_dir.join(name), [])?;
        }
        println!(
            "cargo:warning=AYA_BUILD_SKIP set: embedding empty eBPF objects (XDP unavailable)"
        );
        return Ok(());
    }
    check_prerequisites()?;

    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let ebpf = metadata
        .packages
        .into_iter()
        .find(|p| p.name.as_str() == "vrrp-ebpf")
        .ok_or_else(|| anyhow!("vrrp-ebpf package not found in the workspace"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("vrrp-ebpf manifest has no parent directory"))?
        .as_str()
        .to_owned();
    aya_build::build_ebpf(
        [aya_build::Package {
            name: ebpf.name.as_str(),
            root_dir: &root_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}

/// One clear message instead of a wall of linker errors.
fn check_prerequisites() -> anyhow::Result<()> {
    const FIX: &str = "run `cargo xtask setup` (or set AYA_BUILD_SKIP=1 to build without XDP)";
    if which::which("bpf-linker").is_err() {
        return Err(anyhow!("bpf-linker not found on PATH: {FIX}"));
    }
    let sysroot = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--print", "sysroot"])
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .output()
        .map_err(|e| anyhow!("cannot run `rustup run nightly rustc`: {e}: {FIX}"))?;
    if !sysroot.status.success() {
        return Err(anyhow!("the nightly toolchain is not installed: {FIX}"));
    }
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
    let core = PathBuf::from(sysroot).join("lib/rustlib/src/rust/library/core");
    if !core.exists() {
        return Err(anyhow!("the nightly toolchain lacks rust-src: {FIX}"));
    }
    Ok(())
}
