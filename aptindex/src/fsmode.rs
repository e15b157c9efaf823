//! The modes of what apt-mirror publishes and apt-cacher caches, in one
//! place: files `0644` and directories `0755`, minus the process umask, as
//! `cp` or `rsync` would leave them. A web server whose workers run as
//! another user (Debian's nginx: `www-data`) must be able to read a mirror;
//! temporary files are created `0600` (by `tempfile`) and a rename or a hard
//! link keeps that mode, so every published file is given its mode
//! explicitly ([`publish_file`]), and files reused from an earlier run
//! (perhaps published `0600` by an older version) are given it again
//! ([`heal`], [`heal_tree`]).
//!
//! The umask is read once from `/proc/self/status` (Linux has no call that
//! reads it without setting it); where that line is missing (no `/proc`), the
//! common default `022` is assumed.

use std::fs::{DirBuilder, File, Metadata, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The mode of a published file before the umask.
pub const FILE_MODE: u32 = 0o644;
/// The mode of a published directory before the umask.
pub const DIR_MODE: u32 = 0o755;
/// The umask assumed when `/proc/self/status` does not tell.
const DEFAULT_UMASK: u32 = 0o022;

/// A mode could not be set.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot set mode {mode:03o} (was {was:03o}): {source}")]
pub struct ModeError {
    /// The file or directory.
    pub path: PathBuf,
    /// The mode it should have had.
    pub mode: u32,
    /// The mode it has.
    pub was: u32,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// A walk of a tree ([`heal_tree`]) failed.
#[derive(Debug, thiserror::Error)]
pub enum HealError {
    /// A directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A mode could not be set.
    #[error(transparent)]
    Mode(#[from] ModeError),
}

/// The process umask (read once).
pub fn umask() -> u32 {
    static UMASK: OnceLock<u32> = OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| parse_umask(&s))
            .unwrap_or(DEFAULT_UMASK)
    })
}

/// The `Umask:` line of a `/proc/<pid>/status` text, e.g. `Umask:\t0022`.
fn parse_umask(status: &str) -> Option<u32> {
    let value = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(value.trim(), 8).ok().map(|m| m & 0o777)
}

/// The mode of a published file: `0644` minus the umask.
pub fn file_mode() -> u32 {
    FILE_MODE & !umask()
}

/// The mode of a published directory: `0755` minus the umask.
pub fn dir_mode() -> u32 {
    DIR_MODE & !umask()
}

/// Gives an open file (a temporary file about to be renamed into place) the
/// mode of a published file. Call it before the file is synced, so the mode
/// is as durable as the data.
pub fn publish_file(file: &File, path: &Path) -> Result<(), ModeError> {
    let mode = file_mode();
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(|source| ModeError {
            path: path.to_path_buf(),
            mode,
            was: file
                .metadata()
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0),
            source,
        })
}

/// Creates (or truncates) `path` for writing with the mode of a published
/// file (the kernel applies the umask).
pub fn create_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Creates the directory `path` with the mode of a published directory.
pub fn create_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().mode(DIR_MODE).create(path)
}

/// Creates `path` and its missing parents with the mode of a published
/// directory.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// What [`heal`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Healed {
    /// The mode was already right (or `path` is neither a regular file nor
    /// a directory: symlinks are left alone).
    Unchanged,
    /// The mode was set.
    Changed,
}

/// Gives the file or directory `path`, whose metadata (not following
/// symlinks) is `meta`, the bits of the published mode it lacks (e.g. a
/// file an older version published `0600`, about to be reused); bits it has
/// beyond them stay.
pub fn heal(path: &Path, meta: &Metadata) -> Result<Healed, ModeError> {
    let mode = if meta.is_file() {
        file_mode()
    } else if meta.is_dir() {
        dir_mode()
    } else {
        return Ok(Healed::Unchanged);
    };
    // Only the permission bits: a set-group-ID directory stays one. Bits
    // are only added, never taken away: a run under a stricter umask (an
    // operator's 027) must not make a served tree unreadable.
    let old = meta.permissions().mode() & 0o7777;
    let was = old & 0o777;
    if was & mode == mode {
        return Ok(Healed::Unchanged);
    }
    let new = old | mode;
    std::fs::set_permissions(path, Permissions::from_mode(new)).map_err(|source| ModeError {
        path: path.to_path_buf(),
        mode,
        was,
        source,
    })?;
    Ok(Healed::Changed)
}

/// [`heal`] for a path whose metadata is not at hand.
pub fn heal_path(path: &Path) -> Result<Healed, ModeError> {
    let meta = std::fs::symlink_metadata(path).map_err(|source| ModeError {
        path: path.to_path_buf(),
        mode: file_mode(),
        was: 0,
        source,
    })?;
    heal(path, &meta)
}

/// True when `path` (not following symlinks) has at least the bits of the
/// published mode of its kind; false when it lacks one or cannot be read.
pub fn is_published(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let mode = meta.permissions().mode() & 0o777;
    let want = if meta.is_dir() {
        dir_mode()
    } else {
        file_mode()
    };
    mode & want == want
}

/// [`heal`]s `root` and every file and directory below it (symlinks are
/// neither changed nor followed). Returns how many modes were changed.
pub fn heal_tree(root: &Path) -> Result<u64, HealError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HealError::Io { path, source }
    };
    let mut changed = 0;
    let meta = std::fs::symlink_metadata(root).map_err(io(root))?;
    if heal(root, &meta)? == Healed::Changed {
        changed += 1;
    }
    if !meta.is_dir() {
        return Ok(changed);
    }
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let path = entry.path();
            // Not following symlinks (lstat).
            let meta = entry.metadata().map_err(io(&path))?;
            if heal(&path, &meta)? == Healed::Changed {
                changed += 1;
            }
            if meta.is_dir() {
                pending.push(path);
            }
        }
    }
    Ok(changed)
}

/// Test support for crates that check modes under several umasks: runs the
/// test `name` (its full path, e.g. `snapshot::tests::modes_child`) of the
/// current test binary again, alone and including ignored tests, in a child
/// process whose umask `sh` set to `umask`, with [`UMASK_CHILD_ENV`] set.
/// Returns the child's output; [`ran_one_test`] tells whether it ran and
/// passed.
#[doc(hidden)]
pub fn rerun_test_under_umask(umask: u32, name: &str) -> io::Result<std::process::Output> {
    let exe = std::env::current_exe()?;
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask:03o} && exec \"$0\" \"$@\""))
        .arg(exe)
        .args(["--exact", name, "--include-ignored", "--test-threads=1"])
        .env(UMASK_CHILD_ENV, format!("{umask:03o}"))
        .output()
}

/// Set in the child process of [`rerun_test_under_umask`].
#[doc(hidden)]
pub const UMASK_CHILD_ENV: &str = "APTINDEX_UMASK_CHILD";

/// True when the output of [`rerun_test_under_umask`] shows exactly one test
/// run, passed.
#[doc(hidden)]
pub fn ran_one_test(out: &std::process::Output) -> bool {
    let stdout = String::from_utf8_lossy(&out.stdout);
    out.status.success() && stdout.contains("running 1 test") && stdout.contains("1 passed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umask_line() {
        assert_eq!(
            parse_umask("Name:\tx\nUmask:\t0022\nState:\tR\n"),
            Some(0o022)
        );
        assert_eq!(parse_umask("Umask:\t0027\n"), Some(0o027));
        assert_eq!(parse_umask("Umask:\tgarbage\n"), None);
        assert_eq!(parse_umask("Name:\tx\n"), None);
    }

    /// Run by [`modes_follow_the_umask`] under a given umask.
    #[test]
    #[ignore = "run by modes_follow_the_umask in a child process with a set umask"]
    fn modes_child() {
        let umask = std::env::var(UMASK_CHILD_ENV)
            .ok()
            .and_then(|u| u32::from_str_radix(&u, 8).ok())
            .expect("APTINDEX_UMASK_CHILD");
        assert_eq!(super::umask(), umask);
        let (file, dir) = (FILE_MODE & !umask, DIR_MODE & !umask);
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        create_dir_all(&root.join("a/b")).unwrap();
        assert_eq!(mode(&root), dir);
        assert_eq!(mode(&root.join("a/b")), dir);
        create_dir(&root.join("c")).unwrap();
        assert_eq!(mode(&root.join("c")), dir);
        let created = root.join("a/created");
        create_file(&created).unwrap();
        assert_eq!(mode(&created), file);
        // A temporary file (0600) given the published mode before its rename.
        let t = tempfile::NamedTempFile::new_in(&root).unwrap();
        assert_eq!(mode(t.path()), 0o600);
        publish_file(t.as_file(), t.path()).unwrap();
        let published = root.join("a/b/published");
        t.persist(&published).unwrap();
        assert_eq!(mode(&published), file);
        // An old tree: private modes (other than the published ones under
        // this umask); healed, symlinks left alone.
        let old = root.join("a/old");
        std::fs::write(&old, b"x").unwrap();
        std::fs::set_permissions(&old, Permissions::from_mode(0o400)).unwrap();
        std::fs::set_permissions(root.join("c"), Permissions::from_mode(0o500)).unwrap();
        std::os::unix::fs::symlink("/nonexistent", root.join("link")).unwrap();
        assert!(!is_published(&old));
        assert_eq!(heal_tree(&root).unwrap(), 2);
        assert_eq!(mode(&old), file);
        assert_eq!(mode(&root.join("c")), dir);
        assert!(is_published(&old) && is_published(&root.join("c")));
        assert_eq!(heal_tree(&root).unwrap(), 0);
        assert_eq!(heal_path(&published).unwrap(), Healed::Unchanged);
        // Healing only adds bits: a file readable by all stays so under a
        // stricter umask (a run by an operator whose umask is 027).
        let wide = root.join("a/wide");
        std::fs::write(&wide, b"x").unwrap();
        std::fs::set_permissions(&wide, Permissions::from_mode(0o644)).unwrap();
        assert_eq!(heal_path(&wide).unwrap(), Healed::Unchanged);
        assert_eq!(mode(&wide), 0o644);
    }

    #[test]
    fn modes_follow_the_umask() {
        for umask in [0o022, 0o027, 0o077] {
            let out = rerun_test_under_umask(umask, "fsmode::tests::modes_child").unwrap();
            assert!(
                ran_one_test(&out),
                "umask {umask:03o}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
