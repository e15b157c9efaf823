//! HTTP(S) downloads from upstream repositories.
//!
//! One [`Fetcher`] per run: a reqwest client (rustls with the system's roots,
//! `SSL_CERT_FILE` honoured, proxies from the environment, no transparent
//! decompression), at most `max_conns` requests in flight per upstream host,
//! retries with exponential backoff after network errors, timeouts and 5xx,
//! and three time limits: connect, idle read (headers and each body chunk),
//! and an overall cap per attempt. A file is hashed while it streams to a
//! temporary file next to its destination, verified, and only then renamed
//! to its final name: a partial or unverified file never appears under it.
//!
//! The client, the per-host limits, URL joining, the retry backoff, the
//! redirect policy (each mirror's URL and `redirect_hosts`, registered in
//! `lib.rs`) and the
//! HTTP error type are `runtime::http`'s (shared with apt-cacher); this file
//! keeps the mirror's own parts: the time limits per attempt, retries with
//! cancellation, and the verified download.

use crate::config::HttpConfig;
use crate::progress::Progress;
use aptindex::checksum::{ChecksumError, Checksums};
use aptindex::tree::{StagedFile, TreeError};
use reqwest::Url;
use runtime::http::{HostLimits, HttpError, HttpErrorKind, RedirectRules, RetryPolicy};
use std::path::{Path, PathBuf};

/// Downloads failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// An error status, a connection or transfer error, a response larger
    /// than allowed or expected (`runtime::http`).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// No data for longer than the read timeout.
    #[error("{url}: no data for {secs:.1} s (read timeout)")]
    Stalled {
        /// The URL.
        url: String,
        /// The timeout, in seconds.
        secs: f64,
    },
    /// The overall download cap was reached.
    #[error("{url}: download took longer than {secs:.0} s")]
    TimedOut {
        /// The URL.
        url: String,
        /// The cap, in seconds.
        secs: f64,
    },
    /// The content does not match the expected checksums.
    #[error("{url}: verification failed: {source}")]
    Verify {
        /// The URL.
        url: String,
        /// The mismatch.
        #[source]
        source: ChecksumError,
    },
    /// A downloaded file could not be given its published mode.
    #[error(transparent)]
    Mode(#[from] aptindex::fsmode::ModeError),
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The expectation has no hash: the file cannot be verified.
    #[error("{url}: no checksum to verify it against")]
    NoChecksum {
        /// The URL.
        url: String,
    },
    /// The run was interrupted.
    #[error("interrupted")]
    Cancelled,
}

impl From<TreeError> for FetchError {
    /// The staged file's errors, as the fetcher reports them (a verification
    /// failure stays [`FetchError::Verify`]: a by-hash copy that fails it is
    /// skipped for the next location).
    fn from(e: TreeError) -> FetchError {
        match e {
            TreeError::Io { path, source } => FetchError::Io { path, source },
            TreeError::TooLarge { what, limit } => FetchError::Http(HttpError {
                url: what,
                kind: HttpErrorKind::TooLarge(limit),
                detail: String::new(),
            }),
            TreeError::NoChecksum { what } => FetchError::NoChecksum { url: what },
            TreeError::Verify { what, source } => FetchError::Verify { url: what, source },
            TreeError::Mode(m) => FetchError::Mode(m),
        }
    }
}

impl FetchError {
    /// Worth another attempt: network trouble, timeouts, 5xx, 408, 429.
    fn retryable(&self) -> bool {
        match self {
            FetchError::Http(e) => match e.kind {
                HttpErrorKind::Status(status) => runtime::http::retry::retryable_status(status),
                HttpErrorKind::TooLarge(_)
                | HttpErrorKind::InvalidUrl
                | HttpErrorKind::Client
                | HttpErrorKind::Redirect(_) => false,
                HttpErrorKind::Connect
                | HttpErrorKind::ConnectTimeout
                | HttpErrorKind::Timeout
                | HttpErrorKind::Transport => true,
            },
            FetchError::Stalled { .. } | FetchError::TimedOut { .. } => true,
            _ => false,
        }
    }
}

/// The shared HTTP client and per-host connection limits of a run.
#[derive(Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    http: HttpConfig,
    hosts: HostLimits,
    cancel: tokio_util::sync::CancellationToken,
}

/// The URL of `path` (relative, `/`-separated) under repository `base`,
/// each segment percent-encoded as needed (`runtime::http::join`).
pub fn url_for(base: &Url, path: &str) -> Result<Url, FetchError> {
    Ok(runtime::http::join(base, path)?)
}

impl Fetcher {
    /// A fetcher with the given timeouts, per-host limit (0 = unlimited)
    /// and redirect rules (each mirror's URL and `redirect_hosts`).
    pub fn new(
        http: HttpConfig,
        max_conns: usize,
        redirects: RedirectRules,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Result<Fetcher, FetchError> {
        let mut options = runtime::http::ClientOptions::new(
            concat!("apt-mirror/", env!("CARGO_PKG_VERSION")),
            http.connect_timeout,
        );
        options.redirects = redirects;
        let client = runtime::http::build_client(&options)?;
        Ok(Fetcher {
            client,
            http,
            hosts: HostLimits::new(max_conns),
            cancel,
        })
    }

    /// Runs `attempt` with the host limit, the overall cap and retries.
    async fn with_retries<T, F, Fut>(&self, url: &Url, mut attempt: F) -> Result<T, FetchError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, FetchError>>,
    {
        let limit = self.hosts.for_url(url);
        let policy = RetryPolicy {
            retries: self.http.retries,
            delay: self.http.retry_delay,
        };
        let mut tries = 0u32;
        loop {
            if self.cancel.is_cancelled() {
                return Err(FetchError::Cancelled);
            }
            let result = {
                let _permit = match &limit {
                    Some(s) => Some(s.acquire().await.map_err(|_| FetchError::Cancelled)?),
                    None => None,
                };
                tokio::select! {
                    _ = self.cancel.cancelled() => Err(FetchError::Cancelled),
                    r = tokio::time::timeout(self.http.download_timeout, attempt()) => match r {
                        Ok(r) => r,
                        Err(_) => Err(FetchError::TimedOut {
                            url: url.to_string(),
                            secs: self.http.download_timeout.as_secs_f64(),
                        }),
                    },
                }
            };
            let delay = match &result {
                Err(e) if e.retryable() => policy.delay_before(tries),
                _ => None,
            };
            match (result, delay) {
                (Err(e), Some(delay)) => {
                    tracing::warn!(url = %url, error = %e, retry_in_ms = delay.as_millis() as u64, "retrying");
                    tries += 1;
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Err(FetchError::Cancelled),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                (other, _) => return other,
            }
        }
    }

    /// Sends a GET; `Ok(None)` for 404 and 410. Connecting is bounded by
    /// the client's connect timeout, the wait for the headers after it by
    /// the read timeout (so a hanging connect is reported as one, even when
    /// the read timeout is the shorter).
    async fn send(&self, url: &Url) -> Result<Option<reqwest::Response>, FetchError> {
        let req = self.client.get(url.clone()).send();
        let limit = self
            .http
            .connect_timeout
            .saturating_add(self.http.read_timeout);
        let resp = match tokio::time::timeout(limit, req).await {
            Err(_) => {
                return Err(FetchError::Stalled {
                    url: url.to_string(),
                    secs: limit.as_secs_f64(),
                })
            }
            Ok(Err(e)) => return Err(HttpError::from_reqwest(url, &e).into()),
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        if status == 404 || status == 410 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(HttpError::status(url, status).into());
        }
        Ok(Some(resp))
    }

    /// The next body chunk, within the read timeout.
    async fn chunk(
        &self,
        url: &Url,
        resp: &mut reqwest::Response,
    ) -> Result<Option<bytes::Bytes>, FetchError> {
        match tokio::time::timeout(self.http.read_timeout, resp.chunk()).await {
            Err(_) => Err(FetchError::Stalled {
                url: url.to_string(),
                secs: self.http.read_timeout.as_secs_f64(),
            }),
            Ok(Err(e)) => Err(HttpError::from_reqwest(url, &e).into()),
            Ok(Ok(c)) => Ok(c),
        }
    }

    /// Fetches a small file into memory (at most `limit` bytes); `Ok(None)`
    /// when the upstream does not have it (404/410).
    pub async fn get(&self, url: &Url, limit: u64) -> Result<Option<Vec<u8>>, FetchError> {
        self.with_retries(url, || async {
            let Some(mut resp) = self.send(url).await? else {
                return Ok(None);
            };
            let mut body = Vec::new();
            while let Some(c) = self.chunk(url, &mut resp).await? {
                if body.len() as u64 + c.len() as u64 > limit {
                    return Err(HttpError::too_large(url, limit).into());
                }
                body.extend_from_slice(&c);
            }
            Ok(Some(body))
        })
        .await
    }

    /// Downloads `url` to `dest`, verifying it against `expected` while it
    /// streams (the body may not exceed `expected.size`). The file is written
    /// in `tmp_dir` (same file system; default: `dest`'s directory) and
    /// renamed to `dest` only once verified. `Ok(None)` when the upstream does not have it (404/410);
    /// otherwise the number of bytes written.
    pub async fn download(
        &self,
        url: &Url,
        dest: &Path,
        tmp_dir: Option<&Path>,
        expected: &Checksums,
        progress: &Progress,
    ) -> Result<Option<u64>, FetchError> {
        if expected.strongest().is_none() {
            return Err(FetchError::NoChecksum {
                url: url.to_string(),
            });
        }
        let dir = dest.parent().unwrap_or(Path::new("."));
        let io = |source| FetchError::Io {
            path: dest.to_path_buf(),
            source,
        };
        aptindex::fsmode::create_dir_all(dir).map_err(io)?;
        let tmp_dir = tmp_dir.unwrap_or(dir);
        self.with_retries(url, || async {
            let Some(mut resp) = self.send(url).await? else {
                return Ok(None);
            };
            if let Some(len) = resp.content_length() {
                if len > expected.size {
                    return Err(HttpError::too_large(url, expected.size).into());
                }
            }
            // Hashed while it streams into a temporary file; renamed to
            // `dest` only once verified (aptindex::tree::StagedFile).
            let mut file = StagedFile::for_expected(tmp_dir, expected, url.as_str())?;
            while let Some(c) = self.chunk(url, &mut resp).await? {
                file.write(&c)?;
                progress.add_bytes(c.len() as u64);
            }
            let written = file.written();
            file.finish(expected)?.persist(dest)?;
            Ok(Some(written))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding() {
        let base = Url::parse("http://h:8080/debian/").unwrap();
        assert_eq!(
            url_for(&base, "pool/main/g/g++/g++_1:2~3%4 x.deb")
                .unwrap()
                .as_str(),
            "http://h:8080/debian/pool/main/g/g++/g++_1:2~3%254%20x.deb"
        );
        let base = Url::parse("http://h").unwrap();
        assert_eq!(
            url_for(&base, "dists/s/Release").unwrap().as_str(),
            "http://h/dists/s/Release"
        );
    }
}
