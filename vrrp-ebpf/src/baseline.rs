//! The smallest XDP program: XDP_PASS. Built exactly like `vrrp` so the
//! benchmark can subtract the cost of BPF_PROG_TEST_RUN itself.
#![no_std]
#![no_main]

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
// Dependencies of the `vrrp` program, linked into this one too.
use vrrp_common as _;
use vrrp_ebpf as _;

/// Passes every frame.
#[xdp]
pub fn vrrp_baseline(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
