//! `cargo xtask setup`.
pub fn run() -> anyhow::Result<()> {
    anyhow::bail!("setup: not implemented yet")
}
