//! The upstream HTTP client: reqwest with rustls and the system's CA store
//! (`SSL_CERT_FILE` honoured), environment proxies, keep-alive, a connect
//! timeout, an idle-read timeout per chunk and an overall cap, one retry of
//! a failed connection, at most `max_conns` concurrent requests per host,
//! and a negative cache that remembers 404s, 5xx and timeouts for
//! `cache_period`.
//!
//! Every wait is bounded: connecting by `connect`; the response headers
//! (connecting included) by `idle_read` (reqwest's read timeout runs from
//! the request's start until the headers); each body chunk by `idle_read`;
//! the whole download by `overall`. Metadata and pool files use the same
//! [`Response::chunk`], so the bounds hold for both.
//!
//! The client, the per-host limits and the classification of failures are
//! `runtime::http`'s (shared with apt-mirror); [`UpstreamError`] is this
//! cacher's view of them (which status to answer, what to remember).

use crate::config::{Config, Timeouts};
use bytes::Bytes;
use reqwest::{StatusCode, Url};
use runtime::http::{HostLimits, HttpError, HttpErrorKind};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;

/// Why an upstream request failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum UpstreamError {
    /// Upstream answered 404 or 410.
    #[error("{url}: upstream answered {status}")]
    NotFound {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// Upstream answered another non-success status.
    #[error("{url}: upstream answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// Connecting failed or timed out (after one retry).
    #[error("{url}: cannot connect: {reason}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// No byte came for the idle-read timeout, or the overall cap passed.
    #[error("{url}: timed out: {reason}")]
    Timeout {
        /// The URL.
        url: String,
        /// Which timeout.
        reason: String,
    },
    /// The body broke off or another transport error happened.
    #[error("{url}: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The body is larger than allowed.
    #[error("{url}: body larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
}

impl UpstreamError {
    /// The cacher's view of a failed request: a timeout (connecting
    /// included), a connection failure, or another transport error.
    fn from_http(e: HttpError) -> UpstreamError {
        let HttpError { url, kind, detail } = e;
        match kind {
            HttpErrorKind::Timeout | HttpErrorKind::ConnectTimeout => UpstreamError::Timeout {
                url,
                reason: detail,
            },
            HttpErrorKind::Connect => UpstreamError::Connect {
                url,
                reason: detail,
            },
            _ => UpstreamError::Transport {
                url,
                reason: detail,
            },
        }
    }

    /// The status to answer a client with.
    pub fn client_status(&self) -> StatusCode {
        match self {
            UpstreamError::NotFound { status, .. } | UpstreamError::Status { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            UpstreamError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
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

    /// The next chunk of the body, `None` at the end; bounded by the
    /// idle-read timeout and the overall cap.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        let deadline = self
            .deadline
            .min(crate::time::later(tokio::time::Instant::now(), self.idle));
        match tokio::time::timeout_at(deadline, self.inner.chunk()).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(UpstreamError::Transport {
                url: self.url.to_string(),
                reason: runtime::http::error_chain(&e),
            }),
            Err(_) => Err(UpstreamError::Timeout {
                url: self.url.to_string(),
                reason: if deadline == self.deadline {
                    "overall download cap".into()
                } else {
                    "no data".into()
                },
            }),
        }
    }

    /// Reads the whole body, at most `limit` bytes.
    pub async fn bytes(mut self, limit: u64) -> Result<Bytes, UpstreamError> {
        let mut buf = Vec::new();
        while let Some(c) = self.chunk().await? {
            if (buf.len() + c.len()) as u64 > limit {
                return Err(UpstreamError::TooLarge {
                    url: self.url.to_string(),
                    limit,
                });
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
    negative: Mutex<HashMap<String, (Instant, UpstreamError)>>,
}

impl Upstream {
    /// Builds the client from the configuration.
    pub fn new(config: &Config) -> anyhow::Result<Upstream> {
        let mut options = runtime::http::ClientOptions::new(
            concat!("apt-cacher/", env!("CARGO_PKG_VERSION")),
            config.timeouts.connect,
        );
        options.read_timeout = Some(config.timeouts.idle_read);
        options.pool_idle_timeout = Some(Duration::from_secs(60));
        let client = runtime::http::build_client(&options)?;
        Ok(Upstream {
            client,
            timeouts: config.timeouts.clone(),
            cache_period: config.cache_period,
            hosts: HostLimits::new(config.max_conns),
            negative: Mutex::new(HashMap::new()),
        })
    }

    /// The remembered failure of `url`, if still within `cache_period`.
    fn negative(&self, url: &Url) -> Option<UpstreamError> {
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

    fn remember(&self, url: &Url, e: &UpstreamError) {
        if self.cache_period.is_zero() {
            return;
        }
        let mut map = self.negative.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() < 100_000 {
            map.insert(url.to_string(), (Instant::now(), e.clone()));
        }
    }

    /// True when a failure of `url` is remembered (answered from memory).
    pub fn is_negative(&self, url: &Url) -> bool {
        self.negative(url).is_some()
    }

    /// Starts a GET of `url`; the returned response holds the host's
    /// connection slot until dropped. Failures are remembered for
    /// `cache_period` (transport errors too), and answered from memory.
    pub async fn get(&self, url: &Url) -> Result<Response, UpstreamError> {
        if let Some(e) = self.negative(url) {
            return Err(e);
        }
        let result = self.get_uncached(url).await;
        if let Err(e) = &result {
            self.remember(url, e);
        }
        result
    }

    async fn get_uncached(&self, url: &Url) -> Result<Response, UpstreamError> {
        let permit = match self.hosts.for_url(url) {
            Some(s) => Some(
                s.acquire_owned()
                    .await
                    .map_err(|_| UpstreamError::Connect {
                        url: url.to_string(),
                        reason: "shutting down".into(),
                    })?,
            ),
            None => None,
        };
        let deadline = crate::time::later(tokio::time::Instant::now(), self.timeouts.overall);
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            let req = self.client.get(url.clone()).timeout(self.timeouts.overall);
            match req.send().await {
                Ok(r) => break r,
                Err(e) => {
                    let e = HttpError::from_reqwest(url, &e);
                    if e.is_connect() && attempt == 1 {
                        tracing::debug!(url = %url, error = %e.detail, "connect failed, retrying once");
                        continue;
                    }
                    return Err(UpstreamError::from_http(e));
                }
            }
        };
        let status = resp.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Err(UpstreamError::NotFound {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        if !status.is_success() || status == StatusCode::PARTIAL_CONTENT {
            return Err(UpstreamError::Status {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        Ok(Response {
            url: url.clone(),
            inner: resp,
            idle: self.timeouts.idle_read,
            deadline,
            _permit: permit,
        })
    }

    /// Fetches a whole (small) body, at most `limit` bytes.
    pub async fn get_bytes(
        &self,
        url: &Url,
        limit: u64,
    ) -> Result<(Bytes, Option<String>), UpstreamError> {
        let resp = self.get(url).await?;
        let lm = resp.last_modified();
        let body = resp.bytes(limit).await;
        if let Err(e) = &body {
            self.remember(url, e);
        }
        Ok((body?, lm))
    }
}
