//! Snapshots of one mirror on disk, in go-apt-mirror's layout:
//!
//! ```text
//! <dir>/.lock
//! <dir>/<ID>                          symlink -> .<ID>.<timestamp>/<ID>
//! <dir>/.<ID>.<timestamp>/<ID>/...    the tree that clients see
//! <dir>/.<ID>.<timestamp>/info.json   size and hashes of every file in it
//! <dir>/.<ID>.pool-<stamp>/pool/...   pool files shared by snapshots (see [`crate::pool`])
//! ```
//!
//! A new snapshot is built in a fresh `.<ID>.<timestamp>/` next to the
//! current one, flushed to disk (`syncfs`), and published by replacing the
//! `<ID>` symlink atomically (a temporary symlink renamed over it, then the
//! directory fsynced). Clients therefore see either the old tree or the new
//! one, never a mix. Clean-up keeps the `keep` newest previous complete
//! snapshots and removes everything else whose name starts with `.<ID>.`
//! (failed or killed runs, with the pool files only they referenced), and
//! nothing else in `<dir>`.

mod gc;
mod heal;
mod reuse;
#[cfg(test)]
mod tests;

pub use crate::info::{same_content, FileInfo, Hex, Info, Withheld};
pub use reuse::{Reuse, ReuseIndex};

use aptindex::fsmode;
use aptindex::tree::{self, TreeError};
use std::path::{Path, PathBuf};

/// Name of the checksum list inside a snapshot directory.
pub const INFO_JSON: &str = "info.json";
/// `info.json` of a snapshot being removed (no longer complete).
const DROPPED_JSON: &str = "dropped.json";

/// A snapshot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A published file or directory could not be given its mode.
    #[error(transparent)]
    Mode(#[from] aptindex::fsmode::ModeError),
    /// Writing, flushing or swapping the tree failed.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// `<dir>/<ID>` is not what apt-mirror creates; it is left alone.
    #[error("{path}: {reason}; refusing to touch it")]
    Foreign {
        /// The path.
        path: PathBuf,
        /// What is unexpected.
        reason: Foreign,
    },
}

/// What is unexpected about a `<dir>/<ID>` apt-mirror did not make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Foreign {
    /// It is not a symlink.
    #[error("exists and is not a symlink")]
    NotSymlink,
    /// It points elsewhere than `.<ID>.<timestamp>/<ID>`.
    #[error("points to {target:?}, not .{id}.<timestamp>/{id}")]
    Target {
        /// Where it points.
        target: String,
        /// The mirror ID.
        id: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One snapshot directory.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `.<ID>.<timestamp>`.
    pub name: String,
    /// `<dir>/.<ID>.<timestamp>`.
    pub dir: PathBuf,
    /// `<dir>/.<ID>.<timestamp>/<ID>`: the tree clients see.
    pub tree: PathBuf,
}

impl Snapshot {
    /// Reads `info.json`; `None` if it is missing or unreadable (then
    /// nothing is reused from this snapshot).
    pub fn read_info(&self) -> Option<Info> {
        let data = std::fs::read(self.dir.join(INFO_JSON)).ok()?;
        match serde_json::from_slice::<Info>(&data) {
            Ok(info) => Some(info),
            Err(e) => {
                tracing::warn!(path = %self.dir.join(INFO_JSON).display(), error = %e, "unreadable info.json; nothing will be reused from this snapshot");
                None
            }
        }
    }
}

/// The snapshots of mirror `id` under root `dir`.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    id: String,
}

impl Store {
    /// The store of mirror `id` in `root`.
    pub fn new(root: &Path, id: &str) -> Store {
        Store {
            root: root.to_path_buf(),
            id: id.to_string(),
        }
    }

    fn prefix(&self) -> String {
        format!(".{}.", self.id)
    }

    fn snapshot(&self, name: &str) -> Snapshot {
        let dir = self.root.join(name);
        Snapshot {
            name: name.to_string(),
            tree: dir.join(&self.id),
            dir,
        }
    }

    /// The published `<dir>/<ID>` symlink path.
    pub fn link_path(&self) -> PathBuf {
        self.root.join(&self.id)
    }

    /// The snapshot `<dir>/<ID>` points to, if any.
    pub fn current(&self) -> Result<Option<Snapshot>, SnapshotError> {
        let link = self.link_path();
        let meta = match std::fs::symlink_metadata(&link) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&link)(e)),
            Ok(m) => m,
        };
        if !meta.file_type().is_symlink() {
            return Err(SnapshotError::Foreign {
                path: link,
                reason: Foreign::NotSymlink,
            });
        }
        let target = std::fs::read_link(&link).map_err(io_err(&link))?;
        let target_str = target.to_string_lossy();
        let mut parts = target_str.split('/');
        let (Some(name), Some(leaf), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SnapshotError::Foreign {
                path: link,
                reason: Foreign::Target {
                    target: target_str.to_string(),
                    id: self.id.clone(),
                },
            });
        };
        if !name.starts_with(&self.prefix()) || name.len() == self.prefix().len() || leaf != self.id
        {
            return Err(SnapshotError::Foreign {
                path: link,
                reason: Foreign::Target {
                    target: target_str.to_string(),
                    id: self.id.clone(),
                },
            });
        }
        Ok(Some(self.snapshot(name)))
    }

    /// Creates a fresh, empty snapshot directory (with its tree directory),
    /// named by the time (see [`tree::staging`]).
    pub fn begin(&self) -> Result<Snapshot, SnapshotError> {
        let base = format!("{}{}", self.prefix(), tree::staging::timestamp());
        let staged = tree::staging::create_unique(&self.root, &base)?;
        let snap = self.snapshot(&staged.name);
        fsmode::create_dir(&snap.tree).map_err(io_err(&snap.tree))?;
        Ok(snap)
    }

    /// Writes `info`, flushes the whole new tree to disk, and swaps the
    /// `<dir>/<ID>` symlink to `snap` atomically.
    pub fn publish(&self, snap: &Snapshot, info: &Info) -> Result<(), SnapshotError> {
        let info_path = snap.dir.join(INFO_JSON);
        let data = serde_json::to_vec(info).map_err(|e| io_err(&info_path)(e.into()))?;
        tree::atomic::write_file(&info_path, &data)?;
        let target = PathBuf::from(&snap.name).join(&self.id);
        let tmp = format!("{}symlink-tmp", self.prefix());
        tree::publish::publish(&snap.dir, &self.link_path(), &target, &tmp)?;
        Ok(())
    }
}
