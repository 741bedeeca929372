//! Builds the XDP objects (`vrrp`, `vrrp-baseline`) into this crate's
//! `OUT_DIR`, where `src/xdp.rs` embeds them for the BPF_PROG_TEST_RUN tests
//! and the benchmark. Same recipe as `vrrp-agent/build.rs` (aya-build:
//! nightly + bpf-linker); the objects of another crate's build script are not
//! reachable from here, so they are built a second time.
//!
//! `AYA_BUILD_SKIP=1` embeds empty objects; the XDP tests then skip.

use std::{env, fs, path::PathBuf};

use anyhow::{Context as _, anyhow};

const OBJECTS: [&str; 2] = ["vrrp", "vrrp-baseline"];

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v == "true");
    if skip || which::which("bpf-linker").is_err() {
        for name in OBJECTS {
            fs::write(out_dir.join(name), [])?;
        }
        println!(
            "cargo:warning=eBPF build skipped (AYA_BUILD_SKIP or no bpf-linker): XDP tests will skip"
        );
        return Ok(());
    }
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
