//! vrrp-agent: a VRRP failover agent with an XDP data plane.
//!
//! - [`proto`]: the protocol core, pure (no sockets, no clocks, no tokio).
//! - [`dataplane`]: loads the XDP program, reads its ring buffer and counters.
#![deny(missing_docs)]

pub mod proto;
pub mod dataplane;
