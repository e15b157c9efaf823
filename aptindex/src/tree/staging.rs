//! Where a tree is built before it is published: a fresh directory with a
//! unique name next to the published ones (same file system, so publishing
//! is a rename or a symlink swap), created with the published mode. Nothing
//! points at it until [`super::publish`] does, so a run killed while it
//! builds leaves only a directory that garbage collection removes.

use super::TreeError;
use crate::fsmode;
use std::path::{Path, PathBuf};

/// A directory a tree is built in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedDir {
    /// Its file name (unique in its parent).
    pub name: String,
    /// Its path.
    pub path: PathBuf,
}

/// How many `-<n>` suffixes [`create_unique`] tries after the plain name.
const ATTEMPTS: u32 = 100;

/// Creates the directory `<parent>/<base>` or, when that exists (two runs
/// within one timestamp), `<parent>/<base>-1`, `-2`, ...
pub fn create_unique(parent: &Path, base: &str) -> Result<StagedDir, TreeError> {
    let mut n = 0;
    loop {
        let name = if n == 0 {
            base.to_string()
        } else {
            format!("{base}-{n}")
        };
        let path = parent.join(&name);
        match fsmode::create_dir(&path) {
            Ok(()) => return Ok(StagedDir { name, path }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < ATTEMPTS => n += 1,
            Err(e) => return Err(TreeError::io(&path)(e)),
        }
    }
}

/// A timestamp for staged directory names that sorts by time
/// (`20240102T030405.123456Z`).
pub fn timestamp() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let a = create_unique(dir.path(), ".deb.x").unwrap();
        let b = create_unique(dir.path(), ".deb.x").unwrap();
        assert_eq!(a.name, ".deb.x");
        assert_eq!(b.name, ".deb.x-1");
        assert!(b.path.is_dir());
        assert!(fsmode::is_published(&b.path));
        assert!(timestamp().as_str() < "3");
    }
}
