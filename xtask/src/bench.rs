//! `cargo xtask bench`.
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
        Some(Which::Xdp) | None => anyhow::bail!("bench xdp: not implemented yet"),
    }
}
