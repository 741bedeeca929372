//! Shared helpers for the privileged end-to-end tests.
pub mod cluster;
pub mod frames;
pub mod netns;
pub mod xdp;

// A dev-dependency of the integration tests, linked into the unit tests too.
#[cfg(test)]
use vrrp_common as _;
