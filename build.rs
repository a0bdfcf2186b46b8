fn main() {
    // The C tests compile with the cc crate outside a build script, where
    // cc needs to be told the target triple.
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=VECTORD_BUILD_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");

    // The shared library's SONAME carries the ABI version, so programs linked
    // against ABI N never load an incompatible libvectord. The number is read
    // from the constant the C header and vectord_abi_version() use, so there
    // is one place to bump it.
    let ffi = "src/ffi/mod.rs";
    println!("cargo:rerun-if-changed={ffi}");
    let src = std::fs::read_to_string(ffi).expect("build.rs: reading src/ffi/mod.rs");
    let abi = abi_version(&src)
        .expect("build.rs: no `pub const VECTORD_ABI_VERSION: u32 = N;` in src/ffi/mod.rs");
    if target.contains("linux") || target.contains("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libvectord.so.{abi}");
    }
}

/// The value of `pub const VECTORD_ABI_VERSION: u32 = N;`.
fn abi_version(src: &str) -> Option<u32> {
    src.lines().find_map(|line| {
        let rest = line
            .trim()
            .strip_prefix("pub const VECTORD_ABI_VERSION: u32 =")?;
        rest.trim().strip_suffix(';')?.trim().parse().ok()
    })
}
