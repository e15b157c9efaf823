//! The source a response streams from: a file being downloaded (following
//! its progress, see [`super::progress`]) or already complete (a cache
//! hit), readable by any number of clients, each from its own offset.
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

use super::error::{DownloadError, LocalError};
use super::progress::{sendable, DownloadState, Head, InFlightMap, UpstreamNote};
use crate::mapped;
use bytes::{Bytes, BytesMut};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
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

/// A body's share of the memory budget (see [`BodyGuard::plan`]).
struct Plan {
    chunk: u64,
    read_ahead: bool,
}

/// Counts one streaming body while alive.
struct BodyGuard;
impl BodyGuard {
    fn new() -> BodyGuard {
        ACTIVE_BODIES.fetch_add(1, Ordering::Relaxed);
        BodyGuard
    }
    /// How a body reads now: its chunk size, and whether it may read its
    /// next chunk while the previous one is being sent (only when its share
    /// of the budget holds `AHEAD_BUFFERS` chunks of at least `MIN_CHUNK`).
    fn plan() -> Plan {
        let active = ACTIVE_BODIES.load(Ordering::Relaxed).max(1) as u64;
        let share = READ_BUDGET / active;
        if share >= AHEAD_BUFFERS * MIN_CHUNK {
            Plan {
                chunk: (share / AHEAD_BUFFERS).min(MAX_CHUNK),
                read_ahead: true,
            }
        } else {
            Plan {
                chunk: share.clamp(MIN_CHUNK, MAX_CHUNK),
                read_ahead: false,
            }
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

/// A file being downloaded or already complete, readable by any number of clients.
#[derive(Debug)]
pub struct Source {
    pub(super) file: Arc<std::fs::File>,
    pub(super) rx: watch::Receiver<DownloadState>,
    /// True for a download in flight: its bytes were just written and sit in
    /// the page cache, so reading them cannot block on the disk and is done
    /// inline; complete files are read on the blocking pool.
    pub(super) hot: bool,
}

impl Source {
    /// A complete file (a cache hit).
    pub fn complete(file: std::fs::File, last_modified: Option<String>) -> std::io::Result<Source> {
        let len = file.metadata()?.len();
        let progress = DownloadState {
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
                return Err(Arc::new(DownloadError::Local(LocalError::Ended)));
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
                return Err(Arc::new(DownloadError::Local(LocalError::Ended)));
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
            rx: watch::Receiver<DownloadState>,
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
                let Plan {
                    chunk,
                    read_ahead: ahead,
                } = BodyGuard::plan();
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
                    let n = (limit - st.pos).min(BodyGuard::plan().chunk);
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::TryStreamExt;
    use std::io::Write;

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
