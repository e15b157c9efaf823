//! The on-disk layout of the generations: `meta_dir/<prefix>/<suite dir,
//! escaped>/gen-<id>/` plus a `current` symlink, and the file-system
//! helpers that make a generation durable (synced files and directories,
//! the same modification time on every file).

use super::*;

/// Escapes a suite directory into one file name.
pub(super) fn escape_dir(dir: &str) -> String {
    if dir.is_empty() {
        return "%".into();
    }
    dir.replace('%', "%25").replace('/', "%2F")
}

pub(super) fn unescape_dir(name: &str) -> String {
    if name == "%" {
        return String::new();
    }
    name.replace("%2F", "/").replace("%25", "%")
}

pub(super) fn sync_dir(dir: &Path) {
    // Durability only; failures here do not affect consistency.
    let _ = aptindex::tree::atomic::fsync_dir(dir);
}

/// Sets the modification time of every file under `dir`.
pub(super) fn set_mtimes(dir: &Path, t: SystemTime) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                set_mtimes(&p, t);
            } else {
                let _ = std::fs::File::options()
                    .write(true)
                    .open(&p)
                    .and_then(|f| f.set_modified(t));
            }
        }
    }
}

/// fsyncs every file and directory under `dir`.
pub(super) fn sync_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                sync_tree(&p);
            } else {
                let _ = std::fs::File::open(&p).and_then(|f| f.sync_all());
            }
        }
    }
    sync_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_dir_escaping_round_trips() {
        for d in ["", "dists/bookworm", "a%2Fb", "%", "x/y/z"] {
            let e = escape_dir(d);
            assert!(!e.contains('/'), "{e}");
            assert_eq!(unescape_dir(&e), d);
        }
    }
}
