//! Starts moto's S3-compatible server for the S3 tests (see docs/storage.md:
//! moto is a Python package; scripts/test.sh installs it into a venv under
//! ~/.cache/vectord-test/, outside the clone). A test calls [`start`] and
//! skips, with a printed reason, when moto is not installed.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The test credentials (moto accepts any).
pub const ACCESS_KEY: &str = "vectord-test-key";
pub const SECRET_KEY: &str = "vectord-test-secret";

/// A running moto server, killed when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `$VECTORD_MOTO_SERVER`, else the venv scripts/test.sh makes.
fn moto_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VECTORD_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")?;
    let p = PathBuf::from(home).join(".cache/vectord-test/moto-venv/bin/moto_server");
    p.exists().then_some(p)
}

/// Starts a moto server on a free local port; None (after printing why)
/// when moto is not installed, so the calling test can skip.
pub fn start() -> Option<Moto> {
    let Some(bin) = moto_binary() else {
        eprintln!(
            "SKIPPED: moto is not installed (scripts/test.sh installs it into \
             ~/.cache/vectord-test/moto-venv; or set VECTORD_MOTO_SERVER)"
        );
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    loop {
        // Ready once it answers HTTP, not merely once the port accepts (a
        // test once failed creating its first bucket right after connect).
        if TcpStream::connect(("127.0.0.1", port)).is_ok()
            && agent.get(&format!("{}/", moto.endpoint)).call().is_ok()
        {
            return Some(moto);
        }
        assert!(Instant::now() < deadline, "moto did not start within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Moto {
    /// Creates a fresh bucket and returns its name.
    pub fn bucket(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "vectord-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let r = agent
            .put(&format!("{}/{name}", self.endpoint))
            .send(&[][..])
            .expect("create bucket");
        assert_eq!(r.status().as_u16(), 200, "create bucket {name}");
        name
    }

    /// The store URL of `bucket` with an optional prefix.
    pub fn url(&self, bucket: &str, prefix: &str) -> String {
        let p = if prefix.is_empty() {
            String::new()
        } else {
            format!("/{prefix}")
        };
        format!(
            "s3://{bucket}{p}?endpoint={}&region=us-east-1",
            self.endpoint
        )
    }

    /// The options JSON carrying the test credentials (plus `extra`, a
    /// comma-led JSON fragment or "").
    pub fn options(extra: &str) -> String {
        format!(
            r#"{{"s3": {{"access_key_id": "{ACCESS_KEY}", "secret_access_key": "{SECRET_KEY}"}}{extra}}}"#
        )
    }
}
