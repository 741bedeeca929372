//! The VRRP protocol core: wire codec and state machine. Pure and deterministic.
