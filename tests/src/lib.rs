//! Shared helpers for the privileged end-to-end tests.
pub mod cluster;
pub mod faults;
pub mod frames;
pub mod netns;
pub mod xdp;
