//! The pool-file cache, after pingora-cache's shape: a key ([`key`]), the
//! in-flight table that coalesces downloads ([`coalesce`]), the files on
//! disk ([`storage`]) and their LRU eviction ([`evict`]). A miss goes
//! [`Cache::get`] → [`coalesce`] (one download per key) → [`fetch`]
//! (upstream, streaming into a temporary file through
//! [`aptindex::tree::StagedFile`]: hashed, under a size cap, verified) →
//! [`commit`] (sync, then move into the storage); every client
//! reads the download as it grows through [`reader`], following
//! [`progress`]. The metadata generations use the same in-flight table
//! and fetch, with their own commit.

pub mod coalesce;
pub mod commit;
pub mod diskfull;
pub mod error;
pub mod evict;
pub mod fetch;
pub mod key;
pub mod portal;
pub mod progress;
pub mod reader;
pub mod retention;
pub mod storage;

pub use coalesce::{InFlight, Job, Started};
pub use commit::{Commit, Destination};
pub use error::{CacheError, CommitError, DownloadError, LocalError, RefusedError, VerifyError};
pub use key::CacheKey;
pub use progress::{Head, UpstreamNote};
pub use reader::Source;
pub use storage::Storage;

use crate::metrics::Metrics;
use reqwest::Url;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// A file to serve.
#[derive(Debug)]
pub enum Found {
    /// A complete file (cached, or in a metadata generation).
    File(PathBuf),
    /// A download in flight, readable as it grows.
    Fetching {
        /// What the response streams from.
        source: Arc<Source>,
        /// True when the download was already in flight (coalesced).
        joined: bool,
    },
}

/// The pool-file cache: storage plus the in-flight downloads.
#[derive(Debug)]
pub struct Cache {
    storage: Arc<Storage>,
    inflight: Arc<InFlight>,
    metrics: Arc<Metrics>,
    max_unverified: Option<u64>,
    largest_listed: AtomicU64,
}

impl Cache {
    /// The cache of `storage`, downloading through `inflight`.
    pub fn new(storage: Arc<Storage>, inflight: Arc<InFlight>, metrics: Arc<Metrics>) -> Cache {
        Cache {
            storage,
            inflight,
            metrics,
            max_unverified: None,
            largest_listed: AtomicU64::new(0),
        }
    }

    /// With `max_unverified_size` (`None`: derived, see
    /// [`Cache::unverified_cap`]).
    pub fn with_max_unverified(mut self, max: Option<u64>) -> Cache {
        self.max_unverified = max;
        self
    }

    /// The cap on a download no index lists: `max_unverified_size`, or
    /// twice the largest listed file requested so far (at least
    /// [`crate::config::UNVERIFIED_FLOOR`]), or before any
    /// [`crate::config::UNVERIFIED_DEFAULT`].
    pub fn unverified_cap(&self) -> u64 {
        if let Some(max) = self.max_unverified {
            return max;
        }
        match self.largest_listed.load(Relaxed) {
            0 => crate::config::UNVERIFIED_DEFAULT,
            n => n.saturating_mul(2).max(crate::config::UNVERIFIED_FLOOR),
        }
    }

    /// The file for `key`: the stored file if it is there, otherwise a
    /// download from `url` (joined if one is in flight), verified against
    /// what `key` expects and kept in the storage when `key` says so.
    pub fn get(&self, key: &CacheKey, url: Option<Url>) -> Result<Found, CacheError> {
        let stored = key.storage_key();
        if let Some(k) = &stored {
            if let Some(p) = self.storage.get(k) {
                if p.is_file() {
                    return Ok(Found::File(p));
                }
                self.storage.remove(k);
            }
        }
        if let Some(cs) = key.expected() {
            self.largest_listed.fetch_max(cs.size, Relaxed);
        }
        let url = url.ok_or(CacheError::BadPath)?;
        // A download of this file in flight: join it (no temporary file).
        if let Some(source) = self.inflight.joinable(key) {
            return Ok(Found::Fetching {
                source,
                joined: true,
            });
        }
        let temp = match self.storage.temp_file() {
            Ok(t) => t,
            Err(e) if diskfull::is_disk_full(&e) => {
                // Even an empty file needs an inode: make room once, retry.
                diskfull::record(&self.metrics, &key.what(), &self.storage.tmp_dir(), &e);
                let evictable = storage::Evictable::for_download(key.expected());
                self.storage.make_room(diskfull::ROOM_MIN, evictable);
                self.storage.temp_file().map_err(|e| {
                    tracing::warn!(error = %e, "cannot create a temporary file in the cache");
                    CacheError::TempFile(e)
                })?
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot create a temporary file in the cache");
                return Err(CacheError::TempFile(e));
            }
        };
        let commit = match stored {
            Some(key) => Commit::Storage {
                storage: self.storage.clone(),
                key,
            },
            None => Commit::Discard,
        };
        let job = Job {
            key: key.clone(),
            urls: vec![url],
            expected: key.expected().cloned(),
            what: key.what(),
            temp,
            commit,
            unverified_cap: self.unverified_cap(),
            room: Some(self.storage.clone()),
        };
        let started = self.inflight.start(job);
        if key.expected().is_none() && !started.joined {
            // No index of any served suite names it: nothing to verify against.
            self.metrics.unverified_download();
            match key {
                CacheKey::Pass {
                    prefix,
                    path,
                    undecided: true,
                } => {
                    tracing::warn!(mapping = %prefix, path = %path, "an index that should list this file failed to load: passing it through unverified, not cached");
                }
                CacheKey::Stored { prefix, path, .. } | CacheKey::Pass { prefix, path, .. } => {
                    tracing::info!(mapping = %prefix, path = %path, cached = key.is_kept(), "downloading a file no index names, unverified");
                }
                CacheKey::Generation { .. } | CacheKey::Refresh { .. } => {}
            }
        }
        Ok(started.into())
    }
}
