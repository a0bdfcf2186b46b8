//! What the two HTTP stores ([`super::HttpStore`], [`super::S3Store`]) share:
//! the transport settings and limits, one attempt's reading of a response
//! under its bounds, and the retry loop. Kept in one place so a fix to the
//! bounds or the retry policy reaches both stores.

use super::{
    backoff_delay, Precondition, StoreError, StoreOptions, MAX_RETRIES, MAX_RETRY_AFTER_MS,
};
use std::io::Read;
use std::time::{Duration, Instant};
use ureq::http::Response;
use ureq::{Agent, Body};

/// The outcome of one attempt that did not produce a response.
pub(super) enum Failure {
    /// Worth another try (transport error, timeout, cut body).
    Transient(String),
    /// Final.
    Fatal(StoreError),
}

/// A complete response: status, ETag and body (the whole body for a 2xx
/// whose body is wanted, else at most the store's error-body bound).
pub(super) struct Reply {
    pub status: u16,
    /// The `ETag` header (the object's version), if the server sent one.
    pub etag: Option<String>,
    pub body: Vec<u8>,
    /// `Retry-After` in seconds, if the server sent one (an HTTP date is ignored).
    pub retry_after_s: Option<u64>,
}

/// The transport settings and limits of an HTTP store, from its options.
#[derive(Debug)]
pub(super) struct Wire {
    pub agent: Agent,
    pub retries: u32,
    timeout_ms: u64,
    min_upload_bytes_per_sec: u64,
    pub max_object_bytes: u64,
    pub max_list_page_bytes: u64,
    pub max_list_keys: u64,
    pub list_timeout: Duration,
}

impl Wire {
    pub fn new(opts: &StoreOptions) -> Wire {
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_millis(opts.timeout_ms.max(1))))
            .timeout_connect(Some(Duration::from_millis(opts.connect_timeout_ms.max(1))))
            .accept_encoding("identity")
            .build();
        Wire {
            agent: config.into(),
            retries: opts.retries.min(MAX_RETRIES),
            timeout_ms: opts.timeout_ms.max(1),
            min_upload_bytes_per_sec: opts.min_upload_bytes_per_sec.max(1),
            max_object_bytes: opts.max_object_bytes,
            max_list_page_bytes: opts.max_list_page_bytes,
            max_list_keys: opts.max_list_keys,
            list_timeout: Duration::from_millis(opts.list_timeout_ms.max(1)),
        }
    }

    /// The budget of one upload attempt of `n` bytes: the base timeout plus
    /// the time the body takes at the slowest acceptable upload rate.
    pub fn upload_timeout(&self, n: usize) -> Duration {
        let upload_ms = (n as u64).saturating_mul(1000) / self.min_upload_bytes_per_sec;
        Duration::from_millis(self.timeout_ms.saturating_add(upload_ms))
    }

    /// Runs `attempt` until it gives a response not worth retrying (any
    /// status but 5xx, 408 and 429), the retries run out, or `deadline`
    /// passes. `status_text` describes a retried status for the final error.
    /// The caller's attempts carry the same precondition every time, so a
    /// retried write the server committed late cannot land over a newer
    /// object.
    pub fn retry(
        &self,
        deadline: Option<Instant>,
        mut attempt: impl FnMut() -> Result<Reply, Failure>,
        status_text: impl Fn(&Reply) -> String,
    ) -> Result<Reply, StoreError> {
        let mut tries = 0u32;
        loop {
            let last = tries >= self.retries;
            let mut server_delay = None;
            let msg = match attempt() {
                Ok(r) if r.status >= 500 || r.status == 408 || r.status == 429 => {
                    server_delay = r.retry_after_s.map(|s| {
                        Duration::from_millis(s.saturating_mul(1000).min(MAX_RETRY_AFTER_MS))
                    });
                    status_text(&r)
                }
                Ok(r) => return Ok(r),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient(m)) => m,
            };
            tries += 1;
            let delay = server_delay.unwrap_or_else(|| backoff_delay(tries));
            if last || deadline.is_some_and(|d| Instant::now() + delay >= d) {
                return Err(StoreError::Storage(format!(
                    "{msg} (after {tries} attempts)"
                )));
            }
            std::thread::sleep(delay);
        }
    }
}

/// The header a precondition is sent as (lowercase: S3 signs it so).
pub(super) fn cond_header(cond: &Precondition) -> Option<(&'static str, String)> {
    match cond {
        Precondition::Any => None,
        Precondition::Absent => Some(("if-none-match", "*".into())),
        Precondition::Version(v) => Some(("if-match", v.clone())),
    }
}

/// Why a conditional request was refused, for a conflict message.
pub(super) fn conflict_reason(cond: &Precondition) -> String {
    match cond {
        Precondition::Absent => "an object exists already".to_string(),
        Precondition::Version(v) => format!("the object is no longer version {v}"),
        Precondition::Any => "precondition failed".to_string(),
    }
}

/// A request that failed before a response: transport trouble is worth
/// another try, anything else (a bad URL, a refused configuration) is not.
/// `msg` is the message already made safe to show.
pub(super) fn classify(e: &ureq::Error, msg: String) -> Failure {
    match e {
        ureq::Error::Io(_)
        | ureq::Error::Timeout(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::HostNotFound
        | ureq::Error::Protocol(_) => Failure::Transient(msg),
        _ => Failure::Fatal(StoreError::Storage(msg)),
    }
}

/// Reads a response: the whole body, at most `cap` bytes, of a 2xx when
/// `want_body`; else only a snippet of at most `error_body_bytes` for an
/// error message. `label` (method and object) starts the messages.
pub(super) fn read_reply(
    resp: &mut Response<Body>,
    want_body: bool,
    cap: u64,
    error_body_bytes: u64,
    label: &str,
) -> Result<Reply, Failure> {
    let status = resp.status().as_u16();
    let retry_after_s = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 1024);
    let body = if (200..300).contains(&status) && want_body {
        read_capped(resp, cap, label)?
    } else {
        let mut body = Vec::new();
        let _ = resp
            .body_mut()
            .as_reader()
            .take(error_body_bytes)
            .read_to_end(&mut body);
        body
    };
    Ok(Reply {
        status,
        etag,
        body,
        retry_after_s,
    })
}

/// The body, refused (finally) when its declared or actual length passes
/// `max`; a body cut short is worth another try.
fn read_capped(resp: &mut Response<Body>, max: u64, label: &str) -> Result<Vec<u8>, Failure> {
    let too_big = |n: &str| {
        Failure::Fatal(StoreError::Storage(format!(
            "{label}: response of {n} bytes exceeds the limit of {max} bytes"
        )))
    };
    let declared = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = declared {
        if len > max {
            return Err(too_big(&len.to_string()));
        }
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(1 << 20) as usize);
    resp.body_mut()
        .as_reader()
        .take(max.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| Failure::Transient(format!("{label}: reading the body: {e}")))?;
    if buf.len() as u64 > max {
        return Err(too_big(&format!("more than {max}")));
    }
    Ok(buf)
}
