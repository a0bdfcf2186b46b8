//! Building C against the library from a cargo test: where the library is,
//! and which compiler to use. Shared by c_tests.rs, restart.rs and header.rs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// target/<profile>/, from the test binary's own path
/// (target/<profile>/deps/<test>-<hash>).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// The staticlib this test run built. cargo test builds it in deps/ and does
/// not copy it up to target/<profile>/ (only cargo build does), so the copy
/// there may be stale.
pub fn static_lib() -> PathBuf {
    let lib = profile_dir().join("deps").join("libvectord.a");
    assert!(
        lib.exists(),
        "{} is missing: cargo builds it with the library (crate-type staticlib)",
        lib.display()
    );
    lib
}

/// The C (or C++) compiler the cc crate picks for this target (honours
/// CC/CFLAGS), unoptimised with debug info; callers add -Werror and the
/// warnings they want. (Not `warnings(false)`: cc turns that into `-w`,
/// which silences every warning, so -Werror checks nothing.)
pub fn compiler(cpp: bool) -> cc::Tool {
    let target = env!("VECTORD_BUILD_TARGET");
    cc::Build::new()
        .target(target)
        .host(target)
        .opt_level(0)
        .debug(true)
        .cpp(cpp)
        .cargo_metadata(false)
        .get_compiler()
}
