//! Exists so that vrrp-agent can list this crate as a build-dependency; the
//! programs are the binaries (`vrrp`, `vrrp-baseline`).
#![no_std]

// The dependencies are the binaries'; this library only anchors the
// build-dependency, so it marks them used (`unused_crate_dependencies`).
use aya_ebpf as _;
use vrrp_common as _;
