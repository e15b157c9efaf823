//! Why a metadata request failed: the kinds the handler turns into a
//! status (upstream's own, 502 for unusable metadata, 500 for local
//! failures, 404 for what the client's generation does not list).

use crate::upstream::UpstreamError;

/// Why a metadata request failed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// Upstream failed (and nothing usable is cached).
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Upstream's metadata is unusable.
    #[error("{0}")]
    Invalid(String),
    /// Local I/O.
    #[error("{0}")]
    Io(String),
    /// Nothing the client's generation lists (a PDiff patch its diff Index
    /// does not name, see [`crate::pdiff`]): nothing could verify it.
    #[error("{0}")]
    NotListed(String),
}

pub(super) fn io_err(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> MetaError {
    move |e| MetaError::Io(format!("{what}: {e}"))
}
