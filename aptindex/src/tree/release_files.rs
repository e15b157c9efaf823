//! Which files make up a suite's tree: its Release files (with their size
//! cap), the role of each entry a Release lists, and where to fetch an index
//! from. The rules here are APT's; each program's policy (which components,
//! architectures, languages it wants; how many by-hash names it tries) stays
//! with the program and comes in as a parameter.

use crate::checksum::{Checksums, HashKind};

/// The Release files of a suite, in the order apt prefers them.
pub const RELEASE_FILES: [&str; 3] = ["InRelease", "Release", "Release.gpg"];

/// Cap on the size of one Release file (Debian's largest are a few hundred
/// KiB; 64 MiB leaves room and still bounds memory).
pub const RELEASE_LIMIT: u64 = 64 << 20;

/// True when `name` (a file name, no directory) is one of [`RELEASE_FILES`].
pub fn is_release_file(name: &str) -> bool {
    RELEASE_FILES.contains(&name)
}

/// What an entry of a Release (a path relative to the suite directory) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryRole<'a> {
    /// An index or other metadata file a tree may hold at its plain path.
    Index,
    /// The PDiff index (`<base>.diff/Index`) of the index `base`: wanted
    /// exactly when `base` is.
    DiffIndex {
        /// The index it patches (its path without `.diff/Index`).
        base: &'a str,
    },
    /// A `by-hash/` name: reached through the entry it is a copy of, never
    /// selected on its own.
    ByHash,
    /// Another file under a `*.diff/` directory (a patch): placed from its
    /// diff Index, never from the Release.
    DiffPatch,
}

/// The role of the Release entry `rel`.
pub fn entry_role(rel: &str) -> EntryRole<'_> {
    if rel.split('/').any(|s| s == "by-hash") {
        return EntryRole::ByHash;
    }
    if let Some(base) = rel.strip_suffix(".diff/Index") {
        if !base.is_empty() && !base.ends_with('/') {
            return EntryRole::DiffIndex { base };
        }
        return EntryRole::DiffPatch;
    }
    if rel.split('/').any(|s| s.ends_with(".diff")) {
        return EntryRole::DiffPatch;
    }
    EntryRole::Index
}

/// How many `by-hash/` names of an index to try before its plain path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByHash {
    /// The Release does not say `Acquire-By-Hash: yes`: the plain path only.
    Off,
    /// The strongest hash's name only.
    Strongest,
    /// Every hash known, strongest first (SHA512, SHA256, SHA1, MD5).
    Every,
}

/// Where the index `path` (relative to the repository root) with checksums
/// `sums` can be fetched from, in order: its `by-hash/` names as `by_hash`
/// says, then (unless `plain` is [`Plain::Skip`]) the plain path.
pub fn fetch_candidates(
    path: &str,
    sums: &Checksums,
    by_hash: ByHash,
    plain: Plain,
) -> Vec<String> {
    const EVERY: [HashKind; 4] = [
        HashKind::Sha512,
        HashKind::Sha256,
        HashKind::Sha1,
        HashKind::Md5,
    ];
    let kinds: Vec<HashKind> = match by_hash {
        ByHash::Off => Vec::new(),
        ByHash::Strongest => sums.strongest().into_iter().collect(),
        ByHash::Every => EVERY.to_vec(),
    };
    let mut out: Vec<String> = kinds
        .into_iter()
        .filter_map(|kind| Some(crate::path::by_hash_path(path, kind, &sums.hex(kind)?)))
        .collect();
    if plain == Plain::Include {
        out.push(path.to_string());
    }
    out
}

/// Whether [`fetch_candidates`] ends with the plain path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plain {
    /// Try the plain path last.
    Include,
    /// By-hash names only (an index kept only under `by-hash/`).
    Skip,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert_eq!(
            entry_role("main/binary-amd64/Packages.xz"),
            EntryRole::Index
        );
        assert_eq!(
            entry_role("main/binary-amd64/Packages.diff/Index"),
            EntryRole::DiffIndex {
                base: "main/binary-amd64/Packages"
            }
        );
        assert_eq!(entry_role(".diff/Index"), EntryRole::DiffPatch);
        assert_eq!(
            entry_role("main/binary-amd64/Packages.diff/T-2024-x.gz"),
            EntryRole::DiffPatch
        );
        assert_eq!(
            entry_role("main/binary-amd64/by-hash/SHA256/ab"),
            EntryRole::ByHash
        );
        assert!(is_release_file("InRelease"));
        assert!(!is_release_file("Packages"));
    }

    #[test]
    fn candidates_by_policy() {
        let sums = Checksums::of_bytes(b"x");
        let every = fetch_candidates("d/main/Packages", &sums, ByHash::Every, Plain::Include);
        assert_eq!(every.len(), 5);
        assert!(every[0].starts_with("d/main/by-hash/SHA512/"));
        assert_eq!(every[4], "d/main/Packages");
        let strongest =
            fetch_candidates("d/main/Packages", &sums, ByHash::Strongest, Plain::Include);
        assert_eq!(strongest.len(), 2);
        assert!(strongest[0].starts_with("d/main/by-hash/SHA512/"));
        assert_eq!(
            fetch_candidates("d/main/Packages", &sums, ByHash::Off, Plain::Include),
            vec!["d/main/Packages".to_string()]
        );
        assert_eq!(
            fetch_candidates("d/main/Packages", &sums, ByHash::Every, Plain::Skip).len(),
            4
        );
    }
}
