//! Shared helpers for the privileged end-to-end tests.
