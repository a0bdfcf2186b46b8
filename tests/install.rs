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
use cbuild::{profile_dir, root};

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
