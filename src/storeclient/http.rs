//! [`HttpStore`]: blocking client of the storaged object service
//! (protocol: `docs/storaged-protocol.md`).

use super::wire::{classify, cond_header, conflict_reason, read_reply, Failure, Reply, Wire};
use super::{
    check_key, check_object_size, encode_key_segment, Precondition, Store, StoreError, StoreOptions,
};
use std::time::Instant;
use ureq::http::Uri;

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
    wire: Wire,
    base: String,
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

fn snippet(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
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
        Ok(HttpStore {
            wire: Wire::new(opts),
            base: url.trim_end_matches('/').to_string(),
        })
    }

    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn object_url(&self, key: &str) -> String {
        format!("{}/v1/objects/{}", self.base, encode_key_segment(key))
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
        let header = cond_header(cond);
        macro_rules! with_cond {
            ($b:expr) => {
                match &header {
                    Some((k, v)) => $b.header(*k, v.as_str()),
                    None => $b,
                }
            };
        }
        let agent = &self.wire.agent;
        let sent = match (method, body) {
            (Method::Get, _) => agent.get(url).call(),
            (Method::Delete, _) => with_cond!(agent.delete(url)).call(),
            (Method::Put, b) => {
                let b = b.unwrap_or(&[]);
                with_cond!(agent.put(url))
                    .config()
                    .timeout_global(Some(self.wire.upload_timeout(b.len())))
                    .build()
                    .send(b)
            }
        };
        let label = format!("{} {what}", method.name());
        match sent {
            Ok(mut resp) => read_reply(&mut resp, true, max, ERROR_BODY_BYTES, &label),
            Err(e) => Err(classify(&e, format!("{label}: {e}"))),
        }
    }

    /// Runs attempts (see [`Wire::retry`]) and returns the reply that ended
    /// them.
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
        self.wire.retry(
            deadline,
            || self.attempt(&method, url, body, cond, max, what),
            |r| {
                format!(
                    "{} {what}: status {}: {}",
                    method.name(),
                    r.status,
                    snippet(r)
                )
            },
        )
    }

    /// One request on the object of `key`, bounded by `max_object_bytes`.
    fn object_request(
        &self,
        method: Method,
        key: &str,
        body: Option<&[u8]>,
        cond: &Precondition,
        what: &str,
    ) -> Result<Reply, StoreError> {
        let url = self.object_url(key);
        let max = self.wire.max_object_bytes;
        self.request(method, &url, body, cond, max, what, None)
    }

    fn unexpected(method: &str, what: &str, r: &Reply) -> StoreError {
        StoreError::Storage(format!(
            "{method} {what}: unexpected status {}: {}",
            r.status,
            snippet(r)
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
            self.wire.max_list_page_bytes,
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

fn conflict(method: &str, what: &str, cond: &Precondition, r: &Reply) -> StoreError {
    StoreError::Conflict(format!(
        "{method} {what}: {} (status {}: {})",
        conflict_reason(cond),
        r.status,
        snippet(r)
    ))
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
        check_object_size(
            &format!("PUT {what}"),
            data.len(),
            self.wire.max_object_bytes,
        )?;
        let r = self.object_request(Method::Put, key, Some(data), cond, &what)?;
        match r.status {
            200 | 201 | 204 => Ok(r.etag),
            412 if *cond != Precondition::Any => Err(conflict("PUT", &what, cond, &r)),
            _ => Err(Self::unexpected("PUT", &what, &r)),
        }
    }

    fn get_versioned(&self, key: &str) -> Result<(Vec<u8>, Option<String>), StoreError> {
        check_key(key)?;
        let what = format!("key {key:?}");
        let r = self.object_request(Method::Get, key, None, &Precondition::Any, &what)?;
        match r.status {
            200 => Ok((r.body, r.etag)),
            404 => Err(StoreError::KeyNotFound(key.to_string())),
            _ => Err(Self::unexpected("GET", &what, &r)),
        }
    }

    fn delete_if(&self, key: &str, cond: &Precondition) -> Result<(), StoreError> {
        check_key(key)?;
        let what = format!("key {key:?}");
        let r = self.object_request(Method::Delete, key, None, cond, &what)?;
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
        let deadline = Instant::now() + self.wire.list_timeout;
        let mut keys = Vec::new();
        let mut start_after: Option<String> = None;
        loop {
            let (page, next) = self.list_page(prefix, start_after.as_deref(), deadline)?;
            if (keys.len() + page.len()) as u64 > self.wire.max_list_keys {
                return Err(StoreError::Storage(format!(
                    "list prefix {prefix:?}: more than {} keys (max_list_keys)",
                    self.wire.max_list_keys
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
                            self.wire.list_timeout.as_millis()
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
