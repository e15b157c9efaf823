//! Why a download, its commit or a cache request failed: one enum per
//! layer, each variant a kind that callers match on (the HTTP status of a
//! failed response follows the kind), each message naming what and where.

use runtime::http::HttpError;
use std::path::PathBuf;

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// Upstream failed.
    #[error(transparent)]
    Upstream(#[from] HttpError),
    /// The bytes did not verify.
    #[error("verification failed: {0}")]
    Verify(#[from] VerifyError),
    /// Local I/O failed.
    #[error("{0}")]
    Local(#[from] LocalError),
}

/// How a download failed to verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Upstream announced another length than the expected size.
    #[error("{what}: size mismatch: expected {expected} bytes, upstream announces {announced}")]
    Announced {
        /// Mapping and path.
        what: String,
        /// The expected size.
        expected: u64,
        /// The `Content-Length` upstream sent.
        announced: u64,
    },
    /// Upstream sent more bytes than expected.
    #[error("{what}: more than the expected {expected} bytes (at least {actual})")]
    TooLong {
        /// Mapping and path.
        what: String,
        /// The expected size.
        expected: u64,
        /// The bytes received so far.
        actual: u64,
    },
    /// Size or a hash differs from what the index says.
    #[error(transparent)]
    Checksum(#[from] aptindex::checksum::ChecksumError),
}

/// A local failure while downloading.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Writing the temporary file failed.
    #[error("writing temporary file for {what}: {source}")]
    Write {
        /// Mapping and path.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Mapping the temporary file could not run.
    #[error("mapping the download of {what}: {source}")]
    Map {
        /// Mapping and path.
        what: String,
        /// The task error.
        source: tokio::task::JoinError,
    },
    /// The temporary file could not be written or completed.
    #[error("temporary file for {what}: {source}")]
    Staged {
        /// Mapping and path.
        what: String,
        /// What went wrong, and where.
        source: aptindex::tree::TreeError,
    },
    /// The download task is gone without an outcome.
    #[error("download task ended")]
    Ended,
}

impl LocalError {
    /// The error of the temporary file of `what`: a failed write is a
    /// [`LocalError::Write`], as it always was.
    pub(super) fn staged(what: &str, e: aptindex::tree::TreeError) -> LocalError {
        match e {
            aptindex::tree::TreeError::Io { source, .. } => LocalError::Write {
                what: what.to_string(),
                source,
            },
            source => LocalError::Staged {
                what: what.to_string(),
                source,
            },
        }
    }
}

/// Why a verified download could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// A file system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Moving into the cache failed.
    #[error("caching {key}: {source}")]
    Storage {
        /// The storage key.
        key: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The blocking task that commits did not finish.
    #[error("{0}")]
    Join(#[from] tokio::task::JoinError),
    /// The destination refused the file (an index that cannot be read
    /// within its caps is quarantined).
    #[error(transparent)]
    Refused(Box<dyn std::error::Error + Send + Sync>),
}

/// Why a cache request could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// No temporary file could be created in the cache.
    #[error("temporary file: {0}")]
    TempFile(std::io::Error),
    /// The path has no upstream URL.
    #[error("bad path")]
    BadPath,
}
