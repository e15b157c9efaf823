//! The upstream loop of one download: ask each URL in turn (the next one
//! only after a 404; the upstream client asks each URL on the mapping's
//! upstreams in turn, the next after a connect failure or 5xx:
//! `crate::failover`), then stream the body into the temporary file
//! through [`aptindex::tree::StagedFile`] (hashed, under the expected size
//! as a cap, written straight to the file its readers share), publishing
//! progress to the readers; then verify and commit ([`super::commit`]).

use super::commit::{keep, verify_failed, Commit};
use super::diskfull;
use super::error::{DownloadError, LocalError, RefusedError, VerifyError};
use super::portal::{self, HtmlAnswer};
use super::progress::{DownloadState, Head, InFlightMap, UpstreamNote, PUBLISH_EVERY};
use crate::mapped;
use crate::metrics::Metrics;
use crate::upstream::Upstream;
use aptindex::checksum::{Checksums, Hasher};
use aptindex::tree::{StagedFile, TreeError};
use reqwest::Url;
use runtime::http::{HttpError, HttpErrorKind};
use std::sync::Arc;
use std::time::Instant;
use tempfile::TempPath;
use tokio::sync::watch;

/// One download, run by the task [`super::coalesce::InFlight::start`] spawns.
pub(super) struct Task {
    pub(super) file: Arc<std::fs::File>,
    pub(super) temp: TempPath,
    pub(super) tx: watch::Sender<DownloadState>,
    pub(super) urls: Vec<Url>,
    pub(super) expected: Option<Checksums>,
    pub(super) what: String,
    pub(super) commit: Commit,
    pub(super) unverified_cap: u64,
    pub(super) room: Option<Arc<super::Storage>>,
}

impl Task {
    pub(super) async fn run(
        self,
        upstream: &Upstream,
        metrics: &Metrics,
    ) -> Result<(), DownloadError> {
        let started = Instant::now();
        let mut last_err = None;
        let mut resp = None;
        let mut negative = false;
        let mut tried = None;
        for url in &self.urls {
            tried = Some(url);
            // A remembered failure is answered without asking upstream
            // (the upstream client counts the requests it sends, and fails
            // over to the mapping's next upstream URL: failover.rs).
            negative = upstream.is_negative(url);
            match upstream.get(url).await {
                Ok(r) => {
                    resp = Some(r);
                    break;
                }
                Err(e) => {
                    let next = e.is_not_found();
                    last_err = Some(e);
                    if !next {
                        break;
                    }
                }
            }
        }
        let note = UpstreamNote {
            status: match (&resp, &last_err) {
                (Some(r), _) => Some(r.status()),
                (None, Some(e)) => e.status_code(),
                (None, None) => None,
            },
            ms: started.elapsed().as_millis() as u64,
            negative: resp.is_none() && negative,
        };
        self.tx.send_modify(|p| p.upstream = Some(note));
        let Some(mut resp) = resp else {
            let e = last_err
                .unwrap_or_else(|| HttpError::new(&*self.what, HttpErrorKind::Connect, "no URL"));
            let url = tried.map(|u| u.as_str()).unwrap_or("-");
            let status = e.status_code();
            let not_found = e.is_not_found();
            // A 404 is counted (upstream_errors) but is no "recent failure":
            // clients ask for files that may not exist, and those must not
            // push a real failure out of the list.
            if !negative && !not_found {
                metrics.failure(url, &e.to_string());
            }
            if negative {
                tracing::debug!(what = %self.what, url, error = %e, "upstream failure remembered (negative cache)");
            } else if not_found {
                // Clients ask for files that may not exist (Translation-*): not alarming.
                tracing::info!(what = %self.what, url, status, error = %e, "not found upstream");
            } else {
                tracing::warn!(what = %self.what, url, status, error = %e, "upstream failed");
            }
            return Err(e.into());
        };
        let url = resp.url().to_string();
        if let (Some(exp), Some(cl)) = (&self.expected, resp.content_length()) {
            if exp.size != cl {
                let e = VerifyError::Announced {
                    what: self.what.clone(),
                    expected: exp.size,
                    announced: cl,
                };
                tracing::warn!(what = %self.what, url = %url, expected = exp.size, actual = cl, "verification failed: size");
                metrics.verification_failure(&url, &e.to_string());
                return Err(e.into());
            }
        }
        let mut commit = self.commit;
        // A captive portal: an HTML page for a package or an index. A file
        // with digests to match needs no such guess: verification decides.
        let html_type =
            self.expected.is_none() && resp.content_type().is_some_and(portal::is_html_type);
        if let Some(refused) = html(&self.what, &url, html_type, &mut commit, metrics) {
            return Err(refused.into());
        }
        if self.expected.is_none() {
            if let Some(cl) = resp.content_length().filter(|&cl| cl > self.unverified_cap) {
                return Err(too_large(&self.what, &url, self.unverified_cap, cl, metrics).into());
            }
        }
        let head = Head {
            length: self
                .expected
                .as_ref()
                .map(|e| e.size)
                .or(resp.content_length()),
            last_modified: resp.last_modified(),
            verified: self.expected.is_some(),
        };
        // A large download of known length is mapped for its readers.
        let presized = match head.length {
            Some(len) if (mapped::MIN_MAPPED..=mapped::MAX_DOWNLOAD_MAPPED).contains(&len) => {
                let file = self.file.clone();
                // SAFETY: this task's own temporary file, still empty; below
                // it is only written sequentially, never truncated (on
                // failure it is unlinked), and readers slice only what
                // `written` says is written.
                #[allow(unsafe_code)]
                let mapped = tokio::task::spawn_blocking(move || unsafe {
                    mapped::map_download(&file, len)
                })
                .await
                .map_err(|source| LocalError::Map {
                    what: self.what.clone(),
                    source,
                })?;
                match mapped {
                    Ok(Some(map)) => {
                        self.tx.send_modify(|p| p.map = Some(InFlightMap(map)));
                        Some(len)
                    }
                    Ok(None) => None,
                    Err(e) => {
                        tracing::debug!(what = %self.what, error = %e, "download not mapped; its readers read the file");
                        None
                    }
                }
            }
            _ => None,
        };
        let length = head.length;
        self.tx.send_modify(|p| p.head = Some(head));
        let hasher = match &self.expected {
            Some(e) => Hasher::for_expected(e),
            None => Hasher::new(&[]),
        };
        // A file no index lists is capped at max_unverified_size.
        let limit = self
            .expected
            .as_ref()
            .map_or(self.unverified_cap, |e| e.size);
        let temp_path = self.temp.to_path_buf();
        // Unbuffered: each chunk is one write to the file the readers share.
        let mut staged = StagedFile::shared(self.file, self.temp, limit, hasher, &self.what);
        let mut disk_full_retries = 0u32;
        let mut sniffed = false;
        let mut written = 0u64;
        let mut published = 0u64;
        let mut published_at = Instant::now();
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(what = %self.what, url = %url, received = written, error = %e, "upstream failed during the body");
                    if let Ok(u) = reqwest::Url::parse(&url) {
                        metrics.upstream_error(&u);
                    }
                    metrics.failure(&url, &e.to_string());
                    return Err(e.into());
                }
            };
            if !sniffed && !chunk.is_empty() && self.expected.is_none() {
                sniffed = true;
                if portal::looks_like_html(&chunk) {
                    if let Some(refused) = html(&self.what, &url, true, &mut commit, metrics) {
                        return Err(refused.into());
                    }
                }
            }
            // Page-cache writes are short; a blocking write here keeps the code simple.
            let mut chunk = chunk;
            let result = loop {
                let before = staged.written();
                let result = staged.write(&chunk);
                let Some(e) = result.as_ref().err().and_then(diskfull::of_tree) else {
                    break result;
                };
                // A full file system: say so, evict, write the rest again.
                diskfull::record(metrics, &self.what, &temp_path, e);
                let done = usize::try_from(staged.written() - before).unwrap_or(usize::MAX);
                chunk = chunk.slice(done.min(chunk.len())..);
                let need = diskfull::room_needed(length, staged.written());
                // A download no index lists never evicts a verified file.
                let evictable = super::storage::Evictable::for_download(self.expected.as_ref());
                let freed = match &self.room {
                    Some(room) if disk_full_retries < diskfull::RETRIES => {
                        let room = room.clone();
                        tokio::task::spawn_blocking(move || room.make_room(need, evictable))
                            .await
                            .unwrap_or(0)
                    }
                    _ => 0,
                };
                disk_full_retries += 1;
                if freed == 0 {
                    break result;
                }
            };
            match result {
                Ok(()) => {}
                Err(TreeError::TooLarge { limit: l, .. }) if self.expected.is_none() => {
                    let at_least = written + chunk.len() as u64;
                    return Err(too_large(&self.what, &url, l, at_least, metrics).into());
                }
                Err(TreeError::Io { path, source }) if diskfull::is_disk_full(&source) => {
                    tracing::warn!(what = %self.what, url = %url, path = %path.display(), "file system full and nothing left to evict: download aborted");
                    return Err(LocalError::DiskFull {
                        what: self.what.clone(),
                        path,
                        source,
                    }
                    .into());
                }
                Err(TreeError::TooLarge { limit: l, .. }) => {
                    let actual = written + chunk.len() as u64;
                    tracing::warn!(what = %self.what, url = %url, expected = l, actual_at_least = actual, "verification failed: upstream sent more bytes than expected");
                    let e = VerifyError::TooLong {
                        what: self.what.clone(),
                        expected: l,
                        actual,
                    };
                    metrics.verification_failure(&url, &e.to_string());
                    return Err(e.into());
                }
                Err(e) => return Err(LocalError::staged(&self.what, e).into()),
            }
            written = staged.written();
            if published == 0
                || written - published >= PUBLISH_EVERY
                || published_at.elapsed().as_millis() >= 20
            {
                self.tx.send_modify(|p| p.written = written);
                published = written;
                published_at = Instant::now();
            }
        }
        drop(resp); // frees the upstream connection slot
        if let Some(len) = presized.filter(|&len| len != written) {
            // The file was extended to the announced length: anything else is
            // a short (or, without an expectation, unverifiable) download.
            tracing::warn!(what = %self.what, url = %url, announced = len, received = written, "upstream sent fewer bytes than announced");
            return Err(DownloadError::Upstream(HttpError::new(
                url,
                HttpErrorKind::Transport,
                format!("upstream sent {written} of the {len} bytes it announced"),
            )));
        }
        self.tx.send_modify(|p| p.written = written);
        let finished = match &self.expected {
            Some(exp) => staged.finish(exp),
            // No index names it: nothing to verify against.
            None => staged.finish_unverified(),
        };
        let file = match finished {
            Ok(file) => file,
            Err(TreeError::Verify { source, .. }) => {
                return Err(verify_failed(&self.what, &url, source, metrics).into())
            }
            Err(e) => return Err(LocalError::staged(&self.what, e).into()),
        };
        // Verified (or nothing to verify): keeping the file (sync, rename)
        // happens before the download leaves the in-flight table.
        keep(commit, file, &self.tx, &self.what, written).await;
        tracing::debug!(what = %self.what, url = %url, bytes = written, ms = started.elapsed().as_millis() as u64, "downloaded");
        Ok(())
    }
}

/// `what`, a file no index lists, larger than `max_unverified_size`
/// (`limit`): logged, remembered among the failures.
fn too_large(what: &str, url: &str, limit: u64, at_least: u64, metrics: &Metrics) -> RefusedError {
    tracing::warn!(what = %what, url = %url, limit, at_least, "no index lists this file and it is larger than max_unverified_size: download aborted, not cached");
    let e = RefusedError::TooLarge {
        what: what.to_string(),
        url: url.to_string(),
        limit,
    };
    metrics.failure(url, &e.to_string());
    e
}

/// An answer that is HTML (`html`, by its type or first bytes): for a
/// package or an index refused (the error to return); for another file
/// passed through, not cached (`commit` becomes a discard).
fn html(
    what: &str,
    url: &str,
    html: bool,
    commit: &mut Commit,
    metrics: &Metrics,
) -> Option<RefusedError> {
    match portal::html_answer(what, html) {
        HtmlAnswer::Fine => None,
        HtmlAnswer::Refuse => {
            tracing::warn!(what = %what, url = %url, "upstream answered an HTML page (a captive portal?) for a package or index: refused, not cached");
            let e = RefusedError::Html {
                what: what.to_string(),
                url: url.to_string(),
            };
            metrics.failure(url, &e.to_string());
            Some(e)
        }
        HtmlAnswer::PassUncached => {
            if !matches!(commit, Commit::Discard) {
                tracing::warn!(what = %what, url = %url, "upstream answered an HTML page: passed through, not cached");
            }
            *commit = Commit::Discard;
            None
        }
    }
}
