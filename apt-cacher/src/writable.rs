//! The places the configuration writes to must be writable, and when one is
//! not, the error says which key, which path, and what to do. Before the
//! cacher opens anything it creates `meta_dir` and `cache_dir` if missing
//! and creates (and removes) a file in each; the log file is opened by the
//! logger. The usual cause is a go-apt-cacher configuration moved unchanged
//! under the shipped systemd unit: its `/var/spool/go-apt-cacher` and
//! `/var/log/go-apt-cacher.log` lie outside the unit's `ReadWritePaths=`,
//! so `ProtectSystem=strict` makes them read-only (EROFS), or they still
//! belong to the user the Go cacher ran as (EACCES).

use crate::config::Config;
use std::io;
use std::path::{Path, PathBuf};

/// What to do about a read-only file system (EROFS).
pub const READ_ONLY_HINT: &str = "read-only file system: under the shipped systemd unit add the path to ReadWritePaths= (see apt-cacher/README.md, Migrating)";

/// What to do about a permission error (EACCES, EPERM).
pub const PERMISSION_HINT: &str = "permission denied: the user the cacher runs as must own it (under the shipped systemd unit: chown -R apt-cacher: PATH; see apt-cacher/README.md, Migrating)";

/// A configured place that cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render())]
pub struct NotWritable {
    /// The configuration key (`meta_dir`, `cache_dir`, `log.filename`).
    pub key: &'static str,
    /// The path.
    pub path: PathBuf,
    /// What failed (`creating the directory`, ...).
    pub action: &'static str,
    /// Why (not a `source`: the message already says it, and `{:#}` would
    /// repeat it).
    pub error: io::Error,
}

impl NotWritable {
    fn render(&self) -> String {
        let mut s = format!(
            "{} {:?}: {}: {}",
            self.key, self.path, self.action, self.error
        );
        if let Some(hint) = hint(&self.error) {
            s.push_str(": ");
            s.push_str(&hint.replace("PATH", &self.path.display().to_string()));
        }
        s
    }
}

/// The advice for `e`, if it is one of the errors a confined service meets.
fn hint(e: &io::Error) -> Option<&'static str> {
    match e.kind() {
        io::ErrorKind::ReadOnlyFilesystem => Some(READ_ONLY_HINT),
        io::ErrorKind::PermissionDenied => Some(PERMISSION_HINT),
        _ => None,
    }
}

/// Creates `meta_dir` and `cache_dir` if missing and checks that a file can
/// be created in each.
pub fn create_dirs(config: &Config) -> Result<(), NotWritable> {
    check_dir("meta_dir", &config.meta_dir)?;
    check_dir("cache_dir", &config.cache_dir)
}

/// Creates `dir` (named `key` in the config) if missing, then creates and
/// removes a file in it.
pub fn check_dir(key: &'static str, dir: &Path) -> Result<(), NotWritable> {
    let fail = |action, error| NotWritable {
        key,
        path: dir.to_path_buf(),
        action,
        error,
    };
    aptindex::fsmode::create_dir_all(dir).map_err(|e| fail("creating the directory", e))?;
    let probe = dir.join(format!(".apt-cacher-probe-{}", std::process::id()));
    // A probe left by a killed run with the same pid is simply reused.
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .map_err(|e| fail("creating a file in it", e))?;
    std::fs::remove_file(&probe).map_err(|e| fail("removing a file from it", e))
}

/// The error for a log file (`key`: `log.filename` or `--log-file`) the
/// logger could not open; other logger errors pass through.
pub fn log_error(e: runtime::logging::LogError, key: &'static str) -> anyhow::Error {
    match e {
        runtime::logging::LogError::Open { path, source } => NotWritable {
            key,
            path,
            action: "opening the log file",
            error: source,
        }
        .into(),
        other => anyhow::Error::new(other).context("setting up logging"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_key_path_and_remedy() {
        let e = NotWritable {
            key: "meta_dir",
            path: "/var/spool/go-apt-cacher/meta".into(),
            action: "creating a file in it",
            error: io::Error::from_raw_os_error(libc::EROFS),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("meta_dir \"/var/spool/go-apt-cacher/meta\": creating a file in it: "),
            "{text}"
        );
        assert!(text.ends_with(READ_ONLY_HINT), "{text}");
        let e = NotWritable {
            error: io::Error::from_raw_os_error(libc::EACCES),
            ..e
        };
        assert!(
            e.to_string()
                .contains("chown -R apt-cacher: /var/spool/go-apt-cacher/meta;"),
            "{e}"
        );
        let e = NotWritable {
            error: io::Error::from_raw_os_error(libc::ENOSPC),
            ..e
        };
        assert!(!e.to_string().contains("systemd"), "{e}");
    }

    #[test]
    fn a_writable_dir_is_created_and_left_clean() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        check_dir("cache_dir", &dir).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let file = tmp.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let e = check_dir("cache_dir", &file.join("sub")).unwrap_err();
        assert_eq!((e.key, e.action), ("cache_dir", "creating the directory"));
    }
}
