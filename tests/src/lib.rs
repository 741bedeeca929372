//! Shared helpers for the privileged end-to-end tests.
pub mod netns;
