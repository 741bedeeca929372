//! Exists so that vrrp-agent can list this crate as a build-dependency; the
//! programs are the binaries (`vrrp`, `vrrp-baseline`).
#![no_std]
