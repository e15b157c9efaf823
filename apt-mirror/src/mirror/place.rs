//! Putting one file into the new snapshot: a hard link to a verified local
//! copy when there is one, otherwise a download from the first location the
//! upstream has, verified while it streams (`aptindex::tree::StagedFile`
//! in [`crate::fetch`]).

use super::building::Recorded;
use super::update::Update;
use super::{MirrorError, Task};
use crate::fetch::FetchError;
use crate::progress::Progress;
use crate::snapshot::Reuse;
use aptindex::checksum::Checksums;
use futures_util::{StreamExt, TryStreamExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

impl Update<'_> {
    /// Places pool files (reused or downloaded, in parallel) and records
    /// them in `files`; a file missing upstream is an error.
    pub(super) async fn place_all(
        &self,
        tmp: &Path,
        jobs: &[Job],
        progress: &Progress,
        files: &Recorded,
    ) -> Result<(), MirrorError> {
        futures_util::stream::iter(jobs.iter())
            .map(|job| async move {
                let placed = self
                    .place(
                        Placement {
                            path: &job.path,
                            sums: &job.sums,
                            dest: &job.dest,
                            tmp: job.staged.then_some(tmp),
                            old: job.old.clone(),
                            candidates: std::slice::from_ref(&job.path),
                        },
                        progress,
                    )
                    .await?;
                if placed == Found::NotUpstream {
                    return Err(MirrorError::Missing {
                        url: self
                            .url(&job.path)
                            .map(|u| u.to_string())
                            .unwrap_or_else(|_| job.path.clone()),
                    });
                }
                files.record(&job.path, &job.sums);
                Ok::<(), MirrorError>(())
            })
            .buffer_unordered(self.ctx.parallel)
            .try_collect::<()>()
            .await
    }

    /// Puts `p.path` at `p.dest`: a hard link to `p.old` when given and
    /// usable (`old` may be `dest` itself, a leftover of a failed run, kept
    /// when it verifies), otherwise a download from the first of
    /// `p.candidates` the upstream has.
    pub(super) async fn place(
        &self,
        p: Placement<'_>,
        progress: &Progress,
    ) -> Result<Found, MirrorError> {
        let Placement {
            path,
            sums,
            dest,
            tmp,
            old,
            candidates,
        } = p;
        if self.ctx.cancel.is_cancelled() {
            return Err(MirrorError::Cancelled);
        }
        let old = match old {
            Some(Reuse::Known(p)) => Some(p),
            Some(Reuse::Unverified(p)) => {
                let (file, expected) = (p.clone(), sums.clone());
                let good = tokio::task::spawn_blocking(move || verify_local(&file, &expected))
                    .await
                    .unwrap_or(false);
                good.then_some(p)
            }
            None => None,
        };
        if let Some(old) = old {
            if old == dest {
                aptindex::fsmode::heal_path(dest)?;
                self.counters.reused.fetch_add(1, Ordering::Relaxed);
                return Ok(Found::Placed);
            }
            if link_file(&old, dest).is_ok() && file_size(dest) == Some(sums.size) {
                self.counters.reused.fetch_add(1, Ordering::Relaxed);
                return Ok(Found::Placed);
            }
            let _ = std::fs::remove_file(dest);
        }
        for candidate in candidates {
            let url = self.url(candidate)?;
            match self
                .ctx
                .fetcher
                .download(&url, dest, tmp, sums, progress)
                .await
            {
                Ok(Some(n)) => {
                    self.counters.downloaded.fetch_add(1, Ordering::Relaxed);
                    self.counters.bytes.fetch_add(n, Ordering::Relaxed);
                    progress.file_done();
                    return Ok(Found::Placed);
                }
                Ok(None) => continue,
                Err(FetchError::Cancelled) => return Err(MirrorError::Cancelled),
                // A broken by-hash copy: fall back to the next candidate.
                Err(FetchError::Verify { url, source }) if candidate != path => {
                    tracing::warn!(url = %url, error = %source, "by-hash file failed verification; trying the next location");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Found::NotUpstream)
    }
}

/// One file to put into the new snapshot ([`Update::place`]).
#[derive(Debug)]
pub(super) struct Placement<'a> {
    /// Its path relative to the repository root.
    pub(super) path: &'a str,
    /// Expected size and hashes.
    pub(super) sums: &'a Checksums,
    /// Where it goes.
    pub(super) dest: &'a Path,
    /// Where a download is staged (same file system as `dest`); `None`:
    /// next to `dest`.
    pub(super) tmp: Option<&'a Path>,
    /// A local copy that may replace the download.
    pub(super) old: Option<Reuse>,
    /// Where to fetch it from, in order (by-hash names, then `path`).
    pub(super) candidates: &'a [String],
}

/// Whether [`Update::place`] found the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// It is in place, verified.
    Placed,
    /// None of its locations exists upstream (404/410).
    NotUpstream,
}

/// Hard-links the files of `jobs` (with a [`Reuse::Known`] source) to their
/// destinations, on one blocking thread (more threads only contend for the
/// same directory locks). Returns the jobs linked and those that could not
/// be (to be downloaded instead).
pub(super) async fn link_all(
    tree: &Path,
    mut jobs: Vec<Job>,
) -> Result<(Vec<Job>, Vec<Job>), MirrorError> {
    jobs.sort_by(|a, b| a.path.cmp(&b.path));
    tokio::task::spawn_blocking(move || {
        let mut linked = Vec::new();
        let mut failed = Vec::new();
        for mut job in jobs {
            let ok = match &job.old {
                Some(Reuse::Known(src)) => {
                    link_file(src, &job.dest).is_ok() && file_size(&job.dest) == Some(job.sums.size)
                }
                _ => false,
            };
            if ok {
                linked.push(job);
            } else {
                let _ = std::fs::remove_file(&job.dest);
                job.old = None;
                failed.push(job);
            }
        }
        (linked, failed)
    })
    .await
    .map_err(|source| MirrorError::Task {
        task: Task::Linking,
        path: tree.to_path_buf(),
        source,
    })
}

/// One pool file to put into the new snapshot.
#[derive(Debug)]
pub(super) struct Job {
    /// Path relative to the repository root.
    pub(super) path: String,
    /// Expected size and hashes.
    pub(super) sums: Checksums,
    /// Where it goes: the new tree, or the shared pool generation.
    pub(super) dest: PathBuf,
    /// A local copy that may replace the download.
    pub(super) old: Option<Reuse>,
    /// Downloaded through the snapshot's temporary directory: `dest` is in
    /// a generation that published snapshots share, where a killed run
    /// must leave no temporary file (elsewhere: next to `dest`, cheaper).
    pub(super) staged: bool,
}

/// True when the local file `path` has the `expected` size and hashes.
fn verify_local(path: &Path, expected: &Checksums) -> bool {
    let (Some(kind), Ok(file)) = (expected.strongest(), std::fs::File::open(path)) else {
        return false;
    };
    let mut reader = aptindex::checksum::HashingReader::new(
        std::io::BufReader::with_capacity(256 * 1024, file),
        aptindex::checksum::Hasher::new(&[kind]),
    );
    if std::io::copy(&mut reader, &mut std::io::sink()).is_err() {
        return false;
    }
    let (_, actual) = reader.finish();
    expected.verify(&path.to_string_lossy(), &actual).is_ok()
}

/// Makes `file`'s modification time at least one second later than
/// `previous`'s (when that exists): web servers compare `If-Modified-Since`
/// to the second, and a client must never be told "not modified" about a
/// Release file that changed within the same second.
pub(super) fn newer_than(file: &Path, previous: &Path) {
    let (Ok(old), Ok(new)) = (std::fs::metadata(previous), std::fs::metadata(file)) else {
        return;
    };
    let (Ok(old_m), Ok(new_m)) = (old.modified(), new.modified()) else {
        return;
    };
    let secs = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    if secs(new_m) <= secs(old_m) {
        let bumped = std::time::UNIX_EPOCH + Duration::from_secs(secs(old_m) + 1);
        let result = std::fs::File::options()
            .write(true)
            .open(file)
            .and_then(|f| f.set_modified(bumped));
        if let Err(e) = result {
            tracing::warn!(path = %file.display(), error = %e, "cannot adjust modification time");
        }
    }
}

pub(super) fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// Hard-links `from` to `to`, creating parent directories, and gives the
/// file the published mode if it lacks it (a file an older version
/// published `0600`: the link shares its mode).
pub(super) fn link_file(from: &Path, to: &Path) -> Result<(), MirrorError> {
    let io = |source| MirrorError::Io {
        path: to.to_path_buf(),
        source,
    };
    if let Some(parent) = to.parent() {
        aptindex::fsmode::create_dir_all(parent).map_err(io)?;
    }
    match std::fs::hard_link(from, to) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    aptindex::fsmode::heal_path(to)?;
    Ok(())
}
