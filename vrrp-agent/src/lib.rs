//! vrrp-agent: a VRRP failover agent with an XDP data plane.
//!
//! - [`proto`]: the protocol core, pure (no sockets, no clocks, no tokio).
//! - [`agent`]: every instance and every decision around the core, pure
//!   too: inputs `handle_*(now, ..)`, outputs [`agent::Command`]s.
//! - [`dataplane`]: loads the XDP program, reads its ring buffer and counters.
//! - [`config`]: the TOML config file and its validation.
//! - [`control`]: the status socket, the `Status` document and its table.
//! - [`vips`]: netlink: interfaces, virtual IPs, link/address events.
//! - [`tx`]: advert and gratuitous ARP / NA transmission.
//! - [`notify`]: notify scripts; [`metrics`]: the Prometheus endpoint.
//! - [`sdnotify`]: readiness, reload, stop and watchdog reports to systemd.
//! - [`daemon`]: the tokio shell: the event loop and the executor of the
//!   agent's commands (all I/O).
//! - [`cli`]: the command line, and the man pages and completions made from it.
//! - [`import`]: `import-keepalived`, keepalived.conf to vrrp-agent config.
#![deny(missing_docs)]

// Dependencies of the binary (src/main.rs) and of the integration tests only.
#[cfg(test)]
use proptest as _;
use tracing_subscriber as _;

pub mod agent;
pub mod checks;
pub mod cli;
pub mod cmdline;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod import;
pub mod metrics;
pub mod notify;
pub mod proto;
pub mod sdnotify;
mod timer;
pub mod tx;
pub mod vips;
