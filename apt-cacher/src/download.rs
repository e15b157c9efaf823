//! Coalesced, verified, streaming downloads. There is at most one upstream
//! download per key: it writes to a temporary file and publishes its
//! progress (bytes written, then success or failure) through a
//! `tokio::sync::watch` channel; every client of that key — the first and
//! any that join later — reads the temporary file from its own offset,
//! following the progress, so all of them stream as bytes arrive.
//!
//! Verification happens while streaming. When an expected size and hashes
//! are known, readers never get the last byte before the whole file has
//! verified: a client can therefore never receive a complete, successful
//! response of bytes that failed verification. On failure every reader's
//! body ends in an error (the connection is aborted) and nothing is
//! published. On success the job's `commit` step moves the synced file
//! into place (cache or metadata generation) before success is announced.
//!
//! A large download whose length is known is memory-mapped while in flight
//! ([`mapped::map_download`]): its readers send slices of the map (no copy
//! out of the file per reader), which is what lets one download feed
//! hundreds of concurrent clients. Others read the temporary file.
//!
//! A finished file (a cache hit) is served through the same reader as a
//! download that is already complete; it reads its next chunk on the
//! blocking pool while hyper sends the previous one, into buffers it reuses,
//! as far as the shared memory budget (`READ_BUDGET`) allows.

use crate::mapped;
use crate::metrics::Metrics;
use crate::upstream::{Upstream, UpstreamError};
use aptindex::checksum::{Checksums, Hasher};
use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use reqwest::Url;
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tempfile::TempPath;
use tokio::sync::watch;

/// Memory the body chunks of all responses together should stay within:
/// each body gets `READ_BUDGET / active bodies`, in chunks clamped to
/// `MIN_CHUNK..=MAX_CHUNK` (large chunks are fast; many clients get small ones).
const READ_BUDGET: u64 = 16 << 20;
const MIN_CHUNK: u64 = 32 * 1024;
const MAX_CHUNK: u64 = 1 << 20;
/// Buffers a body reading ahead keeps: the chunk hyper is writing, the one
/// being read, and one to reuse.
const AHEAD_BUFFERS: u64 = 3;

/// Number of response bodies currently streaming.
static ACTIVE_BODIES: AtomicUsize = AtomicUsize::new(0);

/// Counts one streaming body while alive.
struct BodyGuard;
impl BodyGuard {
    fn new() -> BodyGuard {
        ACTIVE_BODIES.fetch_add(1, Ordering::Relaxed);
        BodyGuard
    }
    /// The chunk size, and whether a body may read its next chunk while the
    /// previous one is being sent (only when its share of the budget holds
    /// `AHEAD_BUFFERS` chunks of at least `MIN_CHUNK`).
    fn plan() -> (u64, bool) {
        let active = ACTIVE_BODIES.load(Ordering::Relaxed).max(1) as u64;
        let share = READ_BUDGET / active;
        if share >= AHEAD_BUFFERS * MIN_CHUNK {
            ((share / AHEAD_BUFFERS).min(MAX_CHUNK), true)
        } else {
            (share.clamp(MIN_CHUNK, MAX_CHUNK), false)
        }
    }
}
impl Drop for BodyGuard {
    fn drop(&mut self) {
        ACTIVE_BODIES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The chunk buffers of one body, reused once hyper has sent and dropped
/// them: no fresh allocation, page faults or zero-filling per chunk.
#[derive(Default)]
struct Buffers(Vec<Bytes>);

impl Buffers {
    /// A buffer of `n` bytes (contents unspecified).
    fn take(&mut self, n: usize) -> BytesMut {
        let mut i = 0;
        while i < self.0.len() {
            if self.0[i].is_unique() {
                let b = self.0.swap_remove(i);
                match b.try_into_mut() {
                    // Reuse it unless it is much bigger than chunks are now.
                    Ok(mut m) if m.capacity() <= 2 * n => {
                        m.resize(n, 0);
                        return m;
                    }
                    _ => continue,
                }
            }
            i += 1;
        }
        BytesMut::zeroed(n)
    }

    /// Remembers `b` (a clone of a chunk handed to hyper) for reuse, and at
    /// most `keep - 1` older ones: a body that does not read ahead keeps
    /// only the chunk hyper is sending, so it never holds more than the two
    /// chunks it held without reuse (with 1,000 clients this matters).
    fn keep(&mut self, b: &Bytes, keep: usize) {
        while self.0.len() >= keep.max(1) {
            self.0.remove(0);
        }
        self.0.push(b.clone());
    }
}

/// Reads `buf.len()` bytes at `pos`.
fn read_chunk(file: &std::fs::File, pos: u64, mut buf: BytesMut) -> std::io::Result<BytesMut> {
    file.read_exact_at(&mut buf, pos).map(|()| buf)
}

/// Progress is published at least every this many bytes.
const PUBLISH_EVERY: u64 = 64 * 1024;

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// Upstream failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The bytes did not verify.
    #[error("verification failed: {0}")]
    Verify(String),
    /// Local I/O or publishing failed.
    #[error("{0}")]
    Local(String),
}

/// What clients learn once upstream has answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The length to announce, if known (the expected size when verifying).
    pub length: Option<u64>,
    /// `Last-Modified` to announce.
    pub last_modified: Option<String>,
    /// True when the bytes are being verified (the last byte is held back).
    pub verified: bool,
}

/// What upstream did for a download (for the access log).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpstreamNote {
    /// The status upstream answered, when it answered one.
    pub status: Option<u16>,
    /// Milliseconds until upstream's response headers (or its failure).
    pub ms: u64,
    /// True when the failure was answered from the negative cache, without asking.
    pub negative: bool,
}

/// The status an upstream failure carries, if any.
pub fn status_of(e: &UpstreamError) -> Option<u16> {
    match e {
        UpstreamError::NotFound { status, .. } | UpstreamError::Status { status, .. } => {
            Some(*status)
        }
        _ => None,
    }
}

/// The state of one download as its readers see it.
#[derive(Debug, Clone)]
struct Progress {
    written: u64,
    /// The whole (pre-sized) temporary file mapped, for large downloads of
    /// known length: readers slice the bytes already written out of it.
    map: Option<InFlightMap>,
    head: Option<Head>,
    upstream: Option<UpstreamNote>,
    outcome: Option<Result<(), Arc<DownloadError>>>,
}

/// The map of a download in flight ([`Progress::map`]); its `Debug` shows
/// only the length (never the bytes, which may not be written yet).
#[derive(Clone)]
struct InFlightMap(Bytes);

impl std::fmt::Debug for InFlightMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InFlightMap({} bytes)", self.0.len())
    }
}

/// How far a reader at `pos` of a download still in flight may send: what
/// is written, except the last byte of a file that must verify first; and
/// once every byte is in, nothing more until the (imminent) verdict, so the
/// rest goes out in one piece rather than all but one byte now and one
/// later.
fn sendable(p: &Progress, pos: u64) -> u64 {
    match &p.head {
        Some(Head {
            length: Some(len),
            verified: true,
            ..
        }) => {
            let last = len.saturating_sub(1);
            if p.written >= *len {
                pos.min(last)
            } else {
                p.written.min(last)
            }
        }
        _ => p.written,
    }
}

/// Moves a verified, synced temporary file into place. Gets the computed checksums.
pub type Commit =
    Box<dyn FnOnce(TempPath, Checksums) -> BoxFuture<'static, Result<(), String>> + Send>;

/// A download to start (or join).
pub struct Job {
    /// The coalescing key.
    pub key: String,
    /// URLs to try in order (the next one only after a 404).
    pub urls: Vec<Url>,
    /// Expected size and hashes, if known.
    pub expected: Option<Checksums>,
    /// Human-readable name for logs (mapping and path).
    pub what: String,
    /// A fresh temporary file and its path.
    pub temp: (std::fs::File, TempPath),
    /// Publishes the verified file; `None` discards it (pass-through).
    pub commit: Option<Commit>,
    /// Run `commit` before clients are told the download succeeded (for
    /// metadata, whose commit makes what it lists known); otherwise clients
    /// complete first and the file is synced and committed afterwards.
    pub commit_first: bool,
}

/// A file being downloaded or already complete, readable by any number of clients.
#[derive(Debug)]
pub struct Source {
    file: Arc<std::fs::File>,
    rx: watch::Receiver<Progress>,
    /// True for a download in flight: its bytes were just written and sit in
    /// the page cache, so reading them cannot block on the disk and is done
    /// inline; complete files are read on the blocking pool.
    hot: bool,
}

impl Source {
    /// A complete file (a cache hit).
    pub fn complete(file: std::fs::File, last_modified: Option<String>) -> std::io::Result<Source> {
        let len = file.metadata()?.len();
        let progress = Progress {
            written: len,
            map: None,
            head: Some(Head {
                length: Some(len),
                last_modified,
                verified: false,
            }),
            upstream: None,
            outcome: Some(Ok(())),
        };
        let (_tx, rx) = watch::channel(progress);
        Ok(Source {
            file: Arc::new(file),
            rx,
            hot: false,
        })
    }

    /// Waits until upstream has answered; the error if the download failed first.
    pub async fn head(&self) -> Result<Head, Arc<DownloadError>> {
        let mut rx = self.rx.clone();
        loop {
            {
                let p = rx.borrow_and_update();
                if let Some(Err(e)) = &p.outcome {
                    return Err(e.clone());
                }
                if let Some(h) = &p.head {
                    return Ok(h.clone());
                }
            }
            if rx.changed().await.is_err() {
                return Err(Arc::new(DownloadError::Local("download task ended".into())));
            }
        }
    }

    /// Waits until the download has finished; its outcome.
    pub async fn finished(&self) -> Result<(), Arc<DownloadError>> {
        let mut rx = self.rx.clone();
        loop {
            if let Some(outcome) = &rx.borrow_and_update().outcome {
                return outcome.clone();
            }
            if rx.changed().await.is_err() {
                return Err(Arc::new(DownloadError::Local("download task ended".into())));
            }
        }
    }

    /// What upstream did, once it has answered (`None` for a complete file).
    pub fn upstream_note(&self) -> Option<UpstreamNote> {
        self.rx.borrow().upstream
    }

    /// Waits, at most `max`, until the body has bytes to send or the
    /// download has ended, so that the response header and the first bytes
    /// leave together (a small file: header and whole body in one write).
    /// The error if the download failed by then: the client can get an
    /// error status instead of a broken-off body.
    pub async fn settle(&self, max: std::time::Duration) -> Result<(), Arc<DownloadError>> {
        let mut rx = self.rx.clone();
        let settled = tokio::time::timeout(max, async {
            loop {
                {
                    let p = rx.borrow_and_update();
                    match &p.outcome {
                        Some(Err(e)) => return Err(e.clone()),
                        Some(Ok(())) => return Ok(()),
                        None if sendable(&p, 0) > 0 => return Ok(()),
                        None => {}
                    }
                }
                if rx.changed().await.is_err() {
                    return Ok(());
                }
            }
        })
        .await;
        settled.unwrap_or(Ok(()))
    }

    /// True when the download has finished successfully.
    pub fn is_complete(&self) -> bool {
        matches!(self.rx.borrow().outcome, Some(Ok(())))
    }

    /// The body bytes `start..end` (`end` = `None`: to the end of the file),
    /// as they become available. Ends with an error if the download fails.
    pub fn body(
        &self,
        start: u64,
        end: Option<u64>,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        struct St {
            file: Arc<std::fs::File>,
            rx: watch::Receiver<Progress>,
            pos: u64,
            end: Option<u64>,
            done: bool,
            hot: bool,
            bufs: Buffers,
            /// A read of the next chunk (`pos..pos + n`) already under way.
            ahead: Option<(u64, tokio::task::JoinHandle<std::io::Result<BytesMut>>)>,
            /// A download that has finished (verified, never written again)
            /// is sent from a shared memory map from then on, when it is
            /// large and in the page cache: `None` = not tried yet.
            mapped: Option<Option<Bytes>>,
            _guard: BodyGuard,
        }
        impl St {
            /// Starts reading `n` bytes at `pos` on the blocking pool.
            fn spawn_read(&mut self, n: u64) -> tokio::task::JoinHandle<std::io::Result<BytesMut>> {
                let (file, pos, buf) = (self.file.clone(), self.pos, self.bufs.take(n as usize));
                tokio::task::spawn_blocking(move || read_chunk(&file, pos, buf))
            }
            /// Hands out a chunk of `n` bytes just read; if the source is
            /// complete and its share of the budget allows, starts reading
            /// the next chunk while this one is sent.
            fn deliver(
                &mut self,
                read: std::io::Result<BytesMut>,
                n: u64,
                avail: u64,
                read_ahead: bool,
            ) -> std::io::Result<Bytes> {
                let buf = match read {
                    Ok(b) => b.freeze(),
                    Err(e) => {
                        self.done = true;
                        return Err(e);
                    }
                };
                self.pos += n;
                let (chunk, ahead) = BodyGuard::plan();
                let ahead = ahead && read_ahead && !self.hot;
                self.bufs
                    .keep(&buf, if ahead { AHEAD_BUFFERS as usize } else { 1 });
                let limit = self.end.map_or(avail, |e| e.min(avail));
                if ahead && self.pos < limit {
                    let n = (limit - self.pos).min(chunk);
                    self.ahead = Some((n, self.spawn_read(n)));
                }
                Ok(buf)
            }
        }
        let st = St {
            file: self.file.clone(),
            rx: self.rx.clone(),
            pos: start,
            end,
            done: false,
            hot: self.hot,
            bufs: Buffers::default(),
            ahead: None,
            mapped: None,
            _guard: BodyGuard::new(),
        };
        futures_util::stream::unfold(st, |mut st| async move {
            if st.done {
                return None;
            }
            if let Some((n, handle)) = st.ahead.take() {
                // Only complete sources read ahead: everything is available.
                let read = handle
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                let avail = st.rx.borrow().written;
                let out = st.deliver(read, n, avail, true);
                return Some((out, st));
            }
            loop {
                let (avail, complete, map) = {
                    let p = st.rx.borrow_and_update();
                    match &p.outcome {
                        Some(Err(e)) => {
                            let err = std::io::Error::other(e.to_string());
                            drop(p);
                            st.done = true;
                            return Some((Err(err), st));
                        }
                        Some(Ok(())) => (p.written, true, p.map.clone()),
                        None => (sendable(&p, st.pos), false, p.map.clone()),
                    }
                };
                let limit = st.end.map_or(avail, |e| e.min(avail));
                if let Some(InFlightMap(m)) = map {
                    // A download mapped in flight: slice what is written,
                    // a frame at a time, if its pages are in memory.
                    let from = usize::try_from(st.pos).unwrap_or(usize::MAX);
                    let to = usize::try_from(limit)
                        .unwrap_or(usize::MAX)
                        .min(m.len())
                        .min(from.saturating_add(mapped::FRAME));
                    if from < to && mapped::resident_range(&m, from, to) {
                        st.pos += (to - from) as u64;
                        return Some((Ok(m.slice(from..to)), st));
                    }
                } else if complete && st.hot && st.mapped.is_none() {
                    st.mapped = Some(if avail >= mapped::MIN_MAPPED && limit > st.pos {
                        // SAFETY: a finished download: never written again
                        // (kept by rename, or unlinked).
                        #[allow(unsafe_code)]
                        let m = unsafe { mapped::map(&st.file) };
                        m.ok().flatten()
                    } else {
                        None
                    });
                }
                if let Some(Some(m)) = &st.mapped {
                    let from = usize::try_from(st.pos).unwrap_or(usize::MAX);
                    let to = usize::try_from(limit)
                        .unwrap_or(usize::MAX)
                        .min(m.len())
                        .min(from.saturating_add(mapped::FRAME));
                    if from < to {
                        let chunk = m.slice(from..to);
                        st.pos += chunk.len() as u64;
                        return Some((Ok(chunk), st));
                    }
                }
                if st.pos < limit {
                    let n = (limit - st.pos).min(BodyGuard::plan().0);
                    let read = if st.hot {
                        read_chunk(&st.file, st.pos, st.bufs.take(n as usize))
                    } else {
                        st.spawn_read(n)
                            .await
                            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
                    };
                    let out = st.deliver(read, n, avail, complete);
                    return Some((out, st));
                }
                if complete || st.end.is_some_and(|e| st.pos >= e) {
                    return None;
                }
                if st.rx.changed().await.is_err() {
                    st.done = true;
                    return Some((Err(std::io::Error::other("download task ended")), st));
                }
            }
        })
    }
}

/// The table of downloads in flight.
#[derive(Debug)]
pub struct Downloads {
    upstream: Arc<Upstream>,
    metrics: Arc<Metrics>,
    inflight: Mutex<HashMap<String, Arc<Source>>>,
}

impl Downloads {
    /// An empty table using `upstream`, counting into `metrics`.
    pub fn new(upstream: Arc<Upstream>, metrics: Arc<Metrics>) -> Downloads {
        Downloads {
            upstream,
            metrics,
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// The upstream client.
    pub fn upstream(&self) -> &Arc<Upstream> {
        &self.upstream
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Source>>> {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The download in flight for `key`, if any.
    pub fn joinable(&self, key: &str) -> Option<Arc<Source>> {
        self.lock().get(key).cloned()
    }

    /// Number of downloads in flight.
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }

    /// Joins the download of `job.key` if one is in flight, otherwise starts
    /// `job`. Returns the source and whether it was joined (coalesced).
    pub fn start(self: &Arc<Self>, job: Job) -> (Arc<Source>, bool) {
        let mut map = self.lock();
        if let Some(s) = map.get(&job.key) {
            return (s.clone(), true);
        }
        let (file, temp) = job.temp;
        let file = Arc::new(file);
        let (tx, rx) = watch::channel(Progress {
            written: 0,
            map: None,
            head: None,
            upstream: None,
            outcome: None,
        });
        let source = Arc::new(Source {
            hot: true,
            file: file.clone(),
            rx,
        });
        map.insert(job.key.clone(), source.clone());
        drop(map);
        let this = self.clone();
        let key = job.key.clone();
        let task = Task {
            file,
            temp,
            tx,
            urls: job.urls,
            expected: job.expected,
            what: job.what,
            commit: job.commit,
            commit_first: job.commit_first,
        };
        let me = source.clone();
        tokio::spawn(async move {
            let tx = task.tx.clone();
            // Leaves the in-flight table however the task ends (even by a panic).
            let _leave = Leave {
                downloads: this.clone(),
                key,
                source: me,
            };
            let result = task.run(&this.upstream, &this.metrics).await;
            drop(_leave);
            tx.send_modify(|p| p.outcome = Some(result.map_err(Arc::new)));
        });
        (source, false)
    }
}

/// Removes a download from the in-flight table when dropped.
struct Leave {
    downloads: Arc<Downloads>,
    key: String,
    source: Arc<Source>,
}

impl Drop for Leave {
    fn drop(&mut self) {
        let mut map = self.downloads.lock();
        if map
            .get(&self.key)
            .is_some_and(|s| Arc::ptr_eq(s, &self.source))
        {
            map.remove(&self.key);
        }
    }
}

struct Task {
    file: Arc<std::fs::File>,
    temp: TempPath,
    tx: watch::Sender<Progress>,
    urls: Vec<Url>,
    expected: Option<Checksums>,
    what: String,
    commit: Option<Commit>,
    commit_first: bool,
}

impl Task {
    async fn run(self, upstream: &Upstream, metrics: &Metrics) -> Result<(), DownloadError> {
        let started = Instant::now();
        let mut last_err = None;
        let mut resp = None;
        let mut negative = false;
        let mut tried = None;
        for url in &self.urls {
            tried = Some(url);
            // A remembered failure is answered without asking upstream.
            negative = upstream.is_negative(url);
            if !negative {
                metrics.upstream_request(url);
            }
            match upstream.get(url).await {
                Ok(r) => {
                    resp = Some(r);
                    break;
                }
                Err(e) => {
                    if !negative {
                        metrics.upstream_error(url);
                    }
                    let next = matches!(e, UpstreamError::NotFound { .. });
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
                (None, Some(e)) => status_of(e),
                (None, None) => None,
            },
            ms: started.elapsed().as_millis() as u64,
            negative: resp.is_none() && negative,
        };
        self.tx.send_modify(|p| p.upstream = Some(note));
        let Some(mut resp) = resp else {
            let e = last_err.unwrap_or(UpstreamError::Connect {
                url: self.what.clone(),
                reason: "no URL".into(),
            });
            let url = tried.map(|u| u.as_str()).unwrap_or("-");
            let status = status_of(&e);
            let not_found = matches!(e, UpstreamError::NotFound { .. });
            // A 404 is counted (upstream_errors) but is no "recent failure":
            // clients ask for files that may not exist, and those must not
            // push a real failure out of the list.
            if !negative && !not_found {
                metrics.failure(url, &e.to_string());
            }
            if negative {
                tracing::debug!(what = %self.what, url, error = %e, "upstream failure remembered (negative cache)");
            } else if matches!(e, UpstreamError::NotFound { .. }) {
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
                let reason = format!(
                    "{}: size mismatch: expected {} bytes, upstream announces {cl}",
                    self.what, exp.size
                );
                tracing::warn!(what = %self.what, url = %url, expected = exp.size, actual = cl, "verification failed: size");
                metrics.verification_failure(&url, &reason);
                return Err(DownloadError::Verify(reason));
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
                .map_err(|e| {
                    DownloadError::Local(format!("mapping the download of {}: {e}", self.what))
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
        self.tx.send_modify(|p| p.head = Some(head));
        let mut hasher = match &self.expected {
            Some(e) => Hasher::for_expected(e),
            None => Hasher::new(&[]),
        };
        let limit = self.expected.as_ref().map(|e| e.size);
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
            if limit.is_some_and(|l| written + chunk.len() as u64 > l) {
                let l = limit.unwrap_or(0);
                let actual = written + chunk.len() as u64;
                tracing::warn!(what = %self.what, url = %url, expected = l, actual_at_least = actual, "verification failed: upstream sent more bytes than expected");
                let reason = format!(
                    "{}: more than the expected {l} bytes (at least {actual})",
                    self.what
                );
                metrics.verification_failure(&url, &reason);
                return Err(DownloadError::Verify(reason));
            }
            // Page-cache writes are short; a blocking write here keeps the code simple.
            (&*self.file).write_all(&chunk).map_err(|e| {
                DownloadError::Local(format!("writing temporary file for {}: {e}", self.what))
            })?;
            hasher.update(&chunk);
            written += chunk.len() as u64;
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
            return Err(DownloadError::Upstream(UpstreamError::Transport {
                url,
                reason: format!("upstream sent {written} of the {len} bytes it announced"),
            }));
        }
        self.tx.send_modify(|p| p.written = written);
        let actual = hasher.finish();
        if let Some(exp) = &self.expected {
            if let Err(e) = exp.verify(&self.what, &actual) {
                let (kind, expected, got) = match &e {
                    aptindex::checksum::ChecksumError::Hash {
                        kind,
                        expected,
                        actual,
                        ..
                    } => (format!("{kind:?}"), expected.clone(), actual.clone()),
                    aptindex::checksum::ChecksumError::Size {
                        expected, actual, ..
                    } => ("size".into(), expected.to_string(), actual.to_string()),
                    other => ("-".into(), String::new(), other.to_string()),
                };
                tracing::warn!(what = %self.what, url = %url, check = %kind, expected = %expected, actual = %got, "verification failed; not cached, clients aborted");
                metrics.verification_failure(&url, &e.to_string());
                return Err(DownloadError::Verify(e.to_string()));
            }
        }
        // Verified (or nothing to verify): unless the commit must come first,
        // clients may have every byte now; keeping the file (sync, rename)
        // happens off their critical path, before the download leaves the
        // in-flight table.
        if !self.commit_first {
            self.tx.send_modify(|p| p.outcome = Some(Ok(())));
        }
        let Some(commit) = self.commit else {
            return Ok(());
        };
        // Kept files are readable by others, like what apt-mirror publishes
        // (0644 minus the umask); the mode is synced with the data.
        let file = self.file.clone();
        let path = self.temp.to_path_buf();
        let synced = tokio::task::spawn_blocking(move || {
            aptindex::fsmode::publish_file(&file, &path).map_err(std::io::Error::other)?;
            file.sync_all()
        })
        .await;
        match synced {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(what = %self.what, error = %e, "cannot give the downloaded file its mode or sync it; not cached");
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(what = %self.what, error = %e, "cannot sync the downloaded file; not cached");
                return Ok(());
            }
        }
        // The bytes verified: clients get them even if keeping them fails.
        if let Err(e) = commit(self.temp, actual).await {
            tracing::warn!(what = %self.what, error = %e, "verified download could not be kept");
        }
        tracing::debug!(what = %self.what, url = %url, bytes = written, ms = started.elapsed().as_millis() as u64, "downloaded");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::TryStreamExt;

    /// A complete file read in chunks (reading ahead, reusing buffers)
    /// yields exactly the requested bytes, for whole files and ranges.
    #[tokio::test]
    async fn complete_file_bodies_are_exact() {
        let data: Vec<u8> = (0..(3 << 20) + 12345)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&data).unwrap();
        let src = Source::complete(f, None).unwrap();
        let len = data.len() as u64;
        for (start, end) in [
            (0, None),
            (1, Some(len - 1)),
            (MAX_CHUNK - 1, Some(2 * MAX_CHUNK + 1)),
            (len - 1, None),
            (5, Some(5)),
        ] {
            let chunks: Vec<Bytes> = src.body(start, end).try_collect().await.unwrap();
            let got: Vec<u8> = chunks.concat();
            let e = end.unwrap_or(len) as usize;
            assert_eq!(got, data[start as usize..e], "range {start}..{end:?}");
        }
    }
}
