//! Why a metadata request failed: the kinds the handler turns into a
//! status (upstream's own, 502 for unusable metadata, 500 for local
//! failures, 404 for what the client's generation does not list).

use crate::cache::DownloadError;
use runtime::http::HttpError;
use std::path::PathBuf;
use std::sync::Arc;

/// Why a metadata request failed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// Upstream failed (and nothing usable is cached).
    #[error(transparent)]
    Upstream(#[from] HttpError),
    /// Upstream's metadata (or the request) is unusable (boxed: some
    /// kinds carry a parser's error).
    #[error(transparent)]
    Invalid(Box<Invalid>),
    /// Local I/O.
    #[error(transparent)]
    Io(#[from] LocalIo),
    /// A Release asked for a suite name no real suite has, or too many
    /// unknown suites are in flight: upstream was not asked.
    #[error(transparent)]
    Suite(#[from] super::SuiteRefused),
    /// A suite's Release files do not verify against its mapping's
    /// keyring: refused (see [`super::signed`]).
    #[error(transparent)]
    Signature(Box<super::signed::Refused>),
    /// Nothing the client's generation lists (a PDiff patch its diff Index
    /// does not name, see [`super::pdiff`]): nothing could verify it.
    #[error("{path}: not listed by {index} (generation {generation})")]
    NotListed {
        /// The repository path asked for.
        path: String,
        /// The diff Index (mapping and path).
        index: String,
        /// The client's generation.
        generation: u64,
    },
}

impl From<Invalid> for MetaError {
    fn from(e: Invalid) -> MetaError {
        MetaError::Invalid(Box::new(e))
    }
}

/// How metadata (or a request for it) is unusable.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    /// The mapping does not exist.
    #[error("no such mapping")]
    NoMapping,
    /// The suite has no generation.
    #[error("no generation")]
    NoGeneration,
    /// The generation lacks this Release file (upstream has none, or it
    /// does not verify next to one that does: see [`super::signed`]).
    #[error("{0} not available (upstream has none, or it does not verify)")]
    NotAvailable(String),
    /// The path has no upstream URL.
    #[error("bad path {0}")]
    BadPath(String),
    /// A Release file from upstream does not parse.
    #[error("{url}: cannot parse: {source}")]
    Unparsable {
        /// Where it came from.
        url: String,
        /// Why.
        source: aptindex::release::ReleaseError,
    },
    /// Two Release files of one suite disagree.
    #[error("{url} differs from the other Release file (upstream changing?)")]
    Disagree {
        /// The one that differs.
        url: String,
    },
    /// Neither Release nor InRelease came.
    #[error("no Release or InRelease")]
    NoRelease,
    /// A Release lists a diff Index larger than any may be.
    #[error("{what}: {size} bytes, more than the {max} a diff Index may have")]
    DiffIndexTooLarge {
        /// Mapping and path of the diff Index.
        what: String,
        /// Its size as listed.
        size: u64,
        /// The limit.
        max: usize,
    },
    /// A diff Index does not parse.
    #[error("{what}: {source}")]
    DiffIndex {
        /// Mapping and path of the diff Index.
        what: String,
        /// Why.
        source: aptindex::pdiff::DiffIndexError,
    },
    /// An index (or diff Index) failed to download or verify.
    #[error("{what}: {source}")]
    Download {
        /// Mapping and path.
        what: String,
        /// Why.
        source: Arc<DownloadError>,
    },
    /// An index of a new Release failed to download or verify.
    #[error("{0}")]
    Refetch(Arc<DownloadError>),
    /// An index cannot be read within its caps: quarantined.
    #[error(transparent)]
    Quarantined(#[from] super::pool_map::Quarantined),
    /// The suite was dropped (no client asked for it during `retention`)
    /// while this request waited for it.
    #[error("the suite was just dropped for want of clients (retention); ask again")]
    Dropped,
    /// A Release kept on disk does not parse.
    #[error("{}: {source}", path.display())]
    Stored {
        /// The file.
        path: PathBuf,
        /// Why.
        source: aptindex::release::ReleaseError,
    },
}

/// A local failure while building or reading a generation.
#[derive(Debug, thiserror::Error)]
pub enum LocalIo {
    /// A file system operation failed.
    #[error("{what}: {source}")]
    Io {
        /// The file or operation.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file could not be given its published mode.
    #[error(transparent)]
    Mode(#[from] aptindex::fsmode::ModeError),
    /// Publishing the tree failed.
    #[error(transparent)]
    Tree(#[from] aptindex::tree::TreeError),
    /// A blocking task did not finish.
    #[error("{0}")]
    Join(#[from] tokio::task::JoinError),
    /// A downloaded index did not come back to the refresh.
    #[error("{rel}: downloaded but not kept")]
    NotKept {
        /// The index, relative to the suite directory.
        rel: String,
    },
}

/// Turns an I/O error about `what` into a [`MetaError`].
pub(super) fn io_err(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> MetaError {
    move |source| {
        MetaError::Io(LocalIo::Io {
            what: what.to_string(),
            source,
        })
    }
}
