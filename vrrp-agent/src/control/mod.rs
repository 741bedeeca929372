//! The control interface of the running daemon.
//!
//! - [`status`]: the status document (SPEC's `status --json` contract) and
//!   the table `vrrp-agent status` prints — the contract, no I/O.
//! - [`server`]: the control socket (server side, and the client used by
//!   `vrrp-agent status`).
//! - [`accept`]: the bounded accept loop both the control socket and the
//!   metrics endpoint run.

pub mod accept;
pub mod server;
pub mod status;

pub use accept::{ConnLimit, MAX_CONNECTIONS};
pub use server::{
    CLIENT_TIMEOUT, ControlError, ControlSocket, check_socket_free, query_status, request,
};
pub use status::{
    CheckStatus, Counters, Histogram, INTERARRIVAL_BUCKETS, InstanceStatus, PeerMismatchStatus,
    RxDropped, STATES, State, Status, SyncGroupStatus, TrackStatus, VipCounters, XdpStatus,
    render_table,
};
