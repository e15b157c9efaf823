//! Publishing a staged tree: its files are flushed to disk first (`syncfs`
//! of its file system: one call instead of an fsync per file), then the
//! symlink clients follow is swapped to it atomically. A crash before the
//! swap leaves the old tree published; after it, the new one, complete.

use super::atomic;
use super::TreeError;
use std::path::Path;

/// Publishes the tree `staged` by pointing the symlink `link` at `target`
/// (the link's content, usually relative to its directory): flushes the
/// file system holding `staged`, then swaps `link` through the temporary
/// name `tmp_name` (see [`atomic::swap_symlink`]).
pub fn publish(staged: &Path, link: &Path, target: &Path, tmp_name: &str) -> Result<(), TreeError> {
    atomic::syncfs(staged)?;
    atomic::swap_symlink(link, target, tmp_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        for g in ["gen-1", "gen-2"] {
            let d = dir.path().join(g);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("Release"), g).unwrap();
        }
        let link = dir.path().join("current");
        publish(
            &dir.path().join("gen-1"),
            &link,
            Path::new("gen-1"),
            "current.tmp",
        )
        .unwrap();
        assert_eq!(std::fs::read(link.join("Release")).unwrap(), b"gen-1");
        publish(
            &dir.path().join("gen-2"),
            &link,
            Path::new("gen-2"),
            "current.tmp",
        )
        .unwrap();
        assert_eq!(std::fs::read(link.join("Release")).unwrap(), b"gen-2");
    }
}
