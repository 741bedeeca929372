//! Shared helpers for the privileged end-to-end tests.
pub mod frames;
pub mod netns;
pub mod xdp;
