//! The upstream HTTP client: reqwest with rustls and the system's CA store
//! (`SSL_CERT_FILE` honoured), environment proxies, keep-alive, a connect
//! timeout, an idle-read timeout per chunk and an overall cap, one retry of
//! a failed connection, at most `max_conns` concurrent requests per host,
//! a negative cache that remembers 404s, 5xx and timeouts for
//! `cache_period` (by URL), and failover to a mapping's next upstream URL
//! (`failover.rs` decides the order; here each attempt is made, logged and
//! counted). Every request sent upstream is counted here, per host.
//!
//! Every wait is bounded: connecting by `connect`; the response headers
//! (connecting included) by `idle_read` (reqwest's read timeout runs from
//! the request's start until the headers); each body chunk by `idle_read`;
//! the whole download by `overall`. Metadata and pool files use the same
//! [`Response::chunk`], so the bounds hold for both.
//!
//! The client, the per-host limits and the classification of failures are
//! `runtime::http`'s (shared with apt-mirror), and so are the redirect
//! policy (each mapping's URL, aliases and `redirect_hosts`, registered
//! here) and the error type
//! (`runtime::http::HttpError`: a 404 or 410 is
//! [`HttpError::is_not_found`], the negative cache remembers the error
//! itself); what stays here is the cacher's view of a failure: which status to answer
//! ([`client_status`]) and what to remember. A Release file is re-checked
//! with a conditional GET ([`Upstream::get_bytes_if_modified`]: its
//! [`Validators`] sent back, 304 answered as [`Conditional::NotModified`]).

use crate::config::{Config, Timeouts};
use crate::failover::{worth_failover, Failover, UpstreamState};
use crate::metrics::Metrics;
use bytes::Bytes;
use reqwest::{StatusCode, Url};
use runtime::http::{HostLimits, HttpError, HttpErrorKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;

/// The status to answer a client with when upstream failed: upstream's own
/// status, 504 for a timeout, 502 for anything else.
pub fn client_status(e: &HttpError) -> StatusCode {
    match e.kind {
        HttpErrorKind::Status(status) => {
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY)
        }
        HttpErrorKind::Timeout | HttpErrorKind::ConnectTimeout => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// The longest `ETag` or `Last-Modified` kept (they are kept per suite).
pub const MAX_VALIDATOR: usize = 512;

/// What identifies one version of an upstream file (`ETag`,
/// `Last-Modified`, as upstream sent them), to ask whether it changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// `ETag`, sent back as `If-None-Match`.
    pub etag: Option<String>,
    /// `Last-Modified`, sent back as `If-Modified-Since`.
    pub last_modified: Option<String>,
    /// The URL that answered with them: they are sent back to it only
    /// (another upstream of the mapping has its own times and tags).
    pub from: Option<String>,
}

impl Validators {
    /// These validators, if they may be sent to `url` (the URL that gave
    /// them, or any when that is not known).
    fn for_url(&self, url: &Url) -> Option<&Validators> {
        self.from
            .as_deref()
            .is_none_or(|f| f == url.as_str())
            .then_some(self)
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }

    fn apply(&self, mut req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(e) = &self.etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, e);
        }
        if let Some(lm) = &self.last_modified {
            req = req.header(reqwest::header::IF_MODIFIED_SINCE, lm);
        }
        req
    }
}

/// What a conditional GET ([`Upstream::get_bytes_if_modified`]) found.
#[derive(Debug)]
pub enum Conditional {
    /// 304: unchanged since `validators` were taken; no body.
    NotModified,
    /// A 2xx answer: the file, and its validators when usable
    /// ([`Response::validators`]).
    Modified {
        /// The whole body.
        body: Bytes,
        /// Its validators, for the next conditional GET.
        validators: Option<Validators>,
    },
}

/// What upstream answered a request with.
enum Sent {
    /// A success (not 206), its body still to read.
    Response(Box<Response>),
    /// 304 to a conditional request.
    NotModified,
}

impl Sent {
    /// The response of a request sent without validators (only a
    /// conditional request is answered 304).
    fn into_response(self, url: &Url) -> Result<Response, HttpError> {
        match self {
            Sent::Response(r) => Ok(*r),
            Sent::NotModified => Err(HttpError::status(url, 304)),
        }
    }
}

/// A successful upstream response whose body is still to be read.
#[derive(Debug)]
pub struct Response {
    url: Url,
    inner: reqwest::Response,
    idle: Duration,
    deadline: tokio::time::Instant,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Response {
    /// The URL finally fetched.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The HTTP status (a success other than 206).
    pub fn status(&self) -> u16 {
        self.inner.status().as_u16()
    }

    /// `Content-Length`, if upstream sent it.
    pub fn content_length(&self) -> Option<u64> {
        self.inner.content_length()
    }

    /// `Last-Modified`, as sent.
    pub fn last_modified(&self) -> Option<String> {
        self.inner
            .headers()
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// `ETag` and `Last-Modified`, when they tell one version of the file
    /// from the next (each kept only up to [`MAX_VALIDATOR`] bytes): `None`
    /// when there are none, or when `Last-Modified`
    /// is not older than the response's `Date` (RFC 9110 8.8.2.2: a file
    /// changed again within that second could carry the same validators, as
    /// nginx's `ETag` of mtime and size would).
    pub fn validators(&self) -> Option<Validators> {
        let header = |name| {
            self.inner
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.len() <= MAX_VALIDATOR)
                .map(str::to_string)
        };
        let v = Validators {
            etag: header(reqwest::header::ETAG),
            last_modified: header(reqwest::header::LAST_MODIFIED),
            from: Some(self.url.to_string()),
        };
        if v.is_empty() {
            return None;
        }
        if let Some(lm) = &v.last_modified {
            let date = header(reqwest::header::DATE)
                .and_then(|d| httpdate::parse_http_date(&d).ok())
                .unwrap_or_else(std::time::SystemTime::now);
            let strong = httpdate::parse_http_date(lm)
                .is_ok_and(|lm| crate::metrics::unix_secs(lm) < crate::metrics::unix_secs(date));
            if !strong {
                return None;
            }
        }
        Some(v)
    }

    /// `Content-Type`, as sent.
    pub fn content_type(&self) -> Option<&str> {
        self.inner
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }

    /// The next chunk of the body, `None` at the end; bounded by the
    /// idle-read timeout and the overall cap.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, HttpError> {
        let deadline = self
            .deadline
            .min(crate::time::later(tokio::time::Instant::now(), self.idle));
        match tokio::time::timeout_at(deadline, self.inner.chunk()).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(HttpError::new(
                self.url.as_str(),
                HttpErrorKind::Transport,
                runtime::http::error_chain(&e),
            )),
            Err(_) => Err(HttpError::new(
                self.url.as_str(),
                HttpErrorKind::Timeout,
                if deadline == self.deadline {
                    "overall download cap"
                } else {
                    "no data"
                },
            )),
        }
    }

    /// Reads the whole body, at most `limit` bytes.
    pub async fn bytes(mut self, limit: u64) -> Result<Bytes, HttpError> {
        let mut buf = Vec::new();
        while let Some(c) = self.chunk().await? {
            if (buf.len() + c.len()) as u64 > limit {
                return Err(HttpError::too_large(&self.url, limit));
            }
            buf.extend_from_slice(&c);
        }
        Ok(buf.into())
    }
}

/// The upstream client shared by all requests.
#[derive(Debug)]
pub struct Upstream {
    client: reqwest::Client,
    timeouts: Timeouts,
    cache_period: Duration,
    hosts: HostLimits,
    negative: Mutex<HashMap<String, (Instant, HttpError)>>,
    failover: Failover,
    metrics: Arc<Metrics>,
}

/// Whether a request uses the negative cache (answered from it, its
/// failure remembered in it). A failing upstream is remembered by
/// `failover.rs` either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Memory {
    Remember,
    Forget,
}

impl Upstream {
    /// Builds the client from the configuration; requests and errors are
    /// counted into `metrics`.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> anyhow::Result<Upstream> {
        let mut options = runtime::http::ClientOptions::new(
            concat!("apt-cacher/", env!("CARGO_PKG_VERSION")),
            config.timeouts.connect,
        );
        options.read_timeout = Some(config.timeouts.idle_read);
        options.pool_idle_timeout = Some(Duration::from_secs(60));
        for m in &config.mappings {
            let upstreams: Vec<&Url> = std::iter::once(&m.url)
                .chain(&m.fallbacks)
                .chain(&m.aliases)
                .collect();
            options
                .redirects
                .add(&m.prefix, &upstreams, &m.redirect_hosts);
        }
        let client = runtime::http::build_client(&options)?;
        Ok(Upstream {
            client,
            timeouts: config.timeouts.clone(),
            cache_period: config.cache_period,
            hosts: HostLimits::new(config.max_conns),
            negative: Mutex::new(HashMap::new()),
            failover: Failover::new(&config.mappings, config.cache_period),
            metrics,
        })
    }

    /// Each upstream of mapping `prefix` and whether it is remembered as
    /// failing (empty for a mapping with one upstream).
    pub fn upstream_states(&self, prefix: &str) -> Vec<UpstreamState> {
        self.failover.states(prefix)
    }

    /// The remembered failure of `url`, if still within `cache_period`.
    fn negative(&self, url: &Url) -> Option<HttpError> {
        let mut map = self.negative.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if map.len() > 1000 {
            map.retain(|_, (t, _)| now.duration_since(*t) < self.cache_period);
        }
        match map.get(url.as_str()) {
            Some((t, e)) if now.duration_since(*t) < self.cache_period => Some(e.clone()),
            Some(_) => {
                map.remove(url.as_str());
                None
            }
            None => None,
        }
    }

    fn remember(&self, url: &Url, e: &HttpError) {
        if self.cache_period.is_zero() {
            return;
        }
        let mut map = self.negative.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() < 100_000 {
            map.insert(url.to_string(), (Instant::now(), e.clone()));
        }
    }

    /// True when a request for `url` would be answered from memory alone:
    /// a failure of `url`, and of the same path on each of its mapping's
    /// other upstreams, is remembered.
    pub fn is_negative(&self, url: &Url) -> bool {
        match self.failover.plan(url) {
            None => self.negative(url).is_some(),
            Some(plan) => plan
                .attempts
                .iter()
                .all(|a| self.negative(&a.url).is_some()),
        }
    }

    /// Starts a GET of `url` (on the next upstream of its mapping after a
    /// connect failure, timeout or 5xx: `failover.rs`); the returned
    /// response holds the host's connection slot until dropped. Failures
    /// are remembered for `cache_period` (transport errors too), and
    /// answered from memory.
    pub async fn get(&self, url: &Url) -> Result<Response, HttpError> {
        let sent = self.get_planned(url, Memory::Remember, None).await?;
        Sent::into_response(sent, url)
    }

    /// [`Self::get`], conditional on `validators` when given: each upstream
    /// of `url`'s mapping in turn, the next one only after a failure
    /// [`worth_failover`]. Validators go only to the URL that gave them;
    /// another upstream gets a plain GET.
    async fn get_planned(
        &self,
        url: &Url,
        memory: Memory,
        validators: Option<&Validators>,
    ) -> Result<Sent, HttpError> {
        let Some(plan) = self.failover.plan(url) else {
            let sent = validators.and_then(|v| v.for_url(url));
            return self.get_one(url, memory, sent).await;
        };
        let mut last = None;
        for (i, attempt) in plan.attempts.iter().enumerate() {
            let sent = validators.and_then(|v| v.for_url(&attempt.url));
            let e = match self.get_one(&attempt.url, memory, sent).await {
                Ok(r) => return Ok(r),
                Err(e) if !worth_failover(&e) => return Err(e),
                Err(e) => e,
            };
            // The upstream itself is remembered even for a request kept out
            // of the negative cache: a bounded table of configured upstreams.
            if self.failover.failed(&attempt.root, &e) {
                tracing::warn!(mapping = %plan.prefix, upstream = %attempt.root, error = %e, cache_period_secs = self.cache_period.as_secs(), "upstream failing: the mapping's other upstreams are asked first until cache_period ends");
            }
            if let Some(next) = plan.attempts.get(i + 1) {
                self.metrics.failover(&plan.prefix);
                tracing::warn!(mapping = %plan.prefix, from = %attempt.url, to = %next.url, reason = %e, "upstream failover");
            }
            last = Some(e);
        }
        Err(last.unwrap_or_else(|| {
            HttpError::new(url.as_str(), HttpErrorKind::Connect, "no upstream to ask")
        }))
    }

    /// One GET of `url`: answered from the negative cache, or sent (and
    /// its failure remembered), as `memory` says.
    async fn get_one(
        &self,
        url: &Url,
        memory: Memory,
        validators: Option<&Validators>,
    ) -> Result<Sent, HttpError> {
        if memory == Memory::Remember {
            if let Some(e) = self.negative(url) {
                return Err(e);
            }
        }
        let result = self.get_uncached(url, validators).await;
        if let Err(e) = &result {
            if memory == Memory::Remember {
                self.remember(url, e);
            }
        }
        result
    }

    /// Sends a GET of `url` within its host's connection slots, counted.
    async fn get_uncached(
        &self,
        url: &Url,
        validators: Option<&Validators>,
    ) -> Result<Sent, HttpError> {
        let permit = match self.hosts.for_url(url) {
            Some(s) => Some(s.acquire_owned().await.map_err(|_| {
                HttpError::new(url.as_str(), HttpErrorKind::Connect, "shutting down")
            })?),
            None => None,
        };
        self.metrics.upstream_request(url);
        let result = self.send(url, permit, validators).await;
        if result.is_err() {
            self.metrics.upstream_error(url);
        }
        result
    }

    /// Sends a GET of `url`, conditional on `validators` when given.
    async fn send(
        &self,
        url: &Url,
        permit: Option<OwnedSemaphorePermit>,
        validators: Option<&Validators>,
    ) -> Result<Sent, HttpError> {
        let deadline = crate::time::later(tokio::time::Instant::now(), self.timeouts.overall);
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            let mut req = self.client.get(url.clone()).timeout(self.timeouts.overall);
            if let Some(v) = validators {
                req = v.apply(req);
            }
            match req.send().await {
                Ok(r) => break r,
                Err(e) => {
                    let e = HttpError::from_reqwest(url, &e);
                    if e.is_connect() && attempt == 1 {
                        tracing::debug!(url = %url, error = %e.detail, "connect failed, retrying once");
                        continue;
                    }
                    return Err(e);
                }
            }
        };
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED && validators.is_some() {
            return Ok(Sent::NotModified);
        }
        if !status.is_success() || status == StatusCode::PARTIAL_CONTENT {
            return Err(HttpError::status(url, status.as_u16()));
        }
        Ok(Sent::Response(Box::new(Response {
            url: url.clone(),
            inner: resp,
            idle: self.timeouts.idle_read,
            deadline,
            _permit: permit,
        })))
    }

    /// A conditional GET of a whole (small) body, at most `limit` bytes:
    /// `If-None-Match` / `If-Modified-Since` from `validators` (a plain GET
    /// without them). Through the negative cache and failover, like
    /// [`Self::get`].
    pub async fn get_bytes_if_modified(
        &self,
        url: &Url,
        limit: u64,
        validators: Option<&Validators>,
    ) -> Result<Conditional, HttpError> {
        let validators = validators.filter(|v| !v.is_empty());
        let resp = match self.get_planned(url, Memory::Remember, validators).await? {
            Sent::NotModified => return Ok(Conditional::NotModified),
            Sent::Response(r) => r,
        };
        let validators = resp.validators();
        let body = self.read_body(*resp, limit, Memory::Remember).await?;
        Ok(Conditional::Modified { body, validators })
    }

    /// Fetches a whole (small) body, at most `limit` bytes.
    pub async fn get_bytes(
        &self,
        url: &Url,
        limit: u64,
    ) -> Result<(Bytes, Option<String>), HttpError> {
        let resp = self.get(url).await?;
        let lm = resp.last_modified();
        Ok((self.read_body(resp, limit, Memory::Remember).await?, lm))
    }

    /// [`Self::get_bytes`] without the negative cache: a failure is
    /// neither answered from it nor remembered in it (a suite not known
    /// yet: generation/unknown.rs remembers its failure in a small table of
    /// its own, so that made-up names cannot fill this cache).
    pub async fn get_bytes_unremembered(
        &self,
        url: &Url,
        limit: u64,
    ) -> Result<(Bytes, Option<String>), HttpError> {
        let sent = self.get_planned(url, Memory::Forget, None).await?;
        let resp = Sent::into_response(sent, url)?;
        let lm = resp.last_modified();
        Ok((self.read_body(resp, limit, Memory::Forget).await?, lm))
    }

    /// Reads the whole body of `resp`, at most `limit` bytes; a failure is
    /// counted against the URL that answered, and remembered as `memory`
    /// says.
    async fn read_body(
        &self,
        resp: Response,
        limit: u64,
        memory: Memory,
    ) -> Result<Bytes, HttpError> {
        let fetched = resp.url().clone();
        let body = resp.bytes(limit).await;
        if let Err(e) = &body {
            self.metrics.upstream_error(&fetched);
            if memory == Memory::Remember {
                self.remember(&fetched, e);
            }
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(headers: &[(&str, &str)]) -> Response {
        let mut b = hyper::Response::builder().status(200);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        Response {
            url: Url::parse("http://deb.example.org/debian/dists/stable/InRelease").unwrap(),
            inner: reqwest::Response::from(b.body(Vec::<u8>::new()).unwrap()),
            idle: Duration::from_secs(1),
            deadline: tokio::time::Instant::now(),
            _permit: None,
        }
    }

    #[test]
    fn validators_go_back_only_to_the_url_that_gave_them() {
        let a = Url::parse("http://a.example/debian/dists/s/InRelease").unwrap();
        let b = Url::parse("http://b.example/debian/dists/s/InRelease").unwrap();
        let v = response(&[("etag", "\"x\"")]).validators().unwrap();
        assert_eq!(
            v.from.as_deref(),
            Some("http://deb.example.org/debian/dists/stable/InRelease")
        );
        let from_a = Validators {
            from: Some(a.to_string()),
            ..v.clone()
        };
        assert!(from_a.for_url(&a).is_some());
        assert!(
            from_a.for_url(&b).is_none(),
            "another upstream gets a plain GET"
        );
        let unknown = Validators { from: None, ..v };
        assert!(unknown.for_url(&b).is_some());
    }

    #[test]
    fn validators_only_when_they_tell_versions_apart() {
        let old = "Sun, 06 Dec 2026 10:00:00 GMT";
        let later = "Sun, 06 Dec 2026 10:00:01 GMT";
        let v = response(&[("etag", "\"5-a\""), ("last-modified", old), ("date", later)])
            .validators()
            .unwrap();
        assert_eq!(v.etag.as_deref(), Some("\"5-a\""));
        assert_eq!(v.last_modified.as_deref(), Some(old));
        // Changed within the second of the answer: nginx's ETag and the
        // date could stay the same for the next version.
        for date in [old, "Sun, 06 Dec 2026 09:59:59 GMT"] {
            let r = response(&[("etag", "\"5-a\""), ("last-modified", old), ("date", date)]);
            assert_eq!(r.validators(), None, "{date}");
        }
        // An unparsable Last-Modified is no validator to trust.
        let r = response(&[("last-modified", "yesterday"), ("date", later)]);
        assert_eq!(r.validators(), None);
        // An ETag alone is kept; nothing at all is nothing.
        let r = response(&[("etag", "\"x\"")]);
        assert_eq!(r.validators().and_then(|v| v.etag), Some("\"x\"".into()));
        assert_eq!(response(&[]).validators(), None);
        let long = format!("\"{}\"", "a".repeat(MAX_VALIDATOR));
        assert_eq!(response(&[("etag", &long)]).validators(), None);
    }
}
