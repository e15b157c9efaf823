//! The run lock: `<dir>/.lock`, held with `flock(2)` for the whole run so
//! that two apt-mirror processes never work on the same mirror root. The
//! lock is released by the kernel when the process exits, however it exits
//! (even `kill -9`), so a stale lock file never blocks the next run.

use std::fs::File;
use std::path::{Path, PathBuf};

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

/// The lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("{path}: another apt-mirror is running on this directory (lock held)")]
    Busy {
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be opened or locked.
    #[error("{path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl RunLock {
    /// Takes `<dir>/.lock` without waiting; creates `dir` if needed (with
    /// the published mode: it is the root a web server serves).
    pub fn acquire(dir: &Path) -> Result<RunLock, LockError> {
        let path = dir.join(".lock");
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        aptindex::fsmode::create_dir_all(dir).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(LockError::Busy { path }),
            Err(e) => return Err(io(e.into())),
        }
        Ok(RunLock { _file: file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        assert!(first.path().ends_with(".lock"));
        match RunLock::acquire(dir.path()) {
            Err(LockError::Busy { path }) => assert_eq!(path, dir.path().join(".lock")),
            other => panic!("expected Busy, got {other:?}"),
        }
        drop(first);
        RunLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn creates_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        RunLock::acquire(&sub).unwrap();
        assert!(sub.join(".lock").exists());
    }
}
