fn main() {
    // The C tests compile with the cc crate outside a build script, where
    // cc needs to be told the target triple.
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=VECTORD_BUILD_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
