//! The small atomic steps a tree is published with: write a small file
//! atomically, fsync a directory, flush a whole file system (`syncfs`, via
//! `rustix`), and swap a symlink (a new symlink renamed over the old one,
//! then the directory fsynced) so that a reader sees the old target or the
//! new one, never neither.

use super::TreeError;
use crate::fsmode;
use std::io::Write;
use std::path::Path;

/// Writes `data` to `path` through a temporary file in the same directory
/// (created if missing), which gets the published mode ([`fsmode`]), is
/// fsynced and renamed over `path`.
pub fn write_file(path: &Path, data: &[u8]) -> Result<(), TreeError> {
    let dir = parent_of(path);
    fsmode::create_dir_all(dir).map_err(TreeError::io(dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".part-")
        .tempfile_in(dir)
        .map_err(TreeError::io(path))?;
    tmp.write_all(data).map_err(TreeError::io(path))?;
    fsmode::publish_file(tmp.as_file(), path)?;
    tmp.as_file().sync_all().map_err(TreeError::io(path))?;
    tmp.persist(path)
        .map_err(|e| TreeError::io(path)(e.error))?;
    Ok(())
}

/// fsyncs the directory `dir` (makes the names in it durable).
pub fn fsync_dir(dir: &Path) -> Result<(), TreeError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(TreeError::io(dir))
}

/// Flushes every file and directory of the file system holding `path`.
pub fn syncfs(path: &Path) -> Result<(), TreeError> {
    let dir = std::fs::File::open(path).map_err(TreeError::io(path))?;
    rustix::fs::syncfs(&dir).map_err(|e| TreeError::io(path)(e.into()))
}

/// Points the symlink `link` at `target` atomically: a symlink `tmp_name`
/// (in `link`'s directory; a stale one is replaced) is created and renamed
/// over `link`, then the directory is fsynced.
pub fn swap_symlink(link: &Path, target: &Path, tmp_name: &str) -> Result<(), TreeError> {
    rename_symlink(link, target, tmp_name)?;
    fsync_dir(parent_of(link))
}

/// [`swap_symlink`] without the directory fsync, for a caller that treats
/// the rename as done whatever the fsync says (apt-cacher: once `current`
/// names the new generation on disk, it serves that generation; a failed
/// fsync only risks the old one coming back after a crash, which is
/// consistent too).
pub fn rename_symlink(link: &Path, target: &Path, tmp_name: &str) -> Result<(), TreeError> {
    let dir = parent_of(link);
    let tmp = dir.join(tmp_name);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(TreeError::io(&tmp)(e)),
        _ => {}
    }
    std::os::unix::fs::symlink(target, &tmp).map_err(TreeError::io(&tmp))?;
    std::fs::rename(&tmp, link).map_err(TreeError::io(link))
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_file_replaces_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/info.json");
        write_file(&p, b"one").unwrap();
        write_file(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(fsmode::is_published(&p));
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        syncfs(dir.path()).unwrap();
        fsync_dir(dir.path()).unwrap();
    }

    #[test]
    fn symlink_swap_is_a_rename() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::create_dir(dir.path().join("b")).unwrap();
        let link = dir.path().join("current");
        swap_symlink(&link, Path::new("a"), "current.tmp").unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("a"));
        // A stale temporary link of a killed run is replaced.
        std::os::unix::fs::symlink("nowhere", dir.path().join("current.tmp")).unwrap();
        let ino_before = std::fs::symlink_metadata(&link).unwrap();
        swap_symlink(&link, Path::new("b"), "current.tmp").unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("b"));
        assert!(std::fs::symlink_metadata(dir.path().join("current.tmp")).is_err());
        use std::os::unix::fs::MetadataExt;
        // A new inode took the name (rename), the old link was never removed first.
        assert_ne!(
            ino_before.ino(),
            std::fs::symlink_metadata(&link).unwrap().ino()
        );
    }
}
