//! The in-flight table: at most one upstream download per key
//! ([`super::key::CacheKey::coalesce_key`]). The first request for a key
//! starts the download task ([`super::fetch`]); any request for the same
//! key while it runs joins it and reads the same temporary file (no second
//! download, no second temporary file). The entry leaves the table however
//! the task ends.

use super::commit::Commit;
use super::fetch::Task;
use super::key::CacheKey;
use super::progress::DownloadState;
use super::reader::Source;
use super::Found;
use crate::metrics::Metrics;
use crate::upstream::Upstream;
use aptindex::checksum::Checksums;
use reqwest::Url;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tempfile::TempPath;
use tokio::sync::watch;

/// A download to start (or join).
pub struct Job {
    /// The key: one download per [`CacheKey::coalesce_key`].
    pub key: CacheKey,
    /// URLs to try in order (the next one only after a 404).
    pub urls: Vec<Url>,
    /// Expected size and hashes, if known.
    pub expected: Option<Checksums>,
    /// Human-readable name for logs (mapping and path).
    pub what: String,
    /// A fresh temporary file and its path.
    pub temp: (std::fs::File, TempPath),
    /// Where the verified file goes.
    pub commit: Commit,
    /// The size cap when nothing is `expected` (`max_unverified_size`).
    pub unverified_cap: u64,
    /// The storage to evict from when the file system is full.
    pub room: Option<Arc<super::Storage>>,
}

/// A download started or joined.
#[derive(Debug)]
pub struct Started {
    /// What responses stream from.
    pub source: Arc<Source>,
    /// True when it was already in flight (coalesced).
    pub joined: bool,
}

impl From<Started> for Found {
    fn from(s: Started) -> Found {
        Found::Fetching {
            source: s.source,
            joined: s.joined,
        }
    }
}

/// The table of downloads in flight (the cacher's one, shared by the
/// pool-file cache and the metadata generations).
#[derive(Debug)]
pub struct InFlight {
    upstream: Arc<Upstream>,
    metrics: Arc<Metrics>,
    inflight: Mutex<HashMap<String, Arc<Source>>>,
}

impl InFlight {
    /// An empty table using `upstream`, counting into `metrics`.
    pub fn new(upstream: Arc<Upstream>, metrics: Arc<Metrics>) -> InFlight {
        InFlight {
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
    pub fn joinable(&self, key: &CacheKey) -> Option<Arc<Source>> {
        self.lock().get(&key.coalesce_key()).cloned()
    }

    /// Number of downloads in flight.
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }

    /// Joins the download of `job.key` if one is in flight, otherwise starts
    /// `job`. Returns the source and whether it was joined (coalesced).
    pub fn start(self: &Arc<Self>, job: Job) -> Started {
        let key = job.key.coalesce_key();
        let mut map = self.lock();
        if let Some(s) = map.get(&key) {
            return Started {
                source: s.clone(),
                joined: true,
            };
        }
        let (file, temp) = job.temp;
        let file = Arc::new(file);
        let (tx, rx) = watch::channel(DownloadState::default());
        let source = Arc::new(Source {
            hot: true,
            file: file.clone(),
            rx,
        });
        map.insert(key.clone(), source.clone());
        drop(map);
        let this = self.clone();
        let task = Task {
            file,
            temp,
            tx,
            urls: job.urls,
            expected: job.expected,
            what: job.what,
            commit: job.commit,
            unverified_cap: job.unverified_cap,
            room: job.room,
        };
        let me = source.clone();
        tokio::spawn(async move {
            let tx = task.tx.clone();
            // Leaves the in-flight table however the task ends (even by a panic).
            let _leave = Leave {
                table: this.clone(),
                key,
                source: me,
            };
            let result = task.run(&this.upstream, &this.metrics).await;
            drop(_leave);
            tx.send_modify(|p| p.outcome = Some(result.map_err(Arc::new)));
        });
        Started {
            source,
            joined: false,
        }
    }
}

/// Removes a download from the in-flight table when dropped.
struct Leave {
    table: Arc<InFlight>,
    key: String,
    source: Arc<Source>,
}

impl Drop for Leave {
    fn drop(&mut self) {
        let mut map = self.table.lock();
        if map
            .get(&self.key)
            .is_some_and(|s| Arc::ptr_eq(s, &self.source))
        {
            map.remove(&self.key);
        }
    }
}
