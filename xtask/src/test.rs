//! `cargo xtask test`.
use clap::Args;

/// Arguments of `cargo xtask test`.
#[derive(Args)]
pub struct TestArgs {}

pub fn run(_args: TestArgs) -> anyhow::Result<()> {
    anyhow::bail!("test: not implemented yet")
}
