//! The restart acceptance: real processes (c-tests/restart.c) opening the same
//! store one after another, some killed with SIGKILL, against the reference
//! storaged and against a directory store.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/cbuild.rs"]
mod cbuild;
#[path = "common/moto.rs"]
mod moto;
use cbuild::{compiler, profile_dir, root, static_lib};
use storaged::{spawn_for_tests, ServerOptions};
use vectord::storeclient::{open_store, StoreOptions};

/// Compiles the program once per test binary: both tests share it (two
/// compiles writing the file while the other test runs it would fail with
/// "text file busy").
fn build_restart() -> PathBuf {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    EXE.get_or_init(compile_restart).clone()
}

fn compile_restart() -> PathBuf {
    let root = root();
    let out = profile_dir().join("c-tests");
    std::fs::create_dir_all(&out).unwrap();
    let exe = out.join("restart");
    let lib = static_lib();
    let cc = compiler(false);
    let status = cc
        .to_command()
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-D_DEFAULT_SOURCE",
            "-o",
        ])
        .arg(&exe)
        .arg(root.join("c-tests/restart.c"))
        .arg("-I")
        .arg(root.join("include"))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm"])
        .status()
        .expect("running the C compiler");
    assert!(status.success(), "compiling c-tests/restart.c failed");
    exe
}

fn run(exe: &Path, args: &[&str]) -> String {
    let out = Command::new(exe).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "restart {args:?} failed: {}\nstdout: {text}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    print!("  restart {} -> {text}", args[0]);
    text
}

/// A step that runs until killed; it is killed when dropped, so a failing
/// test leaves no process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a step that runs until killed; returns once it printed a line
/// starting with `until`.
fn start_until(
    exe: &Path,
    args: &[&str],
    until: &str,
) -> (Running, BufReader<std::process::ChildStdout>) {
    let mut child = Running(
        Command::new(exe)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut line = String::new();
        let n = lines.read_line(&mut line).unwrap();
        assert!(n > 0, "restart {args:?} exited before printing {until:?}");
        if line.starts_with(until) {
            print!("  restart {} -> {line}", args[0]);
            return (child, lines);
        }
        assert!(Instant::now() < deadline, "restart {args:?} too slow");
    }
}

fn sigkill(child: &mut Running) {
    // Child::kill sends SIGKILL on Unix.
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL");
}

/// Temporary files a killed writer left in a directory store (evidence that
/// a kill landed inside a save).
fn leftovers(dir: Option<&Path>) -> usize {
    dir.map_or(0, |d| {
        std::fs::read_dir(d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("%tmp")
            })
            .count()
    })
}

fn acceptance(exe: &Path, url: &str, dir: Option<&Path>) {
    let store = open_store(url, &StoreOptions::default()).unwrap();
    // 1. process A creates and adds, then is killed.
    let (mut a, _) = start_until(exe, &["create", url], "ready");
    sigkill(&mut a);
    // 2. the object exists.
    let keys = store.list("_vectors/").unwrap();
    assert_eq!(keys, vec!["_vectors/docs.lhv1"], "object after SIGKILL");
    println!("  object: {keys:?}");
    // 3-6. process B: same count and params, exact hits, metadata; deletes.
    let out = run(exe, &["check", url]);
    assert!(out.contains("exact first hits 200/200"));
    assert!(
        store.list("_vectors/").unwrap().is_empty(),
        "object gone after delete"
    );
    // 7. process C: nothing there.
    assert!(run(exe, &["empty", url]).contains("indexes 0"));
    // 8. kill in the middle of saving a large index, several times: the
    // previous object always loads.
    let mut last_seen = 0usize;
    let mut torn_writes = 0;
    for round in 0..6 {
        let before = leftovers(dir);
        let (mut d, mut lines) = start_until(exe, &["churn", url, "8000"], "saved");
        // Let it save a few more times, then kill it at an arbitrary moment
        // (the saves are back to back, so this lands inside one).
        let mut line = String::new();
        for _ in 0..(2 + round) {
            line.clear();
            lines.read_line(&mut line).unwrap();
        }
        std::thread::sleep(Duration::from_millis(7 * round as u64 + 3));
        sigkill(&mut d);
        torn_writes += leftovers(dir) - before;
        let out = run(exe, &["load-big", url]);
        let n: usize = out.trim().strip_prefix("big ").unwrap().parse().unwrap();
        assert!(
            n >= 1000 && n >= last_seen,
            "loaded {n} after round {round}"
        );
        last_seen = n;
    }
    if dir.is_some() {
        println!("  kills that interrupted a write (left a temp file): {torn_writes} of 6");
    }
    // The last open removed the temporary files of the killed writers.
    assert_eq!(
        leftovers(dir),
        0,
        "stale temporary files were not cleaned up"
    );
    // No temporary files or other objects are left visible.
    assert_eq!(store.list("").unwrap(), vec!["_vectors/big.lhv1"]);
}

#[test]
fn restart_acceptance_directory_store() {
    let exe = build_restart();
    let dir = std::env::temp_dir().join(format!("vectord-restart-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    println!("directory store {}", dir.display());
    acceptance(&exe, dir.to_str().unwrap(), Some(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn restart_acceptance_storaged() {
    let exe = build_restart();
    let dir = std::env::temp_dir().join(format!("vectord-restart-http-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let server = spawn_for_tests(&dir, ServerOptions::default()).unwrap();
    println!("storaged {}", server.url());
    acceptance(&exe, &server.url(), None);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same eight checks against S3 (moto, tests/common/moto.rs); the
/// processes take their credentials from the AWS_* environment variables.
#[test]
fn restart_acceptance_s3() {
    let Some(m) = moto::start() else { return };
    let exe = build_restart();
    let url = m.url(&m.bucket(), "restart");
    // SAFETY (edition 2021: safe fn): set before any thread of this test
    // reads the environment; the other tests do not read these variables.
    std::env::set_var("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", moto::SECRET_KEY);
    println!("s3 {url}");
    acceptance(&exe, &url, None);
}
