//! The one error type of [`crate::tree`]: every variant names the file or
//! the source (URL, path) it is about.

use crate::checksum::ChecksumError;
use crate::fsmode::ModeError;
use std::path::PathBuf;

/// Building, verifying or publishing a tree failed.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A file-system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// More bytes arrived than the file may have.
    #[error("{what}: larger than {limit} bytes")]
    TooLarge {
        /// The source of the bytes (URL or path).
        what: String,
        /// The cap, in bytes.
        limit: u64,
    },
    /// The expectation has no hash: the file cannot be verified.
    #[error("{what}: no checksum to verify it against")]
    NoChecksum {
        /// The source of the bytes (URL or path).
        what: String,
    },
    /// The bytes do not match the expected size and hashes.
    #[error("{what}: verification failed: {source}")]
    Verify {
        /// The source of the bytes (URL or path).
        what: String,
        /// The mismatch.
        #[source]
        source: ChecksumError,
    },
    /// A file or directory could not be given its published mode.
    #[error(transparent)]
    Mode(#[from] ModeError),
}

impl TreeError {
    /// An [`TreeError::Io`] maker for `path`, for `map_err`.
    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TreeError + '_ {
        move |source| TreeError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
