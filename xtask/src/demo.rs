//! `cargo xtask demo`.
pub fn run() -> anyhow::Result<()> {
    anyhow::bail!("the demo needs the agent daemon, which is not built yet")
}
