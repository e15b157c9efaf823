//! The end of a download: report bytes that failed verification (the
//! download verifies them through [`aptindex::tree::StagedFile`]), or keep
//! verified ones: give the file its mode, sync it and move it where it
//! belongs (the pool-file storage, a metadata generation, or back to the
//! refresh that stages a new generation). Nothing that failed verification
//! gets here; a file that cannot be synced is not kept.

use super::error::{CommitError, VerifyError};
use super::progress::DownloadState;
use super::storage::Storage;
use crate::metrics::Metrics;
use aptindex::checksum::ChecksumError;
use aptindex::tree::VerifiedFile;
use std::sync::Arc;
use tempfile::TempPath;
use tokio::sync::{oneshot, watch};

/// Moves a verified, synced temporary file into a metadata generation
/// (implemented by the generations, which the cache does not know).
pub trait Destination: Send + 'static {
    /// Moves `temp` into place; blocking (runs on the blocking pool).
    fn place(self: Box<Self>, temp: TempPath) -> Result<(), CommitError>;
}

/// Where a verified download goes.
pub enum Commit {
    /// Nowhere: passed through, not kept.
    Discard,
    /// Into the pool-file storage under `key` ([`super::CacheKey::storage_key`]).
    Storage {
        /// The storage.
        storage: Arc<Storage>,
        /// The storage key.
        key: String,
    },
    /// Into a metadata generation.
    Generation(Box<dyn Destination>),
    /// Handed back to whoever started the download (a refresh stages the
    /// indices of a new generation before it publishes them).
    Hand(oneshot::Sender<TempPath>),
}

impl std::fmt::Debug for Commit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Commit::Discard => f.write_str("Discard"),
            Commit::Storage { key, .. } => write!(f, "Storage({key})"),
            Commit::Generation(_) => f.write_str("Generation"),
            Commit::Hand(_) => f.write_str("Hand"),
        }
    }
}

impl Commit {
    /// True when the commit must run before clients are told the download
    /// succeeded (metadata, whose commit makes what it lists known);
    /// otherwise clients complete first and the file is synced and
    /// committed afterwards, off their critical path.
    fn first(&self) -> bool {
        matches!(self, Commit::Generation(_) | Commit::Hand(_))
    }

    /// Moves the synced file `temp` (`size` bytes) into place.
    async fn run(self, temp: TempPath, size: u64) -> Result<(), CommitError> {
        match self {
            Commit::Discard => Ok(()),
            Commit::Hand(tx) => {
                // The receiver gone: the refresh ended, the file goes with it.
                let _ = tx.send(temp);
                Ok(())
            }
            Commit::Storage { storage, key } => {
                tokio::task::spawn_blocking(move || {
                    storage
                        .insert(&key, temp, size)
                        .map(|_| ())
                        .map_err(|source| CommitError::Storage { key, source })
                })
                .await?
            }
            Commit::Generation(dest) => {
                tokio::task::spawn_blocking(move || dest.place(temp)).await?
            }
        }
    }
}

/// Reports that the downloaded bytes of `what` from `url` did not verify
/// (`e`, from [`aptindex::tree::StagedFile::finish`]): logged and counted.
pub(super) fn verify_failed(
    what: &str,
    url: &str,
    e: ChecksumError,
    metrics: &Metrics,
) -> VerifyError {
    let (kind, expected, got) = match &e {
        ChecksumError::Hash {
            kind,
            expected,
            actual,
            ..
        } => (format!("{kind:?}"), expected.clone(), actual.clone()),
        ChecksumError::Size {
            expected, actual, ..
        } => ("size".into(), expected.to_string(), actual.to_string()),
        other => ("-".into(), String::new(), other.to_string()),
    };
    tracing::warn!(what = %what, url = %url, check = %kind, expected = %expected, actual = %got, "verification failed; not cached, clients aborted");
    metrics.verification_failure(url, &e.to_string());
    VerifyError::Checksum(e)
}

/// Keeps a verified download of `what` (`written` bytes in `file`):
/// announces success to the readers (before or after the commit, see
/// [`Commit::first`]), gives the file its mode, syncs it, commits it. The
/// bytes verified: clients get them even if keeping them fails.
pub(super) async fn keep(
    commit: Commit,
    file: VerifiedFile,
    tx: &watch::Sender<DownloadState>,
    what: &str,
    written: u64,
) {
    if !commit.first() {
        tx.send_modify(|p| p.outcome = Some(Ok(())));
    }
    if matches!(commit, Commit::Discard) {
        return;
    }
    // Kept files are readable by others, like what apt-mirror publishes
    // (0644 minus the umask); the mode is synced with the data.
    let synced = tokio::task::spawn_blocking(move || file.into_synced_temp_path()).await;
    let temp = match synced {
        Ok(Ok(temp)) => temp,
        Ok(Err(e)) => {
            tracing::warn!(what = %what, error = %e, "cannot give the downloaded file its mode or sync it; not cached");
            return;
        }
        Err(e) => {
            tracing::warn!(what = %what, error = %e, "cannot sync the downloaded file; not cached");
            return;
        }
    };
    if let Err(e) = commit.run(temp, written).await {
        tracing::warn!(what = %what, error = %e, "verified download could not be kept");
    }
}
