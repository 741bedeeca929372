//! Rebuild when bpf-linker changes (a cargo artifact dependency would express
//! this properly; cargo#12385).
fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
