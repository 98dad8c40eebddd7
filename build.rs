//! The library's SONAME, as a system library has one: programs linked with `-lgreenworld`
//! record `libgreenworld.so.0` (the ABI's major version), which `make install` provides as a
//! symlink beside the versioned file.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libgreenworld.so.0");
    println!("cargo:rerun-if-changed=build.rs");
}
