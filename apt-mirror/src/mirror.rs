//! The update of one mirror, from the upstream's Release files to a
//! published snapshot:
//!
//! 1. fetch `InRelease`, `Release` and `Release.gpg` of every suite; if they
//!    are byte-identical to the current snapshot's (and the configuration
//!    did not change), stop: nothing else is downloaded;
//! 2. decide which Release text to believe, the way apt does
//!    (`aptindex::trust`: `InRelease` first, `Release` + `Release.gpg` only
//!    without a valid `InRelease`; a file that fails verification next to a
//!    good one is a warning and is not published), and refuse it when its
//!    `Valid-Until` has passed ([`validity`]);
//! 3. fetch the selected indices (by-hash first), verified against Release,
//!    and the PDiff patches their `*.diff/Index` lists, verified against it
//!    ([`pdiff`]);
//! 4. read the pool files they name, hard-link those the current snapshot
//!    already has, download the rest in parallel, each verified;
//! 5. add `by-hash/` links, fetch the Release files again to make sure the
//!    upstream did not change meanwhile, write `info.json`, and swap the
//!    `<dir>/<ID>` symlink.
//!
//! Any failure leaves the current snapshot untouched and removes the
//! unfinished one.

mod build;
mod building;
mod indices;
mod pdiff;
mod place;
mod pool_files;
mod pool_target;
mod release;
mod report;
mod run;
mod update;
mod validity;

pub use report::{MirrorReport, Outcome};

use crate::config::MirrorConfig;
use crate::fetch::{FetchError, Fetcher};
use crate::plan::PlanError;
use crate::snapshot::{SnapshotError, Store};
use aptindex::signature::SignatureError;
use aptindex::trust::TrustError;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use update::Update;

/// Largest decompressed index read.
const INDEX_LIMIT: u64 = aptindex::compress::DEFAULT_LIMIT;
/// Temporary files of a run, inside its snapshot directory (so that a
/// killed run's are removed with it).
const TMP_DIR: &str = ".tmp";

/// Why a mirror was not updated.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// A download failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A snapshot operation failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Writing or linking a file of the tree failed.
    #[error(transparent)]
    Tree(#[from] aptindex::tree::TreeError),
    /// A path or checksum from upstream was rejected.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The keyring could not be read.
    #[error("keyring: {0}")]
    Keyring(#[source] SignatureError),
    /// No Release text of a suite can be believed (signatures,
    /// disagreement, missing files).
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// An index could not be read.
    #[error("{path}: {problem}")]
    Index {
        /// The index.
        path: String,
        /// What is wrong.
        #[source]
        problem: Box<IndexProblem>,
    },
    /// A required file is missing upstream.
    #[error("{url}: not found upstream (404)")]
    Missing {
        /// The URL.
        url: String,
    },
    /// The upstream changed while the mirror was being updated.
    #[error(
        "{url}: changed upstream during the update; the current snapshot is kept, retry later"
    )]
    Changed {
        /// The Release file that changed.
        url: String,
    },
    /// A reused file could not be given its published mode.
    #[error(transparent)]
    Mode(#[from] aptindex::fsmode::ModeError),
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A blocking task working on `path` failed (panicked or was cancelled).
    #[error("{path}: {task} task failed: {source}")]
    Task {
        /// What the task was doing.
        task: Task,
        /// The directory it worked on.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: tokio::task::JoinError,
    },
    /// The believed Release's `Valid-Until` has passed (or cannot be
    /// read), and the mirror checks it.
    #[error("{url}: suite {suite:?}: {problem}; the current snapshot is kept (check_valid_until = false publishes it anyway)")]
    Expired {
        /// The Release file believed.
        url: String,
        /// The suite.
        suite: String,
        /// Expired when, or unreadable.
        problem: validity::Invalid,
    },
    /// The run was interrupted.
    #[error("interrupted")]
    Cancelled,
}

/// A blocking task of an update ([`MirrorError::Task`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Task {
    /// Restoring the published modes of the current snapshot.
    #[error("mode")]
    Mode,
    /// Hard-linking files of the current snapshot.
    #[error("linking")]
    Linking,
    /// Checking the files the shared pool holds.
    #[error("checking")]
    Checking,
}

/// What a mirror update needs from the run.
#[derive(Debug, Clone)]
pub struct Context {
    /// The mirror root (`dir`).
    pub root: PathBuf,
    /// The shared HTTP client.
    pub fetcher: Arc<Fetcher>,
    /// Parallel downloads per mirror.
    pub parallel: usize,
    /// Progress log interval without a terminal.
    pub progress_interval: Duration,
    /// Cancelled on SIGINT/SIGTERM.
    pub cancel: tokio_util::sync::CancellationToken,
}

#[derive(Debug, Default)]
struct Counters {
    downloaded: AtomicU64,
    reused: AtomicU64,
    bytes: AtomicU64,
    /// Index entries skipped as bad.
    skipped: AtomicU64,
    /// The run's warnings, for the report.
    warnings: Mutex<Vec<String>>,
}

impl Counters {
    fn warn(&self, warning: String) {
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(warning);
    }
}

/// Updates mirror `cfg`; never panics, always reports.
pub async fn update(ctx: &Context, cfg: &MirrorConfig) -> MirrorReport {
    let start = Instant::now();
    let counters = Counters::default();
    let result = Update {
        ctx,
        cfg,
        counters: &counters,
        store: Store::new(&ctx.root, &cfg.id),
    }
    .run()
    .await;
    let (result, error, snapshot) = match result {
        Ok((o, s)) => (o, None, s),
        Err(e) => {
            let current = Store::new(&ctx.root, &cfg.id)
                .current()
                .ok()
                .flatten()
                .map(|s| s.name);
            (Outcome::Failed, Some(e.to_string()), current)
        }
    };
    MirrorReport {
        id: cfg.id.clone(),
        result,
        error,
        files_downloaded: counters.downloaded.load(Ordering::Relaxed),
        files_reused: counters.reused.load(Ordering::Relaxed),
        bytes_downloaded: counters.bytes.load(Ordering::Relaxed),
        entries_skipped: counters.skipped.load(Ordering::Relaxed),
        duration_secs: start.elapsed().as_secs_f64(),
        snapshot,
        warnings: counters
            .warnings
            .into_inner()
            .unwrap_or_else(|p| p.into_inner()),
    }
}

/// What is wrong with an index ([`MirrorError::Index`]).
#[derive(Debug, thiserror::Error)]
pub enum IndexProblem {
    /// It does not parse (or decompress).
    #[error(transparent)]
    Parse(#[from] aptindex::index::IndexError),
    /// A PDiff index does not parse.
    #[error(transparent)]
    Diff(#[from] aptindex::pdiff::DiffIndexError),
    /// A PDiff index is larger than accepted.
    #[error("diff Index of {size} bytes, more than the {limit} accepted")]
    TooLarge {
        /// Its size (from the Release).
        size: u64,
        /// The cap.
        limit: usize,
    },
    /// The thread reading the indices failed.
    #[error("reader task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
