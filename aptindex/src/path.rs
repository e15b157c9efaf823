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
const INDEX_PREFIXES: [&str; 5] = [
    "Translation-",
    "Contents-",
    "Components-",
    "icons-",
    "Commands-",
];

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
    if INDEX_NAMES.contains(&base)
        || INDEX_PREFIXES
            .iter()
            .any(|p| base.len() > p.len() && base.starts_with(p))
    {
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
    Some(PathKind::ByHash {
        dir: dir.to_string(),
        kind,
        hex: hex.to_ascii_lowercase(),
    })
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
/// `..`, `.` or empty components, no backslash and no ASCII control
/// character (NUL; a `\n` would forge log lines, and the `url` crate
/// silently drops `\n\r\t`, so upstream would be asked for another file
/// than the one named). The one "is this path safe" rule: index entries,
/// apt-cacher's request paths and storage keys, apt-mirror's plan and pool
/// all use it.
pub fn is_safe_relative(path: &str) -> bool {
    // One plain pass: this runs for every file of every index.
    let b = path.as_bytes();
    let mut start = 0; // of the current component
    for i in 0..=b.len() {
        match b.get(i) {
            Some(0..=0x1f | 0x7f | b'\\') => return false,
            Some(b'/') | None => {
                let ok = match i - start {
                    0 => false,
                    1 => b[start] != b'.',
                    2 => &b[start..i] != b"..",
                    _ => true,
                };
                if !ok {
                    return false;
                }
                start = i + 1;
            }
            Some(_) => {}
        }
    }
    true
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        for p in [
            "dists/bookworm/Release",
            "dists/bookworm/InRelease",
            "/dists/x/Release.gpg",
            "InRelease",
        ] {
            assert_eq!(classify(p), PathKind::Release, "{p}");
        }
        for p in [
            "dists/x/main/binary-amd64/Packages",
            "dists/x/main/binary-amd64/Packages.xz",
            "dists/x/main/source/Sources.gz",
            "dists/x/main/i18n/Translation-en.bz2",
            "dists/x/main/i18n/Index",
            "dists/x/main/Contents-amd64.gz",
            "dists/x/main/dep11/Components-amd64.yml.gz",
            "dists/x/main/dep11/icons-64x64.tar.gz",
            "dists/x/main/cnf/Commands-amd64.lzma",
            "Packages.zst",
        ] {
            assert_eq!(classify(p), PathKind::Index, "{p}");
        }
        for p in [
            "pool/main/a/aalib/aalib_1.4p5-41.dsc",
            "dists/x/main/Translation-",
            "x.deb",
            "",
        ] {
            assert_eq!(classify(p), PathKind::Other, "{p}");
        }
        let hex = "80A1F6EE524222C49F230FC5700D00F946D0A47EB5258180106DD03DF126E16A";
        assert_eq!(
            classify(&format!("dists/x/main/binary-amd64/by-hash/SHA256/{hex}")),
            PathKind::ByHash {
                dir: "dists/x/main/binary-amd64".into(),
                kind: HashKind::Sha256,
                hex: hex.to_ascii_lowercase()
            }
        );
        assert!(
            matches!(classify("by-hash/MD5Sum/900150983cd24fb0d6963f7d28e17f72"), PathKind::ByHash { ref dir, .. } if dir.is_empty())
        );
        assert_eq!(classify("a/by-hash/SHA256/abc"), PathKind::Other);
        assert_eq!(
            classify("a/by-hash/SHA3/900150983cd24fb0d6963f7d28e17f72"),
            PathKind::Other
        );
    }

    #[test]
    fn by_hash_paths() {
        assert_eq!(
            by_hash_path("main/binary-amd64/Packages.xz", HashKind::Sha256, "ab"),
            "main/binary-amd64/by-hash/SHA256/ab"
        );
        assert_eq!(
            by_hash_path("Packages", HashKind::Md5, "ab"),
            "by-hash/MD5Sum/ab"
        );
        let p = by_hash_path("d/Packages", HashKind::Sha1, &"0".repeat(40));
        assert!(matches!(
            classify(&p),
            PathKind::ByHash {
                kind: HashKind::Sha1,
                ..
            }
        ));
    }

    #[test]
    fn safety_and_join() {
        assert!(is_safe_relative("pool/main/a/b.deb"));
        assert!(is_safe_relative("pool/main/ä/b~1+2.deb"));
        for p in [
            "",
            "/etc/passwd",
            "a/../b",
            "./a",
            "a//b",
            "a/",
            "a\\b",
            "a\0b",
            "..",
            // Control characters (apt-cacher's request-path rule).
            "pool/a\n2026-11-27T00:00:00Z ERROR forged.deb",
            "pool/a\r.deb",
            "pool/a\tb.deb",
            "pool/a\x7f.deb",
        ] {
            assert!(!is_safe_relative(p), "{p:?}");
        }
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("d/", "/a"), "d/a");
        assert_eq!(join("d", "a/b"), "d/a/b");
    }
}
