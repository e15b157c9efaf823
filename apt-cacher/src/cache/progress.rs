//! The progress protocol of one download: what the task downloading a file
//! publishes through a `tokio::sync::watch` channel (bytes written, the
//! response head, what upstream did, then success or failure) and the rule
//! every reader follows (`sendable`: the last byte of a file that must
//! verify is withheld until it has).

use bytes::Bytes;
use std::sync::Arc;

use super::error::DownloadError;

/// Progress is published at least every this many bytes.
pub(super) const PUBLISH_EVERY: u64 = 64 * 1024;

/// What clients learn once upstream has answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The length to announce, if known (the expected size when verifying).
    pub length: Option<u64>,
    /// `Last-Modified` to announce.
    pub last_modified: Option<String>,
    /// True when the bytes are being verified (the last byte is held back).
    pub verified: bool,
}

/// What upstream did for a download (for the access log).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpstreamNote {
    /// The status upstream answered, when it answered one.
    pub status: Option<u16>,
    /// Milliseconds until upstream's response headers (or its failure).
    pub ms: u64,
    /// True when the failure was answered from the negative cache, without asking.
    pub negative: bool,
}

/// The state of one download as its readers see it.
#[derive(Debug, Clone, Default)]
pub(super) struct DownloadState {
    pub(super) written: u64,
    /// The whole (pre-sized) temporary file mapped, for large downloads of
    /// known length: readers slice the bytes already written out of it.
    pub(super) map: Option<InFlightMap>,
    pub(super) head: Option<Head>,
    pub(super) upstream: Option<UpstreamNote>,
    pub(super) outcome: Option<Result<(), Arc<DownloadError>>>,
}

/// The map of a download in flight ([`DownloadState::map`]); its `Debug` shows
/// only the length (never the bytes, which may not be written yet).
#[derive(Clone)]
pub(super) struct InFlightMap(pub(super) Bytes);

impl std::fmt::Debug for InFlightMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InFlightMap({} bytes)", self.0.len())
    }
}

/// How far a reader at `pos` of a download still in flight may send: what
/// is written, except the last byte of a file that must verify first; and
/// once every byte is in, nothing more until the (imminent) verdict, so the
/// rest goes out in one piece rather than all but one byte now and one
/// later.
pub(super) fn sendable(p: &DownloadState, pos: u64) -> u64 {
    match &p.head {
        Some(Head {
            length: Some(len),
            verified: true,
            ..
        }) => {
            let last = len.saturating_sub(1);
            if p.written >= *len {
                pos.min(last)
            } else {
                p.written.min(last)
            }
        }
        _ => p.written,
    }
}
