//! Shared helpers for the privileged end-to-end tests.
pub mod cluster;
pub mod frames;
pub mod netns;
pub mod xdp;
