//! Builds the C test programs in c-tests/ against include/vectord.h and the
//! static library cargo built for this test run, and runs them: plainly,
//! under valgrind, and with AddressSanitizer and UndefinedBehaviorSanitizer
//! on the C side.
//!
//! `cargo test` builds the library (all its crate types, so
//! `libvectord.a`) before any integration test runs; the tests link the copy
//! in target/<profile>/deps/.

use std::path::PathBuf;
use std::process::Command;

#[path = "common/cbuild.rs"]
mod cbuild;
use cbuild::{compiler, root, static_lib};

fn out_dir(what: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("c-tests")
        .join(what);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The C test sources, sorted.
fn sources() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("c-tests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "c")
                && p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("test_")
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no c-tests/test_*.c");
    v
}

/// Compiles every test program with `extra` flags into `out_dir(what)`.
fn build_all(what: &str, extra: &[&str]) -> Vec<PathBuf> {
    let lib = static_lib();
    let dir = out_dir(what);
    sources()
        .into_iter()
        .map(|src| {
            let exe = dir.join(src.file_stem().unwrap());
            let mut cmd = compiler(false).to_command();
            cmd.args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"])
                .args(extra)
                .arg("-I")
                .arg(root().join("include"))
                .arg("-I")
                .arg(root().join("c-tests"))
                .arg(&src)
                .arg(&lib)
                .args(["-lpthread", "-ldl", "-lm", "-o"])
                .arg(&exe);
            let out = cmd.output().expect("run the C compiler");
            assert!(
                out.status.success(),
                "compiling {} failed:\n{:?}\n{}",
                src.display(),
                cmd,
                String::from_utf8_lossy(&out.stderr)
            );
            exe
        })
        .collect()
}

/// Runs `cmd` (a test program, maybe wrapped) and checks it reports
/// "N passed, 0 failed" and exits 0.
fn run_checked(mut cmd: Command, name: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {name}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let last = stdout.lines().last().unwrap_or("").to_string();
    println!("{last}");
    assert!(
        out.status.success() && last.ends_with(" passed, 0 failed"),
        "{name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    stderr
}

#[test]
fn c_tests_pass() {
    for exe in build_all("plain", &["-g"]) {
        let name = exe.file_name().unwrap().to_string_lossy().to_string();
        run_checked(Command::new(&exe), &name);
    }
}

fn tool_works(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn missing_tool(what: &str) {
    let msg = format!(
        "\n!!!!!!!!\n!!! {what} is not available here: this check did NOT run.\n!!!!!!!!\n"
    );
    eprintln!("{msg}");
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{what} is required when CI=true");
    }
}

#[test]
fn c_tests_under_valgrind() {
    if !tool_works("valgrind", &["--version"]) {
        missing_tool("valgrind");
        return;
    }
    for exe in build_all("valgrind", &["-g"]) {
        let name = exe.file_name().unwrap().to_string_lossy().to_string();
        let mut cmd = Command::new("valgrind");
        cmd.args([
            "--error-exitcode=1",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite",
        ])
        .arg(&exe);
        let stderr = run_checked(cmd, &name);
        let summary = stderr
            .lines()
            .filter(|l| l.contains("ERROR SUMMARY") || l.contains("definitely lost"))
            .map(|l| format!("{name}: {}", l.trim()))
            .collect::<Vec<_>>()
            .join("\n");
        println!("{summary}");
        assert!(
            stderr.contains("ERROR SUMMARY: 0 errors"),
            "{name} under valgrind:\n{stderr}"
        );
    }
}

#[test]
fn c_tests_with_address_sanitizer() {
    // Probe: can this compiler build and run an ASan + UBSan program here?
    let dir = out_dir("asan-probe");
    let probe = dir.join("probe.c");
    std::fs::write(&probe, "int main(void) { return 0; }\n").unwrap();
    let ok = compiler(false)
        .to_command()
        .args(["-fsanitize=address,undefined", "-o"])
        .arg(dir.join("probe"))
        .arg(&probe)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(dir.join("probe"))
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        missing_tool("AddressSanitizer/UBSan (cc -fsanitize=address,undefined)");
        return;
    }
    for exe in build_all(
        "asan",
        &[
            "-g",
            "-fsanitize=address,undefined",
            // Any undefined behaviour fails the run instead of a warning.
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
        ],
    ) {
        let name = exe.file_name().unwrap().to_string_lossy().to_string();
        let mut cmd = Command::new(&exe);
        cmd.env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=1")
            .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1");
        run_checked(cmd, &name);
    }
}

#[test]
fn quickstart_example_runs() {
    let dir = out_dir("quickstart");
    let exe = dir.join("quickstart");
    let mut cmd = compiler(false).to_command();
    cmd.args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I"])
        .arg(root().join("include"))
        .arg(root().join("examples/quickstart.c"))
        .arg(static_lib())
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe);
    let out = cmd.output().expect("run the C compiler");
    assert!(
        out.status.success(),
        "compiling examples/quickstart.c failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(&exe)
        .arg(dir.join("quickstart.lhv1"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "quickstart failed:\n{stdout}");
    assert!(stdout.contains("1. apple"), "{stdout}");
    assert!(stdout.contains("decoded \"fruit\" (4 items)"), "{stdout}");
}
