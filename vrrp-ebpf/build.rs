//! Rebuild when bpf-linker changes (a cargo artifact dependency would express
//! this properly; cargo#12385).
//!
//! Code generation: packet fields sit at any alignment (the IPv4 addresses of
//! an untagged frame are 2 mod 4), and without `allows-misaligned-mem-access`
//! LLVM splits every such load into byte loads, shifts and ors (a 4-byte
//! address costs 10 instructions instead of 1). The kernel's verifier accepts
//! misaligned packet and map-value loads on the architectures with efficient
//! unaligned access (x86-64, arm64), where the agent runs; it insists on
//! aligned stack slots, which LLVM keeps aligned anyway. bpf-linker built
//! against an older LLVM warns about the unknown feature and ignores it.
fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
    println!("cargo:rustc-link-arg=--cpu-features=+allows-misaligned-mem-access");
}
