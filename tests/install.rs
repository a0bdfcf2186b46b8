//! What the installed shared library promises to C programs: its SONAME
//! carries the ABI version, and its dynamic symbol table is exactly the C
//! API of include/vectord.h (nothing of Rust's std or of the dependencies
//! leaks out, and nothing in the header is missing). scripts/install-test.sh
//! checks the installed files end to end.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

#[path = "common/cbuild.rs"]
mod cbuild;
use cbuild::{compiler, profile_dir, root, static_lib};

/// The cdylib this test run built (cargo test builds it in deps/).
fn shared_lib() -> PathBuf {
    let lib = profile_dir().join("deps").join("libvectord.so");
    assert!(lib.exists(), "{} is missing", lib.display());
    lib
}

fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {name} (binutils): {e}"));
    assert!(out.status.success(), "{name} {args:?} failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Every function declared in the header: identifiers followed by "(" once
/// the comments are gone.
fn header_functions() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("include/vectord.h")).unwrap();
    let mut code = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("/*") {
        code.push_str(&rest[..start]);
        let end = rest[start..].find("*/").expect("unterminated comment") + start + 2;
        rest = &rest[end..];
    }
    code.push_str(rest);
    // Preprocessor lines, with their backslash continuations, declare no functions.
    let mut in_directive = false;
    let code: String = code
        .lines()
        .filter(|l| {
            let skip = in_directive || l.trim_start().starts_with('#');
            in_directive = skip && l.trim_end().ends_with('\\');
            !skip
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut names = BTreeSet::new();
    let bytes = code.as_bytes();
    for (i, _) in code.match_indices('(') {
        let mut start = i;
        while start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            start -= 1;
        }
        if start < i {
            names.insert(code[start..i].to_string());
        }
    }
    names
}

fn exported(lib: &std::path::Path) -> BTreeSet<String> {
    tool("nm", &["-D", "--defined-only", lib.to_str().unwrap()])
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(|s| s.split('@').next().unwrap().to_string())
        .collect()
}

#[test]
fn shared_library_exports_exactly_the_c_api() {
    let symbols = exported(&shared_lib());
    let foreign: Vec<&String> = symbols
        .iter()
        .filter(|s| !s.starts_with("vectord_"))
        .collect();
    assert!(
        foreign.is_empty(),
        "libvectord.so exports symbols outside the C API: {foreign:?}"
    );
    let declared = header_functions();
    assert!(declared.len() >= 30, "header parse found only {declared:?}");
    let missing: Vec<&String> = declared.difference(&symbols).collect();
    assert!(
        missing.is_empty(),
        "declared in include/vectord.h but not exported: {missing:?}"
    );
    let undeclared: Vec<&String> = symbols.difference(&declared).collect();
    assert!(
        undeclared.is_empty(),
        "exported but not in include/vectord.h: {undeclared:?}"
    );
}

#[test]
fn shared_library_soname_carries_the_abi_version() {
    let dynamic = tool("readelf", &["-d", shared_lib().to_str().unwrap()]);
    let soname = dynamic
        .lines()
        .find(|l| l.contains("(SONAME)"))
        .unwrap_or_else(|| panic!("libvectord.so has no SONAME:\n{dynamic}"));
    let want = format!("[libvectord.so.{}]", vectord::ffi::VECTORD_ABI_VERSION);
    assert!(soname.contains(&want), "{soname} (want {want})");
}

/// The header's version macros, compiled into a C program, against what the
/// library answers at run time and what Cargo.toml says.
#[test]
fn header_version_macros_equal_the_runtime_versions() {
    const PROGRAM: &str = r#"#include <stdio.h>
#include "vectord.h"
int main(void) {
    printf("%d.%d.%d|%s|%s|%d|%u\n", VECTORD_VERSION_MAJOR, VECTORD_VERSION_MINOR,
           VECTORD_VERSION_PATCH, VECTORD_VERSION_STRING, vectord_version(),
           VECTORD_ABI_VERSION, vectord_abi_version());
    return 0;
}
"#;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("version-macros");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("version.c");
    std::fs::write(&src, PROGRAM).unwrap();
    let exe = dir.join("version");
    let mut cc = compiler(false).to_command();
    cc.args(["-std=c99", "-Wall", "-Werror", "-I"])
        .arg(root().join("include"))
        .arg(&src)
        .arg(static_lib())
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe);
    let built = cc.output().expect("run the C compiler");
    assert!(built.status.success(), "{built:?}");
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = String::from_utf8(out.stdout).unwrap();
    let v = env!("CARGO_PKG_VERSION");
    let abi = vectord::ffi::VECTORD_ABI_VERSION;
    assert_eq!(out.trim(), format!("{v}|{v}|{v}|{abi}|{abi}"));
}
