//! `cargo xtask`: setup, demo, test, bench.
fn main() -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
