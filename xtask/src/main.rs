//! `cargo xtask`: the developer and operator helper.
//!
//! - `setup`: install every prerequisite on a fresh Debian machine (idempotent).
//! - `test`:  setup, then every test (unit, XDP program, network namespaces, interop).
//! - `demo`:  a failover you can watch, in network namespaces (`demo redis`:
//!   the Redis hot standby).
//! - `bench`: benchmarks (`bench xdp` for the XDP per-packet costs).

mod bench;
mod demo;
mod demo_redis;
mod lab;
mod setup;
mod test;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "vrrp-agent helper: setup, demo, test, bench"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install every prerequisite (apt packages, rust-src, bpf-linker); idempotent.
    Setup,
    /// Run every test: unit, XDP program, network namespaces, keepalived interop.
    Test(test::TestArgs),
    /// Watch a failover: two agents and a client in network namespaces.
    Demo {
        #[command(subcommand)]
        which: Option<DemoKind>,
    },
    /// Benchmarks; writes a report.
    Bench(bench::BenchArgs),
}

#[derive(Subcommand)]
enum DemoKind {
    /// The Redis hot standby: redis-server killed on the master, writes
    /// through the VIP resume on the promoted replica.
    Redis,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Setup => setup::run(),
        Command::Test(args) => test::run(args),
        Command::Demo { which: None } => demo::run(),
        Command::Demo {
            which: Some(DemoKind::Redis),
        } => demo_redis::run(),
        Command::Bench(args) => bench::run(args),
    }
}
