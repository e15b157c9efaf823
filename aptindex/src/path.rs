//! Repository paths: classify a path (Release-type file, index, by-hash,
//! pool or other file), build by-hash paths for an entry, map a by-hash path
//! back to its directory and hash, and reject paths that would escape a root.

use crate::checksum::HashKind;
use crate::compress::Compression;

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

/// Base names (compression suffix removed) of index files, and prefixes of index file names.
const INDEX_NAMES: [&str; 3] = ["Packages", "Sources", "Index"];
const INDEX_PREFIXES: [&str; 5] = ["Translation-", "Contents-", "Components-", "icons-", "Commands-"];

/// Classifies `path` (relative, `/`-separated, no leading slash needed).
pub fn classify(path: &str) -> PathKind {
    let path = path.trim_start_matches('/');
    if let Some(kind) = parse_by_hash(path) {
        return kind;
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    if matches!(name, "Release" | "InRelease" | "Release.gpg") {
        return PathKind::Release;
    }
    let base = Compression::from_path(name).strip(name);
    if INDEX_NAMES.contains(&base) || INDEX_PREFIXES.iter().any(|p| base.len() > p.len() && base.starts_with(p)) {
        return PathKind::Index;
    }
    PathKind::Other
}

/// Recognises `<dir>/by-hash/<Kind>/<hex>` with a hex digest of the kind's length.
fn parse_by_hash(path: &str) -> Option<PathKind> {
    let mut parts = path.rsplitn(4, '/');
    let hex = parts.next()?;
    let kind = HashKind::from_by_hash_name(parts.next()?)?;
    if parts.next()? != "by-hash" {
        return None;
    }
    let dir = parts.next().unwrap_or("");
    if hex.len() != kind.len() * 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(PathKind::ByHash { dir: dir.to_string(), kind, hex: hex.to_ascii_lowercase() })
}

/// The by-hash path of a file at `path` with digest `hex`:
/// `<dir of path>/by-hash/<kind name>/<hex>`.
pub fn by_hash_path(path: &str, kind: HashKind, hex: &str) -> String {
    let dir = match path.rfind('/') {
        Some(i) => &path[..i],
        None => "",
    };
    join(dir, &format!("by-hash/{}/{}", kind.by_hash_name(), hex))
}

/// True when `path` is a safe relative path: not empty, not absolute, no
/// `..`, `.` or empty components, no NUL or backslash.
pub fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains(['\0', '\\'])
        && path.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Joins a directory and a relative path with one `/` (an empty `dir` yields `rel`).
pub fn join(dir: &str, rel: &str) -> String {
    let dir = dir.trim_end_matches('/');
    let rel = rel.trim_start_matches('/');
    if dir.is_empty() {
        rel.to_string()
    } else {
        format!("{dir}/{rel}")
    }
}
