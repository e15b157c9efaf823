//! What the steps of one build share ([`Building`]): the snapshot being
//! built, the one before it, the files that can replace downloads, the
//! progress, and the files recorded so far ([`Recorded`]). Its own file so
//! that the steps (`build.rs`, `indices.rs`, `pool_files.rs`, `place.rs`)
//! depend on it and not on each other.

use crate::progress::Progress;
use crate::snapshot::{FileInfo, Info, ReuseIndex, Snapshot};
use aptindex::checksum::Checksums;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the steps of one build share.
pub(super) struct Building<'a> {
    /// The snapshot being built.
    pub(super) new: &'a Snapshot,
    /// The published snapshot, if any.
    pub(super) current: Option<&'a Snapshot>,
    /// Its `info.json`, if readable.
    pub(super) current_info: Option<&'a Info>,
    /// Its files that can replace downloads.
    pub(super) reuse: ReuseIndex<'a>,
    /// Download progress of the run.
    pub(super) progress: Arc<Progress>,
    /// Temporary files of downloads into the shared pool.
    pub(super) tmp: PathBuf,
    /// The files of the new tree so far.
    pub(super) files: Recorded,
    /// When the build started (for the debug timings).
    pub(super) t0: Instant,
}

/// The files of the new tree so far, with their size and hashes: the
/// `files` of its `info.json`.
#[derive(Debug, Default)]
pub(super) struct Recorded(Mutex<BTreeMap<String, FileInfo>>);

impl Recorded {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, FileInfo>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `path` with `sums`.
    pub(super) fn record(&self, path: &str, sums: &Checksums) {
        self.lock()
            .insert(path.to_string(), FileInfo::from_checksums(sums));
    }

    /// Records entries already described.
    pub(super) fn extend(&self, entries: impl IntoIterator<Item = (String, FileInfo)>) {
        self.lock().extend(entries);
    }

    /// The paths recorded so far.
    pub(super) fn paths(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    pub(super) fn into_inner(self) -> BTreeMap<String, FileInfo> {
        self.0.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}
