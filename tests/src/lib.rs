//! Shared helpers for the privileged end-to-end tests, and the project's
//! network-namespace lab library ([`netns`]), which xtask uses too (without
//! the default `agent` feature, so without vrrp-agent and its eBPF build).
pub mod cluster;
pub mod faults;
pub mod frames;
pub mod netns;
pub mod redis;
#[cfg(feature = "agent")]
pub mod xdp;

// A dev-dependency of the integration tests, linked into the unit tests too.
#[cfg(test)]
use vrrp_common as _;
