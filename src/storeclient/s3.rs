//! [`S3Store`]: a blocking client of S3 and S3-compatible servers (MinIO,
//! Garage, Ceph RGW, R2, moto).
//!
//! Requests are signed with AWS Signature Version 4 as presigned URLs
//! (rusty-s3's signer, a fresh signature per attempt) and sent with ureq;
//! there is no async runtime and no AWS SDK. Responses are parsed with
//! quick-xml under explicit bounds: body sizes, element depth, text
//! lengths, keys per page and pages per listing.
//!
//! Secrets (the secret key and the session token) never appear in an error
//! message: messages are built from the method and key only, and every text
//! that comes from ureq or the server is scrubbed of them.

use super::wire::{classify, cond_header, conflict_reason, read_reply, Failure, Reply, Wire};
use super::{
    check_key, check_object_size, decode_key_segment_lenient, Listed, Precondition, S3Credentials,
    Store, StoreError, StoreOptions, MIN_MULTIPART_THRESHOLD,
};
use jiff::Timestamp;
use quick_xml::events::Event;
use quick_xml::Reader;
use rusty_s3::{Bucket, Credentials, Method, UrlStyle};
use std::time::Instant;
use url::Url;

/// Most bytes of an error response body read (and quoted, scrubbed).
const ERROR_BODY_BYTES: u64 = 1024;
/// Largest response accepted for a multipart reply (listing pages are
/// bounded by `max_list_page_bytes`, as for storaged).
const MAX_XML_BYTES: u64 = 1 << 20;
/// Most keys accepted in one listing page (S3 returns at most 1000).
const MAX_KEYS_PER_PAGE: usize = 10_000;
/// Pages followed by one listing, as for the storaged store.
const MAX_LIST_PAGES: usize = 1_000_000;
/// Deepest XML element nesting accepted.
const MAX_XML_DEPTH: usize = 16;
/// Longest text of one XML element accepted (keys are at most 1024 bytes,
/// three times that URL-encoded).
const MAX_XML_TEXT: usize = 16 << 10;
/// S3 allows at most 10000 parts per upload.
const MAX_PARTS: u64 = 10_000;

/// Where an `s3://` URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Empty, or ending in `/`: prepended to every store key.
    pub prefix: String,
    pub endpoint: String,
    pub region: String,
    pub path_style: bool,
}

/// Parses `s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=true|false]`.
///
/// Defaults: region `us-east-1`; endpoint `https://s3.REGION.amazonaws.com`;
/// path-style addressing when an endpoint is given, virtual-host otherwise.
pub fn parse_s3_url(url: &str) -> Result<S3Location, crate::Error> {
    let bad = |why: &str| crate::Error::InvalidArgument(format!("store url {url:?}: {why}"));
    if url.len() < 5 || !url[..5].eq_ignore_ascii_case("s3://") {
        return Err(bad("not an s3:// URL"));
    }
    if url.contains('#') {
        return Err(bad("a fragment is not allowed"));
    }
    let rest = &url[5..];
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let (bucket, prefix) = match path.split_once('/') {
        Some((b, p)) => (b, p.trim_matches('/')),
        None => (path, ""),
    };
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !bucket.starts_with(['-', '.'])
        && !bucket.ends_with(['-', '.']);
    if !bucket_ok {
        return Err(bad(&format!(
            "bucket {bucket:?} must be 3..=63 of a-z 0-9 . - (not starting or ending with . or -)"
        )));
    }
    let prefix = decode_key_segment_lenient(prefix).ok_or_else(|| bad("bad percent escape"))?;
    if prefix
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
        && !prefix.is_empty()
    {
        return Err(bad("the prefix has an empty, \".\" or \"..\" segment"));
    }
    let mut endpoint = None;
    let mut region = None;
    let mut path_style = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode_key_segment_lenient(v)
            .ok_or_else(|| bad(&format!("bad percent escape in {k:?}")))?;
        let slot = match k {
            "endpoint" => &mut endpoint,
            "region" => &mut region,
            "path_style" => &mut path_style,
            other => {
                return Err(bad(&format!(
                    "unknown parameter {other:?} (expected endpoint, region, path_style)"
                )))
            }
        };
        if slot.replace(v).is_some() {
            return Err(bad(&format!("parameter {k:?} given twice")));
        }
    }
    let region = region.unwrap_or_else(|| "us-east-1".to_string());
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(bad(&format!("region {region:?} must be a-z 0-9 -")));
    }
    let path_style = match path_style.as_deref() {
        None => endpoint.is_some(),
        Some("true") => true,
        Some("false") => false,
        Some(other) => return Err(bad(&format!("path_style is {other:?}, not true or false"))),
    };
    let endpoint = match endpoint {
        Some(e) => {
            let u = Url::parse(&e).map_err(|err| bad(&format!("endpoint {e:?}: {err}")))?;
            if !matches!(u.scheme(), "http" | "https") {
                return Err(bad(&format!(
                    "endpoint {e:?}: scheme must be http or https"
                )));
            }
            if u.host_str().is_none_or(str::is_empty) {
                return Err(bad(&format!("endpoint {e:?}: missing host")));
            }
            if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
                return Err(bad(&format!(
                    "endpoint {e:?}: no query, fragment or user info allowed"
                )));
            }
            e.trim_end_matches('/').to_string()
        }
        None => format!("https://s3.{region}.amazonaws.com"),
    };
    Ok(S3Location {
        bucket: bucket.to_string(),
        prefix: if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        },
        endpoint,
        region,
        path_style,
    })
}

/// The credentials from the options, else from the standard AWS environment
/// variables; neither is INVALID_ARGUMENT naming both sources.
fn credentials(opts: &StoreOptions) -> Result<Credentials, crate::Error> {
    let (key, secret, token) = match &opts.s3 {
        Some(S3Credentials {
            access_key_id,
            secret_access_key,
            session_token,
        }) => (
            access_key_id.clone(),
            secret_access_key.clone(),
            session_token.clone(),
        ),
        None => {
            let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
            match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
                (Some(k), Some(s)) => (k, s, var("AWS_SESSION_TOKEN")),
                _ => {
                    return Err(crate::Error::InvalidArgument(
                        "no S3 credentials: give options_json \"s3\": {\"access_key_id\", \
                         \"secret_access_key\"[, \"session_token\"]} or set the \
                         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment variables"
                            .into(),
                    ))
                }
            }
        }
    };
    if key.is_empty() || secret.is_empty() {
        return Err(crate::Error::InvalidArgument(
            "S3 credentials: access_key_id and secret_access_key must not be empty".into(),
        ));
    }
    Ok(match token.filter(|t| !t.is_empty()) {
        Some(t) => Credentials::new_with_token(key, secret, t),
        None => Credentials::new(key, secret),
    })
}

/// A [`Store`] over one S3 bucket and prefix. Store key `k` is the object
/// `PREFIX/k`. Versions are ETags; writes with a [`Precondition`] send
/// `If-Match` / `If-None-Match: *`, and a 412 (or a 404/409 where S3 answers
/// so to a conditional request) is [`StoreError::Conflict`].
pub struct S3Store {
    wire: Wire,
    bucket: Bucket,
    prefix: String,
    credentials: Credentials,
    part_size: u64,
    expires_secs: u64,
    list_page_size: Option<u32>,
    describe: String,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("location", &self.describe)
            .finish_non_exhaustive()
    }
}

/// One request to send: everything but the signature.
struct Req<'a> {
    method: Method,
    url: Url,
    query: Vec<(&'static str, String)>,
    /// Lowercase names; signed.
    headers: Vec<(&'static str, String)>,
    body: Option<&'a [u8]>,
    /// Largest 2xx body accepted.
    cap: u64,
    what: String,
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Head => "HEAD",
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
    }
}

impl S3Store {
    /// A client of the bucket and prefix named by `url` (see [`parse_s3_url`]).
    /// Nothing is sent until the first operation.
    pub fn open(url: &str, opts: &StoreOptions) -> Result<S3Store, crate::Error> {
        let loc = parse_s3_url(url)?;
        let credentials = credentials(opts)?;
        if opts.multipart_threshold_bytes < MIN_MULTIPART_THRESHOLD {
            return Err(crate::Error::InvalidArgument(format!(
                "multipart_threshold_bytes {} is below the S3 minimum part size of {MIN_MULTIPART_THRESHOLD}",
                opts.multipart_threshold_bytes
            )));
        }
        let endpoint = Url::parse(&loc.endpoint).map_err(|e| {
            crate::Error::InvalidArgument(format!("store url {url:?}: endpoint: {e}"))
        })?;
        let style = if loc.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(endpoint, style, loc.bucket.clone(), loc.region.clone())
            .map_err(|e| crate::Error::InvalidArgument(format!("store url {url:?}: {e:?}")))?;
        // A signature must outlive one attempt; S3 accepts 1 s ..= 7 days.
        let expires_secs = (opts.timeout_ms / 1000 + 60).clamp(60, 7 * 24 * 3600);
        Ok(S3Store {
            wire: Wire::new(opts),
            describe: format!("s3://{}/{} at {}", loc.bucket, loc.prefix, loc.endpoint),
            bucket,
            prefix: loc.prefix,
            credentials,
            part_size: opts.multipart_threshold_bytes,
            expires_secs,
            list_page_size: None,
        })
    }

    /// Asks the server for at most `n` keys per listing page (the server's
    /// default, 1000 on AWS, when never called). Small pages are for tests
    /// of paging and for servers with tight response limits.
    pub fn set_list_page_size(&mut self, n: u32) {
        self.list_page_size = Some(n.clamp(1, 1000));
    }

    fn object_key(&self, key: &str) -> Result<String, StoreError> {
        check_key(key)?;
        let full = format!("{}{key}", self.prefix);
        // A URL path normalises dot segments away, so such a key would name
        // another object.
        if full.split('/').any(|s| s == "." || s == "..") {
            return Err(StoreError::Storage(format!(
                "key {key:?} has a \".\" or \"..\" path segment, which S3 URLs cannot address"
            )));
        }
        if full.len() > 1024 {
            return Err(StoreError::Storage(format!(
                "key {key:?}: S3 object keys are at most 1024 bytes"
            )));
        }
        Ok(full)
    }

    /// Removes the secret and the session token from a text that will be
    /// shown (ureq errors can quote the URL, servers can echo anything).
    fn scrub(&self, text: &str) -> String {
        let mut s = text.to_string();
        let secret = self.credentials.secret();
        if !secret.is_empty() {
            s = s.replace(secret, "<redacted>");
        }
        if let Some(t) = self.credentials.token().filter(|t| !t.is_empty()) {
            s = s.replace(t, "<redacted>");
        }
        // Presigned query strings carry the token and signature.
        if let Some(pos) = s.find("X-Amz-") {
            let cut = s[..pos].rfind('?').unwrap_or(pos);
            s.truncate(cut);
            s.push_str("?<signed query redacted>");
        }
        s
    }

    /// The presigned URL of `req` at `time`.
    fn presign(&self, req: &Req<'_>, time: &Timestamp) -> Url {
        let mut query: Vec<(&str, &str)> =
            req.query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        query.sort();
        let mut headers: Vec<(&str, &str)> =
            req.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        headers.sort();
        rusty_s3::signing::sign(
            time,
            req.method,
            req.url.clone(),
            self.credentials.key(),
            self.credentials.secret(),
            self.credentials.token(),
            self.bucket.region(),
            self.expires_secs,
            query.into_iter(),
            headers.into_iter(),
        )
    }

    fn attempt(&self, req: &Req<'_>) -> Result<Reply, Failure> {
        let url = self.presign(req, &Timestamp::now()).to_string();
        let name = method_name(req.method);
        let what = &req.what;
        macro_rules! with_headers {
            ($b:expr) => {{
                let mut b = $b;
                for (k, v) in &req.headers {
                    b = b.header(*k, v.as_str());
                }
                b
            }};
        }
        let agent = &self.wire.agent;
        let sent = match req.method {
            Method::Get => with_headers!(agent.get(&url)).call(),
            Method::Head => with_headers!(agent.head(&url)).call(),
            Method::Delete => with_headers!(agent.delete(&url)).call(),
            // Uploads get more time, as for storaged: the base timeout plus
            // the body at the slowest acceptable rate.
            Method::Put => {
                let b = req.body.unwrap_or(&[]);
                with_headers!(agent.put(&url))
                    .config()
                    .timeout_global(Some(self.wire.upload_timeout(b.len())))
                    .build()
                    .send(b)
            }
            Method::Post => {
                let b = req.body.unwrap_or(&[]);
                with_headers!(agent.post(&url))
                    .config()
                    .timeout_global(Some(self.wire.upload_timeout(b.len())))
                    .build()
                    .send(b)
            }
        };
        let label = format!("{name} {what}");
        match sent {
            Ok(mut resp) => read_reply(
                &mut resp,
                req.method != Method::Head,
                req.cap,
                ERROR_BODY_BYTES,
                &label,
            ),
            Err(e) => Err(classify(
                &e,
                format!("{label}: {}", self.scrub(&e.to_string())),
            )),
        }
    }

    /// Runs attempts (see [`Wire::retry`]) and returns the reply that ended
    /// them.
    fn request(&self, req: &Req<'_>) -> Result<Reply, StoreError> {
        self.request_until(req, None)
    }

    fn request_until(&self, req: &Req<'_>, deadline: Option<Instant>) -> Result<Reply, StoreError> {
        self.wire.retry(
            deadline,
            || self.attempt(req),
            |r| {
                format!(
                    "{} {}: status {}: {}",
                    method_name(req.method),
                    req.what,
                    r.status,
                    self.error_text(r)
                )
            },
        )
    }

    /// The S3 error code and message of a reply, else a scrubbed snippet.
    fn error_text(&self, r: &Reply) -> String {
        let text = String::from_utf8_lossy(&r.body);
        let mut code = None;
        let mut message = None;
        let _ = walk_xml(&text, |path, t| {
            match path {
                ["Error", "Code"] => code = Some(t.to_string()),
                ["Error", "Message"] => message = Some(t.to_string()),
                _ => {}
            }
            Ok(())
        });
        let shown = match (code, message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c,
            _ => text.chars().take(200).collect(),
        };
        self.scrub(&shown)
    }

    fn unexpected(&self, req: &Req<'_>, r: &Reply) -> StoreError {
        StoreError::Storage(format!(
            "{} {} in {}: unexpected status {}: {}",
            method_name(req.method),
            req.what,
            self.describe,
            r.status,
            self.error_text(r)
        ))
    }

    fn conflict(&self, req: &Req<'_>, r: &Reply, cond: &Precondition) -> StoreError {
        StoreError::Conflict(format!(
            "{} {} in {}: {} (status {}: {})",
            method_name(req.method),
            req.what,
            self.describe,
            conflict_reason(cond),
            r.status,
            self.error_text(r)
        ))
    }

    fn cond_headers(cond: &Precondition) -> Vec<(&'static str, String)> {
        cond_header(cond).into_iter().collect()
    }

    /// Whether a status answers a failed precondition: 412, or what S3
    /// answers a conditional request whose object is gone (404) or changed
    /// concurrently (409).
    fn is_conflict(status: u16, cond: &Precondition) -> bool {
        match cond {
            Precondition::Any => false,
            Precondition::Absent => status == 412 || status == 409,
            Precondition::Version(_) => matches!(status, 404 | 409 | 412),
        }
    }

    fn req(&self, method: Method, url: Url, what: String) -> Req<'static> {
        Req {
            method,
            url,
            query: vec![],
            headers: vec![],
            body: None,
            cap: MAX_XML_BYTES,
            what,
        }
    }

    fn put_single(
        &self,
        key: &str,
        object: &str,
        data: &[u8],
        cond: &Precondition,
    ) -> Result<Option<String>, StoreError> {
        let mut req = self.req(
            Method::Put,
            self.bucket.object_url(object),
            format!("key {key:?}"),
        );
        req.headers = Self::cond_headers(cond);
        let req = Req {
            body: Some(data),
            ..req
        };
        let r = self.request(&req)?;
        match r.status {
            200 | 201 | 204 => Ok(r.etag),
            s if Self::is_conflict(s, cond) => Err(self.conflict(&req, &r, cond)),
            _ => Err(self.unexpected(&req, &r)),
        }
    }

    fn put_multipart(
        &self,
        key: &str,
        object: &str,
        data: &[u8],
        cond: &Precondition,
    ) -> Result<Option<String>, StoreError> {
        let what = format!("key {key:?}");
        let mut create = self.req(
            Method::Post,
            self.bucket.object_url(object),
            format!("{what} (start multipart upload)"),
        );
        create.query = vec![("uploads", String::new())];
        let r = self.request(&create)?;
        if r.status != 200 {
            return Err(self.unexpected(&create, &r));
        }
        let mut upload_id = None;
        walk_xml(&String::from_utf8_lossy(&r.body), |path, t| {
            if path == ["InitiateMultipartUploadResult", "UploadId"] {
                upload_id = Some(t.to_string());
            }
            Ok(())
        })
        .map_err(|e| StoreError::Storage(format!("POST {what}: bad multipart reply: {e}")))?;
        let upload_id = upload_id
            .filter(|u| !u.is_empty())
            .ok_or_else(|| StoreError::Storage(format!("POST {what}: no UploadId in reply")))?;
        let result = self.upload_parts(&what, object, &upload_id, data, cond);
        if result.is_err() {
            // Parts are stored (and billed) until the upload is completed or
            // aborted; a failed abort is only logged.
            let mut abort = self.req(
                Method::Delete,
                self.bucket.object_url(object),
                format!("{what} (abort multipart upload)"),
            );
            abort.query = vec![("uploadId", upload_id.clone())];
            match self.request(&abort) {
                Ok(r) if (200..300).contains(&r.status) || r.status == 404 => {}
                Ok(r) => {
                    crate::log::log(crate::log::WARN, &self.unexpected(&abort, &r).to_string())
                }
                Err(e) => crate::log::log(crate::log::WARN, &e.to_string()),
            }
        }
        result
    }

    fn upload_parts(
        &self,
        what: &str,
        object: &str,
        upload_id: &str,
        data: &[u8],
        cond: &Precondition,
    ) -> Result<Option<String>, StoreError> {
        let len = data.len() as u64;
        let part_size = self.part_size.max(len.div_ceil(MAX_PARTS));
        let mut etags = Vec::new();
        for (i, chunk) in data.chunks(part_size as usize).enumerate() {
            let n = i + 1;
            let req = Req {
                method: Method::Put,
                url: self.bucket.object_url(object),
                query: vec![
                    ("partNumber", n.to_string()),
                    ("uploadId", upload_id.to_string()),
                ],
                headers: vec![],
                body: Some(chunk),
                cap: MAX_XML_BYTES,
                what: format!("{what} (part {n})"),
            };
            let r = self.request(&req)?;
            if r.status != 200 {
                return Err(self.unexpected(&req, &r));
            }
            let etag = r.etag.ok_or_else(|| {
                StoreError::Storage(format!("PUT {} : no ETag in reply", req.what))
            })?;
            etags.push(etag);
        }
        let mut body = String::from("<CompleteMultipartUpload>");
        for (i, e) in etags.iter().enumerate() {
            body.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                i + 1,
                quick_xml::escape::escape(e.as_str())
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        let mut complete = self.req(
            Method::Post,
            self.bucket.object_url(object),
            format!("{what} (complete multipart upload)"),
        );
        complete.query = vec![("uploadId", upload_id.to_string())];
        complete.headers = Self::cond_headers(cond);
        let complete = Req {
            body: Some(body.as_bytes()),
            ..complete
        };
        let r = self.request(&complete)?;
        if Self::is_conflict(r.status, cond) {
            return Err(self.conflict(&complete, &r, cond));
        }
        if r.status != 200 {
            return Err(self.unexpected(&complete, &r));
        }
        // S3 can answer 200 and report the failure in the body.
        let text = String::from_utf8_lossy(&r.body);
        let mut etag = None;
        let mut root = None;
        walk_xml(&text, |path, t| {
            if root.is_none() {
                root = path.first().map(|s| s.to_string());
            }
            if path == ["CompleteMultipartUploadResult", "ETag"] {
                etag = Some(t.to_string());
            }
            Ok(())
        })
        .map_err(|e| StoreError::Storage(format!("POST {what}: bad completion reply: {e}")))?;
        if root.as_deref() != Some("CompleteMultipartUploadResult") {
            let failed = Reply {
                status: r.status,
                etag: None,
                body: r.body.clone(),
                retry_after_s: None,
            };
            let code = self.error_text(&failed);
            if code.starts_with("PreconditionFailed") || code.starts_with("ConditionalRequest") {
                return Err(self.conflict(&complete, &failed, cond));
            }
            return Err(StoreError::Storage(format!(
                "POST {what}: completing the upload failed: {code}"
            )));
        }
        Ok(etag.or(r.etag))
    }

    fn list_page(
        &self,
        prefix: &str,
        token: Option<&str>,
        deadline: Instant,
    ) -> Result<(Vec<Listed>, Option<String>), StoreError> {
        let mut req = self.req(
            Method::Get,
            self.bucket.base_url().clone(),
            format!("list prefix {prefix:?}"),
        );
        req.query = vec![
            ("list-type", "2".into()),
            ("prefix", format!("{}{prefix}", self.prefix)),
            ("encoding-type", "url".into()),
        ];
        if let Some(n) = self.list_page_size {
            req.query.push(("max-keys", n.to_string()));
        }
        if let Some(t) = token {
            req.query.push(("continuation-token", t.to_string()));
        }
        req.cap = self.wire.max_list_page_bytes;
        let r = self.request_until(&req, Some(deadline))?;
        if r.status != 200 {
            return Err(self.unexpected(&req, &r));
        }
        let text = std::str::from_utf8(&r.body)
            .map_err(|_| StoreError::Storage(format!("GET {}: reply is not UTF-8", req.what)))?;
        parse_list_page(text, &self.prefix)
            .map_err(|why| StoreError::Storage(format!("GET {}: bad list reply: {why}", req.what)))
    }

    fn head(&self, key: &str, object: &str) -> Result<Option<String>, StoreError> {
        let req = self.req(
            Method::Head,
            self.bucket.object_url(object),
            format!("key {key:?}"),
        );
        let r = self.request(&req)?;
        match r.status {
            200 => Ok(r.etag),
            404 => Err(StoreError::KeyNotFound(key.to_string())),
            _ => Err(self.unexpected(&req, &r)),
        }
    }
}

/// Calls `on_text(path, text)` for every element that holds text, `path`
/// being the local names from the root. Bounded: depth, text length,
/// no DTD. Entity and character references are resolved.
fn walk_xml(
    text: &str,
    mut on_text: impl FnMut(&[&str], &str) -> Result<(), String>,
) -> Result<(), String> {
    let mut reader = Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut buf = String::new();
    let mut seen_root = false;
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) => {
                if path.is_empty() && seen_root {
                    return Err("more than one root element".into());
                }
                seen_root = true;
                if path.len() >= MAX_XML_DEPTH {
                    return Err(format!("elements nested deeper than {MAX_XML_DEPTH}"));
                }
                path.push(String::from_utf8_lossy(e.local_name().as_ref().as_bytes()).into());
                buf.clear();
            }
            Event::End(_) => {
                if !buf.is_empty() || path.len() > 1 {
                    let names: Vec<&str> = path.iter().map(String::as_str).collect();
                    on_text(&names, &buf)?;
                }
                buf.clear();
                path.pop();
            }
            Event::Empty(e) => {
                let mut names: Vec<&str> = path.iter().map(String::as_str).collect();
                let name = String::from_utf8_lossy(e.local_name().as_ref().as_bytes()).into_owned();
                names.push(&name);
                on_text(&names, "")?;
            }
            Event::Text(t) => push_bounded(&mut buf, &t.xml10_content())?,
            Event::CData(t) => push_bounded(&mut buf, t.as_ref())?,
            Event::GeneralRef(r) => {
                let raw = format!("&{};", r.into_inner());
                let s = quick_xml::escape::unescape(&raw).map_err(|e| e.to_string())?;
                push_bounded(&mut buf, &s)?;
            }
            Event::DocType(_) => return Err("a DOCTYPE is not allowed".into()),
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err("unclosed element".into());
    }
    if !seen_root {
        return Err("no root element".into());
    }
    Ok(())
}

fn push_bounded(buf: &mut String, s: &str) -> Result<(), String> {
    if buf.len() + s.len() > MAX_XML_TEXT {
        return Err(format!(
            "an element's text is longer than {MAX_XML_TEXT} bytes"
        ));
    }
    buf.push_str(s);
    Ok(())
}

/// Parses one ListObjectsV2 page (with `encoding-type=url`): the keys under
/// `store_prefix` with it stripped, their ETags, and the continuation token
/// when the listing is truncated.
fn parse_list_page(
    text: &str,
    store_prefix: &str,
) -> Result<(Vec<Listed>, Option<String>), String> {
    let mut root = None;
    let mut keys: Vec<(Option<String>, Option<String>)> = Vec::new();
    let mut truncated = None;
    let mut next = None;
    let mut url_encoded = false;
    walk_xml(text, |path, t| {
        if root.is_none() {
            root = path.first().map(|s| s.to_string());
        }
        match path {
            ["ListBucketResult", "Contents"] => {
                if keys.len() >= MAX_KEYS_PER_PAGE {
                    return Err(format!("more than {MAX_KEYS_PER_PAGE} keys in one page"));
                }
                keys.push((None, None));
            }
            ["ListBucketResult", "Contents", "Key"] => {
                // Contents' children come before its own End event.
                if keys.len() >= MAX_KEYS_PER_PAGE {
                    return Err(format!("more than {MAX_KEYS_PER_PAGE} keys in one page"));
                }
                keys.push((Some(t.to_string()), None));
            }
            ["ListBucketResult", "Contents", "ETag"] => {
                if let Some(last) = keys.last_mut().filter(|k| k.1.is_none() && k.0.is_some()) {
                    last.1 = Some(t.to_string());
                } else {
                    keys.push((None, Some(t.to_string())));
                }
            }
            ["ListBucketResult", "IsTruncated"] => truncated = Some(t == "true"),
            ["ListBucketResult", "NextContinuationToken"] => next = Some(t.to_string()),
            ["ListBucketResult", "EncodingType"] => url_encoded = t == "url",
            _ => {}
        }
        Ok(())
    })?;
    if root.as_deref() != Some("ListBucketResult") {
        return Err(format!("root element is {root:?}, not ListBucketResult"));
    }
    let mut out = Vec::new();
    let mut pending: Option<Listed> = None;
    for (key, etag) in keys {
        match (key, etag) {
            (Some(k), e) => {
                if let Some(p) = pending.take() {
                    out.push(p);
                }
                let k = if url_encoded {
                    decode_key_segment_lenient(&k.replace('+', " "))
                        .ok_or_else(|| format!("key {k:?}: bad URL encoding"))?
                } else {
                    k
                };
                pending = Some(Listed { key: k, version: e });
            }
            (None, Some(e)) => {
                if let Some(p) = pending.as_mut().filter(|p| p.version.is_none()) {
                    p.version = Some(e);
                }
            }
            (None, None) => {
                // The End of a Contents element: the entry is complete.
                match pending.take() {
                    Some(p) => out.push(p),
                    None => return Err("an entry without a Key".into()),
                }
            }
        }
    }
    if let Some(p) = pending {
        out.push(p);
    }
    let out: Vec<Listed> = out
        .into_iter()
        .filter_map(|l| {
            l.key.strip_prefix(store_prefix).map(|k| Listed {
                key: k.to_string(),
                version: l.version,
            })
        })
        .collect();
    let next = match truncated {
        Some(true) => Some(
            next.filter(|n| !n.is_empty())
                .ok_or("IsTruncated without a NextContinuationToken")?,
        ),
        _ => None,
    };
    Ok((out, next))
}

impl Store for S3Store {
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StoreError> {
        self.put_if(key, data, &Precondition::Any).map(|_| ())
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        self.get_versioned(key).map(|(d, _)| d)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.delete_if(key, &Precondition::Any)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .list_versions(prefix)?
            .into_iter()
            .map(|l| l.key)
            .collect())
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn supports_conditions(&self) -> bool {
        true
    }

    fn put_if(
        &self,
        key: &str,
        data: &[u8],
        cond: &Precondition,
    ) -> Result<Option<String>, StoreError> {
        let object = self.object_key(key)?;
        check_object_size(
            &format!("PUT key {key:?}"),
            data.len(),
            self.wire.max_object_bytes,
        )?;
        if data.len() as u64 > self.part_size {
            self.put_multipart(key, &object, data, cond)
        } else {
            self.put_single(key, &object, data, cond)
        }
    }

    fn get_versioned(&self, key: &str) -> Result<(Vec<u8>, Option<String>), StoreError> {
        let object = self.object_key(key)?;
        let mut req = self.req(
            Method::Get,
            self.bucket.object_url(&object),
            format!("key {key:?}"),
        );
        req.cap = self.wire.max_object_bytes;
        let r = self.request(&req)?;
        match r.status {
            200 => Ok((r.body, r.etag)),
            404 => Err(StoreError::KeyNotFound(key.to_string())),
            _ => Err(self.unexpected(&req, &r)),
        }
    }

    fn delete_if(&self, key: &str, cond: &Precondition) -> Result<(), StoreError> {
        let object = self.object_key(key)?;
        let cond = match cond {
            // S3 deletes a missing key happily; the store contract says
            // KeyNotFound, so look first.
            Precondition::Any => {
                self.head(key, &object)?;
                Precondition::Any
            }
            Precondition::Absent => {
                return Err(StoreError::Storage(
                    "delete under \"absent\" has no meaning".into(),
                ))
            }
            c => c.clone(),
        };
        let mut req = self.req(
            Method::Delete,
            self.bucket.object_url(&object),
            format!("key {key:?}"),
        );
        req.headers = Self::cond_headers(&cond);
        let r = self.request(&req)?;
        match r.status {
            200 | 204 => Ok(()),
            s if Self::is_conflict(s, &cond) => Err(self.conflict(&req, &r, &cond)),
            404 => Err(StoreError::KeyNotFound(key.to_string())),
            _ => Err(self.unexpected(&req, &r)),
        }
    }

    /// Follows continuation tokens to the last page, bounded like the
    /// storaged listing: `max_list_keys` keys in all, `list_timeout_ms`
    /// overall, `max_list_page_bytes` a page.
    fn list_versions(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let deadline = Instant::now() + self.wire.list_timeout;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            if Instant::now() >= deadline {
                return Err(StoreError::Storage(format!(
                    "list prefix {prefix:?} in {}: not finished within list_timeout_ms ({} ms)",
                    self.describe,
                    self.wire.list_timeout.as_millis()
                )));
            }
            let (page, next) = self.list_page(prefix, token.as_deref(), deadline)?;
            out.extend(page.into_iter().filter(|l| l.key.starts_with(prefix)));
            if out.len() as u64 > self.wire.max_list_keys {
                return Err(StoreError::Storage(format!(
                    "list prefix {prefix:?} in {}: more than max_list_keys ({}) keys",
                    self.describe, self.wire.max_list_keys
                )));
            }
            match next {
                None => {
                    out.sort_by(|a, b| a.key.cmp(&b.key));
                    out.dedup_by(|a, b| a.key == b.key);
                    return Ok(out);
                }
                Some(n) => {
                    if token.as_deref() == Some(n.as_str()) {
                        return Err(StoreError::Storage(format!(
                            "list prefix {prefix:?} in {}: the continuation token does not advance",
                            self.describe
                        )));
                    }
                    token = Some(n);
                }
            }
        }
        Err(StoreError::Storage(format!(
            "list prefix {prefix:?}: more than {MAX_LIST_PAGES} pages"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_defaults_and_forms() {
        let l = parse_s3_url("s3://my-bucket").unwrap();
        assert_eq!(l.prefix, "");
        assert_eq!(l.region, "us-east-1");
        assert_eq!(l.endpoint, "https://s3.us-east-1.amazonaws.com");
        assert!(!l.path_style);
        let l = parse_s3_url("s3://b-1/team/x/?endpoint=http://127.0.0.1:9000&region=eu-west-3")
            .unwrap();
        assert_eq!(l.bucket, "b-1");
        assert_eq!(l.prefix, "team/x/");
        assert_eq!(l.endpoint, "http://127.0.0.1:9000");
        assert_eq!(l.region, "eu-west-3");
        assert!(l.path_style);
        let l = parse_s3_url("s3://bkt?region=eu-west-1&path_style=true").unwrap();
        assert_eq!(l.endpoint, "https://s3.eu-west-1.amazonaws.com");
        assert!(l.path_style);
        let l =
            parse_s3_url("S3://bkt?endpoint=https%3A%2F%2Fminio.local&path_style=false").unwrap();
        assert_eq!(l.endpoint, "https://minio.local");
        assert!(!l.path_style);
    }

    #[test]
    fn url_rejections_name_the_problem() {
        for (url, needle) in [
            ("s3://", "bucket"),
            ("s3://AB", "bucket"),
            ("s3://Bucket", "bucket"),
            ("s3://b_c", "bucket"),
            ("s3://bkt?foo=1", "unknown parameter"),
            ("s3://bkt?region=a&region=b", "twice"),
            ("s3://bkt?path_style=yes", "path_style"),
            ("s3://bkt?endpoint=ftp://x", "scheme"),
            ("s3://bkt?endpoint=http://u:p@h", "user info"),
            ("s3://bkt?endpoint=http://h/?q=1", "query"),
            ("s3://bkt?region=US", "region"),
            ("s3://bkt/a/../b", "segment"),
            ("s3://bkt#x", "fragment"),
            ("http://bkt", "s3://"),
        ] {
            let e = parse_s3_url(url).unwrap_err().to_string();
            assert!(e.contains(needle), "{url}: {e}");
        }
    }

    /// Store options carrying these credentials.
    fn with_keys(access_key_id: &str, secret_access_key: &str) -> StoreOptions {
        StoreOptions {
            s3: Some(S3Credentials {
                access_key_id: access_key_id.into(),
                secret_access_key: secret_access_key.into(),
                session_token: None,
            }),
            ..StoreOptions::default()
        }
    }

    /// The presigned GET example of the AWS SigV4 documentation
    /// ("Authenticating Requests: Using Query Parameters").
    #[test]
    fn signing_matches_the_aws_vector() {
        let opts = with_keys(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        let mut s = S3Store::open("s3://examplebucket", &opts).unwrap();
        s.bucket = Bucket::new(
            "https://s3.amazonaws.com".parse().unwrap(),
            UrlStyle::VirtualHost,
            "examplebucket",
            "us-east-1",
        )
        .unwrap();
        s.expires_secs = 86400;
        let req = s.req(
            Method::Get,
            s.bucket.object_url("test.txt"),
            "key \"test.txt\"".into(),
        );
        let t = Timestamp::from_second(1_369_353_600).unwrap();
        assert_eq!(
            s.presign(&req, &t).as_str(),
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
        // A precondition header is signed: the signature changes with it.
        let mut cond = s.req(
            Method::Get,
            s.bucket.object_url("test.txt"),
            "key \"test.txt\"".into(),
        );
        cond.headers = S3Store::cond_headers(&Precondition::Version("\"e\"".into()));
        let u = s.presign(&cond, &t).to_string();
        assert!(u.contains("X-Amz-SignedHeaders=host%3Bif-match"), "{u}");
        assert!(!u.contains("aeeed9bb"));
    }

    #[test]
    fn credentials_missing_or_hidden() {
        let e = credentials(&StoreOptions::default());
        // The environment may hold real credentials; only check without them.
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            let e = e.unwrap_err().to_string();
            assert!(
                e.contains("options_json") && e.contains("AWS_ACCESS_KEY_ID"),
                "{e}"
            );
        }
        let opts = StoreOptions {
            s3: Some(S3Credentials {
                access_key_id: "AKID".into(),
                secret_access_key: "s3cr3t-value".into(),
                session_token: Some("t0ken-value".into()),
            }),
            ..StoreOptions::default()
        };
        assert!(!format!("{opts:?}").contains("s3cr3t"));
        let s = S3Store::open("s3://bkt?endpoint=http://127.0.0.1:1", &opts).unwrap();
        assert!(!format!("{s:?}").contains("s3cr3t"));
        let scrubbed = s.scrub("x s3cr3t-value y t0ken-value http://h/k?X-Amz-Security-Token=abc");
        assert!(
            !scrubbed.contains("s3cr3t")
                && !scrubbed.contains("t0ken")
                && !scrubbed.contains("abc")
        );
        // Nothing listens on port 1: the transport error must not carry the
        // signed URL (token, signature).
        let e = s.get("k").unwrap_err().to_string();
        assert!(!e.contains("t0ken") && !e.contains("X-Amz-"), "{e}");
    }

    #[test]
    fn list_page_parsing() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
<Contents><Key>p/_vectors/a%20b.lhv1</Key><ETag>&quot;e1&quot;</ETag><Size>3</Size></Contents>
<Contents><Key>p/_vectors/c.lhv1</Key><LastModified>x</LastModified><ETag>"e2"</ETag></Contents>
<Contents><Key>other/x</Key></Contents>
<NextContinuationToken>tok&amp;1</NextContinuationToken>
</ListBucketResult>"#;
        let (keys, next) = parse_list_page(xml, "p/").unwrap();
        assert_eq!(
            keys,
            vec![
                Listed {
                    key: "_vectors/a b.lhv1".into(),
                    version: Some("\"e1\"".into())
                },
                Listed {
                    key: "_vectors/c.lhv1".into(),
                    version: Some("\"e2\"".into())
                },
            ]
        );
        assert_eq!(next.as_deref(), Some("tok&1"));
        let last = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
        assert_eq!(parse_list_page(last, "").unwrap(), (vec![], None));
    }

    #[test]
    fn list_page_rejects_hostile_replies() {
        let deep = format!(
            "<ListBucketResult>{}{}</ListBucketResult>",
            "<a>".repeat(40),
            "</a>".repeat(40)
        );
        let long = format!(
            "<ListBucketResult><Contents><Key>{}</Key></Contents></ListBucketResult>",
            "k".repeat(MAX_XML_TEXT + 1)
        );
        let many = format!(
            "<ListBucketResult>{}</ListBucketResult>",
            "<Contents><Key>k</Key></Contents>".repeat(MAX_KEYS_PER_PAGE + 1)
        );
        for (xml, needle) in [
            ("<Error><Code>AccessDenied</Code></Error>", "root element"),
            (
                "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
                "Continuation",
            ),
            ("<ListBucketResult><Contents><Key>a", "unclosed"),
            (
                "<!DOCTYPE x [<!ENTITY e \"x\">]><ListBucketResult/>",
                "DOCTYPE",
            ),
            (
                "<ListBucketResult><Contents><Key>&e;</Key></Contents></ListBucketResult>",
                "",
            ),
            (deep.as_str(), "deeper"),
            (long.as_str(), "longer"),
            (many.as_str(), "keys in one page"),
            ("", "no root"),
        ] {
            let e = parse_list_page(xml, "").unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn object_keys_that_urls_cannot_address() {
        let opts = with_keys("a", "b");
        let s = S3Store::open("s3://bkt/pre?endpoint=http://127.0.0.1:1", &opts).unwrap();
        assert_eq!(
            s.object_key("_vectors/x.lhv1").unwrap(),
            "pre/_vectors/x.lhv1"
        );
        assert!(s.object_key("_vectors/../x.lhv1").is_err());
        assert!(s.object_key(&"k".repeat(1100)).is_err());
        let small = StoreOptions {
            multipart_threshold_bytes: 1 << 20,
            ..opts
        };
        assert!(S3Store::open("s3://bkt", &small)
            .unwrap_err()
            .to_string()
            .contains("multipart_threshold_bytes"));
    }
}
