//! Repository paths: classify a path (Release-type file, index, by-hash,
//! pool or other file), build by-hash paths for an entry, map a by-hash path
//! back to its directory and hash, and reject paths that would escape a root.

use crate::checksum::HashKind;

/// What a repository path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathKind {
    /// `Release`, `InRelease` or `Release.gpg`.
    Release,
    /// An index: `Packages*`, `Sources*`, `Translation-*`, `Index`,
    /// `Contents-*`, `Components-*`, `icons-*`, `Commands-*`, any compression.
    Index,
    /// `<dir>/by-hash/<Kind>/<hex>`.
    ByHash {
        /// The directory holding `by-hash/`.
        dir: String,
        /// The hash kind.
        kind: HashKind,
        /// The lower-case hex digest.
        hex: String,
    },
    /// Anything else (pool files, `.deb`, `.dsc`, ...).
    Other,
}

/// Classifies `path` (relative, `/`-separated, no leading slash needed).
pub fn classify(path: &str) -> PathKind {
    todo!()
}

/// The by-hash path of a file at `path` with digest `hex`:
/// `<dir of path>/by-hash/<kind name>/<hex>`.
pub fn by_hash_path(path: &str, kind: HashKind, hex: &str) -> String {
    todo!()
}

/// True when `path` is a safe relative path: not empty, not absolute, no
/// `..`, `.` or empty components, no NUL or backslash.
pub fn is_safe_relative(path: &str) -> bool {
    todo!()
}

/// Joins a directory and a relative path with one `/` (an empty `dir` yields `rel`).
pub fn join(dir: &str, rel: &str) -> String {
    todo!()
}
