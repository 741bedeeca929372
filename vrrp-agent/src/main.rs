//! vrrp-agent command line.
fn main() -> anyhow::Result<()> {
    anyhow::bail!("vrrp-agent: the daemon is not built yet")
}
