//! The library's SONAME, as a system library has one: programs linked with `-lgreenworld`
//! record `libgreenworld.so.0` (the ABI's major version), which `make install` provides as a
//! symlink beside the versioned file.
//!
//! And no `libgcc_s.so.1` among its dependencies: std asks for `-lgcc_s` (its unwinder), which
//! every process that inherits the preload would map and relocate before `main` (README,
//! "Performance": about half of a short child's extra start-up). The release profile aborts on
//! panic and our panic hook prints no backtrace, so the unwinder is never run; it is linked
//! from libgcc's static archive instead (`libgcc_eh.a`, built position-independent for
//! `-static-libgcc`), through a `libgcc_s.so` of our own ahead in the search path: a linker
//! script that names the archive. Its symbols stay local (rustc's version script exports only
//! the library's own).
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libgreenworld.so.0");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let dir = std::path::Path::new(&out).join("static-unwinder");
    std::fs::create_dir_all(&dir).expect("OUT_DIR is writable");
    std::fs::write(dir.join("libgcc_s.so"), "INPUT(-lgcc_eh)\n").expect("OUT_DIR is writable");
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rerun-if-changed=build.rs");
}
