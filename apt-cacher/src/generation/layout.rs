//! The on-disk layout of the generations: `meta_dir/<prefix>/<suite dir,
//! escaped>/gen-<id>/` plus a `current` symlink, and the file-system
//! helpers that make a generation durable (synced files and directories,
//! the same modification time on every file).

use super::*;
use percent_encoding::{percent_decode_str, percent_encode, AsciiSet};

/// The bytes escaped in a suite directory's file name: `%` and `/` only
/// (`dists/stable` is `dists%2Fstable`). The on-disk layout depends on it:
/// existing caches are found again only if the names stay byte-identical.
const SUITE_DIR: &AsciiSet = &AsciiSet::EMPTY.add(b'%').add(b'/');

/// Escapes a suite directory into one file name (`%` for the empty one).
pub(super) fn escape_dir(dir: &str) -> String {
    if dir.is_empty() {
        return "%".into();
    }
    let mut out = String::with_capacity(dir.len());
    for c in dir.chars() {
        if c.is_ascii() {
            out.extend(percent_encode(&[c as u8], SUITE_DIR));
        } else {
            // The crate escapes every non-ASCII byte; names keep them as they are.
            out.push(c);
        }
    }
    out
}

/// The suite directory a file name in the layout stands for; `None` for a
/// name [`escape_dir`] does not produce (not one of the cacher's).
pub(super) fn unescape_dir(name: &str) -> Option<String> {
    let dir = if name == "%" {
        String::new()
    } else {
        percent_decode_str(name).decode_utf8().ok()?.into_owned()
    };
    (escape_dir(&dir) == name).then_some(dir)
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
            assert_eq!(unescape_dir(&e).as_deref(), Some(d));
        }
    }

    /// The names on disk stay byte-identical to the hand-written escaping
    /// (`%` to `%25`, `/` to `%2F`, nothing else): existing caches keep working.
    #[test]
    fn suite_dir_names_are_pinned() {
        for (dir, name) in [
            ("", "%"),
            ("dists/stable", "dists%2Fstable"),
            ("dists/bookworm-updates", "dists%2Fbookworm-updates"),
            ("a%2Fb", "a%252Fb"),
            ("%", "%25"),
            ("x/y z/~+:", "x%2Fy z%2F~+:"),
            ("dists/s\u{e9}id", "dists%2Fs\u{e9}id"),
        ] {
            assert_eq!(escape_dir(dir), name, "{dir:?}");
            assert_eq!(unescape_dir(name).as_deref(), Some(dir), "{name:?}");
        }
    }

    #[test]
    fn foreign_names_are_not_suite_dirs() {
        for name in ["a%2fb", "a%41", "a%", "%%", "a/b", "%FF"] {
            assert_eq!(unescape_dir(name), None, "{name:?}");
        }
    }
}
