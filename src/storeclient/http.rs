//! [`HttpStore`]: blocking client of the storaged object service
//! (protocol: `docs/storaged-protocol.md`).

use super::{
    backoff_delay, check_key, encode_key_segment, Precondition, Store, StoreError, StoreOptions,
    MAX_RETRIES, MAX_RETRY_AFTER_MS,
};
use std::io::Read;
use std::time::{Duration, Instant};
use ureq::http::{Response, Uri};
use ureq::{Agent, Body};

/// Most bytes of an error response body quoted in a [`StoreError::Storage`] message.
const ERROR_BODY_BYTES: u64 = 200;

/// A [`Store`] speaking the storaged protocol over HTTP/1.1 (ureq, blocking).
///
/// Every request is idempotent and retried `retries` times on connection
/// errors, timeouts, bodies cut short, 5xx, 408 and 429 statuses, with capped
/// exponential backoff and jitter (or the server's `Retry-After`, capped).
/// `timeout_ms` bounds each attempt, plus upload time for a PUT. The
/// attempts of one call run one after the other, never concurrently.
#[derive(Debug)]
pub struct HttpStore {
    agent: Agent,
    base: String,
    retries: u32,
    timeout_ms: u64,
    min_upload_bytes_per_sec: u64,
    max_object_bytes: u64,
    max_list_page_bytes: u64,
    max_list_keys: u64,
    list_timeout: Duration,
}

enum Method {
    Get,
    Put,
    Delete,
}

impl Method {
    fn name(&self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// The outcome of one attempt that did not produce a response.
enum Failure {
    /// Worth another try (transport error, timeout, cut body, 5xx).
    Transient(String),
    /// Final.
    Fatal(StoreError),
}

/// A complete response: status and body (the whole body for 2xx, at most
/// [`ERROR_BODY_BYTES`] of it otherwise).
struct Reply {
    status: u16,
    /// The `ETag` header (the object's version), if the server sent one.
    etag: Option<String>,
    body: Vec<u8>,
    /// `Retry-After` in seconds, if the server sent one (an HTTP date is ignored).
    retry_after_s: Option<u64>,
}

impl Reply {
    fn snippet(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl HttpStore {
    /// A client of the service at `url` (`http://host:port[/base]` or `https://...`).
    /// Fails with [`crate::Error::InvalidArgument`] on a malformed URL.
    pub fn new(url: &str, opts: &StoreOptions) -> Result<HttpStore, crate::Error> {
        let bad = |why: &str| crate::Error::InvalidArgument(format!("store url {url:?}: {why}"));
        let uri: Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
        match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {}
            _ => return Err(bad("scheme must be http or https")),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad("missing host"));
        }
        if uri.query().is_some() || url.contains('#') {
            return Err(bad("a query or fragment is not allowed"));
        }
        let base = url.trim_end_matches('/').to_string();
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_millis(opts.timeout_ms.max(1))))
            .timeout_connect(Some(Duration::from_millis(opts.connect_timeout_ms.max(1))))
            .accept_encoding("identity")
            .build();
        Ok(HttpStore {
            agent: config.into(),
            base,
            retries: opts.retries.min(MAX_RETRIES),
            timeout_ms: opts.timeout_ms.max(1),
            min_upload_bytes_per_sec: opts.min_upload_bytes_per_sec.max(1),
            max_object_bytes: opts.max_object_bytes,
            max_list_page_bytes: opts.max_list_page_bytes,
            max_list_keys: opts.max_list_keys,
            list_timeout: Duration::from_millis(opts.list_timeout_ms.max(1)),
        })
    }

    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn object_url(&self, key: &str) -> String {
        format!("{}/v1/objects/{}", self.base, encode_key_segment(key))
    }

    /// The budget of one PUT attempt of `n` bytes: the base timeout plus the
    /// time the body takes at the slowest acceptable upload rate.
    fn put_timeout(&self, n: usize) -> Duration {
        let upload_ms = (n as u64).saturating_mul(1000) / self.min_upload_bytes_per_sec;
        Duration::from_millis(self.timeout_ms.saturating_add(upload_ms))
    }

    /// One attempt: send, then read the body (at most `max` bytes).
    fn attempt(
        &self,
        method: &Method,
        url: &str,
        body: Option<&[u8]>,
        cond: &Precondition,
        max: u64,
        what: &str,
    ) -> Result<Reply, Failure> {
        let header = match cond {
            Precondition::Any => None,
            Precondition::Absent => Some(("If-None-Match", "*")),
            Precondition::Version(v) => Some(("If-Match", v.as_str())),
        };
        macro_rules! with_cond {
            ($b:expr) => {
                match header {
                    Some((k, v)) => $b.header(k, v),
                    None => $b,
                }
            };
        }
        let sent = match (method, body) {
            (Method::Get, _) => self.agent.get(url).call(),
            (Method::Delete, _) => with_cond!(self.agent.delete(url)).call(),
            (Method::Put, b) => {
                let b = b.unwrap_or(&[]);
                with_cond!(self.agent.put(url))
                    .config()
                    .timeout_global(Some(self.put_timeout(b.len())))
                    .build()
                    .send(b)
            }
        };
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => return Err(classify(e, method, what)),
        };
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
        if !(200..300).contains(&status) {
            // Only a snippet is needed for the error message.
            let mut body = Vec::new();
            let _ = resp
                .body_mut()
                .as_reader()
                .take(ERROR_BODY_BYTES)
                .read_to_end(&mut body);
            return Ok(Reply {
                status,
                etag,
                body,
                retry_after_s,
            });
        }
        let body = read_capped(&mut resp, max, method, what)?;
        Ok(Reply {
            status,
            etag,
            body,
            retry_after_s,
        })
    }

    /// Runs attempts until one gives a response that is not worth retrying,
    /// or the retries are used up (or `deadline` passes). Returns that reply
    /// (any status but 5xx, 408 and 429). Every attempt carries the same
    /// precondition, so a retried write the server committed late cannot
    /// land over a newer object.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
        cond: &Precondition,
        max: u64,
        what: &str,
        deadline: Option<Instant>,
    ) -> Result<Reply, StoreError> {
        let mut attempt = 0u32;
        loop {
            let last = attempt >= self.retries;
            let mut server_delay = None;
            let msg = match self.attempt(&method, url, body, cond, max, what) {
                Ok(r) if r.status >= 500 || r.status == 408 || r.status == 429 => {
                    server_delay = r.retry_after_s.map(|s| {
                        Duration::from_millis(s.saturating_mul(1000).min(MAX_RETRY_AFTER_MS))
                    });
                    format!(
                        "{} {what}: status {}: {}",
                        method.name(),
                        r.status,
                        r.snippet()
                    )
                }
                Ok(r) => return Ok(r),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient(msg)) => msg,
            };
            attempt += 1;
            let delay = server_delay.unwrap_or_else(|| backoff_delay(attempt));
            if last || deadline.is_some_and(|d| Instant::now() + delay >= d) {
                return Err(StoreError::Storage(format!(
                    "{msg} (after {attempt} attempts)"
                )));
            }
            std::thread::sleep(delay);
        }
    }

    fn unexpected(method: &str, what: &str, r: &Reply) -> StoreError {
        StoreError::Storage(format!(
            "{method} {what}: unexpected status {}: {}",
            r.status,
            r.snippet()
        ))
    }

    fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        deadline: Instant,
    ) -> Result<(Vec<String>, Option<String>), StoreError> {
        let mut url = format!(
            "{}/v1/objects?prefix={}",
            self.base,
            encode_key_segment(prefix)
        );
        if let Some(s) = start_after {
            url.push_str("&start_after=");
            url.push_str(&encode_key_segment(s));
        }
        let what = format!("list prefix {prefix:?}");
        let r = self.request(
            Method::Get,
            &url,
            None,
            &Precondition::Any,
            self.max_list_page_bytes,
            &what,
            Some(deadline),
        )?;
        if r.status != 200 {
            return Err(Self::unexpected("GET", &what, &r));
        }
        parse_list_page(&r.body)
            .map_err(|why| StoreError::Storage(format!("GET {what}: bad list response: {why}")))
    }
}

/// Validates a list response: `{"keys": [string...], "next_start_after": string|null|absent}`.
fn parse_list_page(body: &[u8]) -> Result<(Vec<String>, Option<String>), String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let keys = obj
        .get("keys")
        .ok_or("missing \"keys\"")?
        .as_array()
        .ok_or("\"keys\" is not an array")?;
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        out.push(k.as_str().ok_or("a key is not a string")?.to_string());
    }
    let next = match obj.get("next_start_after") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("\"next_start_after\" is not a string or null".into()),
    };
    Ok((out, next))
}

fn read_capped(
    resp: &mut Response<Body>,
    max: u64,
    method: &Method,
    what: &str,
) -> Result<Vec<u8>, Failure> {
    let too_big = |n: &str| {
        Failure::Fatal(StoreError::Storage(format!(
            "{} {what}: response of {n} bytes exceeds the limit of {max} bytes",
            method.name()
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
        .map_err(|e| {
            Failure::Transient(format!("{} {what}: reading the body: {e}", method.name()))
        })?;
    if buf.len() as u64 > max {
        return Err(too_big(&format!("more than {max}")));
    }
    Ok(buf)
}

fn conflict(method: &str, what: &str, cond: &Precondition, r: &Reply) -> StoreError {
    let why = match cond {
        Precondition::Absent => "an object exists already".to_string(),
        Precondition::Version(v) => format!("the object is no longer version {v}"),
        Precondition::Any => "precondition failed".to_string(),
    };
    StoreError::Conflict(format!(
        "{method} {what}: {why} (status {}: {})",
        r.status,
        r.snippet()
    ))
}

fn classify(e: ureq::Error, method: &Method, what: &str) -> Failure {
    let msg = format!("{} {what}: {e}", method.name());
    match e {
        ureq::Error::Io(_)
        | ureq::Error::Timeout(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::HostNotFound
        | ureq::Error::Protocol(_) => Failure::Transient(msg),
        _ => Failure::Fatal(StoreError::Storage(msg)),
    }
}

impl Store for HttpStore {
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StoreError> {
        self.put_if(key, data, &Precondition::Any).map(|_| ())
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        self.get_versioned(key).map(|(d, _)| d)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.delete_if(key, &Precondition::Any)
    }

    fn put_if(
        &self,
        key: &str,
        data: &[u8],
        cond: &Precondition,
    ) -> Result<Option<String>, StoreError> {
        check_key(key)?;
        let what = format!("key {key:?}");
        if data.len() as u64 > self.max_object_bytes {
            return Err(StoreError::Storage(format!(
                "PUT {what}: object of {} bytes exceeds the limit of {} bytes",
                data.len(),
                self.max_object_bytes
            )));
        }
        let r = self.request(
            Method::Put,
            &self.object_url(key),
            Some(data),
            cond,
            self.max_object_bytes,
            &what,
            None,
        )?;
        match r.status {
            200 | 201 | 204 => Ok(r.etag),
            412 if *cond != Precondition::Any => Err(conflict("PUT", &what, cond, &r)),
            _ => Err(Self::unexpected("PUT", &what, &r)),
        }
    }

    fn get_versioned(&self, key: &str) -> Result<(Vec<u8>, Option<String>), StoreError> {
        check_key(key)?;
        let what = format!("key {key:?}");
        let r = self.request(
            Method::Get,
            &self.object_url(key),
            None,
            &Precondition::Any,
            self.max_object_bytes,
            &what,
            None,
        )?;
        match r.status {
            200 => Ok((r.body, r.etag)),
            404 => Err(StoreError::KeyNotFound(key.to_string())),
            _ => Err(Self::unexpected("GET", &what, &r)),
        }
    }

    fn delete_if(&self, key: &str, cond: &Precondition) -> Result<(), StoreError> {
        check_key(key)?;
        let what = format!("key {key:?}");
        let r = self.request(
            Method::Delete,
            &self.object_url(key),
            None,
            cond,
            self.max_object_bytes,
            &what,
            None,
        )?;
        match r.status {
            200 | 204 => Ok(()),
            412 if *cond != Precondition::Any => Err(conflict("DELETE", &what, cond, &r)),
            404 => Err(StoreError::KeyNotFound(key.to_string())),
            _ => Err(Self::unexpected("DELETE", &what, &r)),
        }
    }

    /// Follows pages until the last one, bounded by `max_list_keys` keys in
    /// total and `list_timeout_ms` overall: a server that keeps advancing
    /// its cursor cannot make the client page (and hold keys) forever.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let deadline = Instant::now() + self.list_timeout;
        let mut keys = Vec::new();
        let mut start_after: Option<String> = None;
        loop {
            let (page, next) = self.list_page(prefix, start_after.as_deref(), deadline)?;
            if (keys.len() + page.len()) as u64 > self.max_list_keys {
                return Err(StoreError::Storage(format!(
                    "list prefix {prefix:?}: more than {} keys (max_list_keys)",
                    self.max_list_keys
                )));
            }
            keys.extend(page);
            match next {
                None => {
                    keys.sort();
                    keys.dedup();
                    return Ok(keys);
                }
                Some(n) => {
                    if start_after.as_deref().is_some_and(|s| n.as_str() <= s) {
                        return Err(StoreError::Storage(format!(
                            "list prefix {prefix:?}: next_start_after {n:?} does not advance"
                        )));
                    }
                    if Instant::now() >= deadline {
                        return Err(StoreError::Storage(format!(
                            "list prefix {prefix:?}: not finished after {} ms (list_timeout_ms)",
                            self.list_timeout.as_millis()
                        )));
                    }
                    start_after = Some(n);
                }
            }
        }
    }

    fn describe(&self) -> String {
        self.base.clone()
    }

    fn supports_conditions(&self) -> bool {
        true
    }
}
