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
    /// Upstream's answer is not what it may be (too large for a file no
    /// index lists, HTML for a package): not served as good, not cached.
    #[error("{0}")]
    Refused(#[from] RefusedError),
}

/// Why an upstream answer was refused though nothing could verify it.
#[derive(Debug, thiserror::Error)]
pub enum RefusedError {
    /// A file no index lists grew beyond `max_unverified_size`.
    #[error("{what} from {url}: no index lists it and it is larger than max_unverified_size ({limit} bytes); not cached")]
    TooLarge {
        /// Mapping and path.
        what: String,
        /// The upstream URL.
        url: String,
        /// The cap.
        limit: u64,
    },
    /// An HTML page answered for a package or an index (a captive portal).
    #[error(
        "{what} from {url}: upstream answered an HTML page for a package or index; not cached"
    )]
    Html {
        /// Mapping and path.
        what: String,
        /// The upstream URL.
        url: String,
    },
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
    /// The file system stayed full though the cache evicted what it could.
    #[error("{what}: file system full at {} ({source}); nothing left to evict", path.display())]
    DiskFull {
        /// Mapping and path.
        what: String,
        /// The temporary file.
        path: PathBuf,
        /// The I/O error (ENOSPC or EDQUOT).
        source: std::io::Error,
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
