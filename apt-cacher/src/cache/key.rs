//! `CacheKey`: what a file is cached and coalesced under. Built from a
//! mapping and a repository path (and, for a pool file, what the indices
//! say about it); the only place that makes the key strings of the
//! storage (`<prefix>/<path>#<tag>`) and of the in-flight table.

use aptindex::checksum::Checksums;

/// What the indices of the served suites say about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// An index lists it with these checksums.
    Listed(Checksums),
    /// No index of any served suite lists it (all that could were loaded).
    Unlisted,
    /// An index that should list it could not be loaded (now or recently).
    Undecided,
}

/// The key of one download or cached file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheKey {
    /// A file kept in the storage: listed by an index with these checksums,
    /// or (`expected` = `None`) a pool file no index lists, kept unverified.
    Stored {
        /// The mapping's prefix.
        prefix: String,
        /// The repository path.
        path: String,
        /// What the indices say it must be.
        expected: Option<Checksums>,
    },
    /// A file passed through, never kept: nothing says whether it is
    /// listed (an index that should list it failed to load), or it is no
    /// pool file.
    Pass {
        /// The mapping's prefix.
        prefix: String,
        /// The repository path.
        path: String,
        /// True when an index that should list it failed to load.
        undecided: bool,
    },
    /// A file of metadata generation `generation` of `mapping` (an index or
    /// a PDiff patch).
    Generation {
        /// The mapping's index.
        mapping: usize,
        /// The generation's id.
        generation: u64,
        /// The repository path.
        path: String,
    },
    /// An index of a new Release, fetched while a suite is refreshed.
    Refresh {
        /// The mapping's index.
        mapping: usize,
        /// The suite directory.
        suite: String,
        /// The index, relative to the suite directory.
        rel: String,
    },
}

/// The temporary directory of the storage, never a key.
pub(crate) const TMP_DIR: &str = ".tmp";

/// True when `key` may name a file of the storage: a safe relative path
/// ([`aptindex::path::is_safe_relative`]) outside the temporary directory.
pub(crate) fn safe_key(key: &str) -> bool {
    aptindex::path::is_safe_relative(key) && !key.starts_with(TMP_DIR)
}

/// The content tag of a file no index lists.
const UNVERIFIED_TAG: &str = "u";

/// True when storage key `key` names a file no index lists (kept
/// unverified, under its own budget).
pub(crate) fn is_unverified_key(key: &str) -> bool {
    key.rsplit_once('#')
        .is_some_and(|(_, tag)| tag == UNVERIFIED_TAG)
}

/// A storage key split into its mapping prefix, repository path and
/// content tag (`<prefix>/<path>#<tag>`); `None` for a name the cacher
/// does not make (a file left in `cache_dir` by something else).
pub(crate) fn split_key(key: &str) -> Option<(&str, &str, &str)> {
    let (name, tag) = key.rsplit_once('#')?;
    let (prefix, path) = name.split_once('/')?;
    (!prefix.is_empty() && !path.is_empty() && !tag.is_empty()).then_some((prefix, path, tag))
}

/// The content tag of a file expected to have checksums `cs` (the last
/// part of its storage key).
pub(crate) fn tag(cs: &Checksums) -> String {
    cs.strongest()
        .and_then(|k| cs.hex(k))
        .unwrap_or_else(|| format!("s{}", cs.size))
}

impl CacheKey {
    /// The key of repository path `path` of the mapping with `prefix`,
    /// given what the served indices say about it: listed → kept under its
    /// checksums; listed by none → a pool file is kept unverified, anything
    /// else passed through; undecided → passed through, not cached.
    pub fn for_file(prefix: &str, path: &str, lookup: &Lookup) -> CacheKey {
        let (prefix, path) = (prefix.to_string(), path.to_string());
        match lookup {
            Lookup::Listed(cs) => CacheKey::Stored {
                prefix,
                path,
                expected: Some(cs.clone()),
            },
            Lookup::Unlisted if path.starts_with("pool/") => CacheKey::Stored {
                prefix,
                path,
                expected: None,
            },
            Lookup::Unlisted => CacheKey::Pass {
                prefix,
                path,
                undecided: false,
            },
            Lookup::Undecided => CacheKey::Pass {
                prefix,
                path,
                undecided: true,
            },
        }
    }

    /// True when the file is kept in the storage once downloaded.
    pub fn is_kept(&self) -> bool {
        self.storage_key().is_some()
    }

    /// The checksums the file must have, if known.
    pub fn expected(&self) -> Option<&Checksums> {
        match self {
            CacheKey::Stored { expected, .. } => expected.as_ref(),
            _ => None,
        }
    }

    /// The name of the file in the storage (`<prefix>/<path>#<tag>`), if it
    /// is kept there and the name is a safe relative path.
    pub fn storage_key(&self) -> Option<String> {
        let CacheKey::Stored {
            prefix,
            path,
            expected,
        } = self
        else {
            return None;
        };
        let tag = expected
            .as_ref()
            .map_or_else(|| UNVERIFIED_TAG.to_string(), tag);
        let key = format!("{prefix}/{path}#{tag}");
        safe_key(&key).then_some(key)
    }

    /// The key of the in-flight table: one upstream download per value.
    pub fn coalesce_key(&self) -> String {
        match self {
            CacheKey::Stored { .. } => match self.storage_key() {
                Some(k) => format!("store:{k}"),
                // Never stored: cache/mod.rs passes it through unkept
                // (Commit::Discard); mapping.rs refuses such paths first.
                None => format!("store:{}#unsafe", self.what()),
            },
            CacheKey::Pass { prefix, path, .. } => format!("pass:{prefix}/{path}"),
            CacheKey::Generation {
                mapping,
                generation,
                path,
            } => format!("meta/{mapping}/{generation}/{path}"),
            CacheKey::Refresh {
                mapping,
                suite,
                rel,
            } => format!("refresh/{mapping}/{suite}/{rel}"),
        }
    }

    /// Mapping and path, for logs (generation keys: mapping index and path).
    pub fn what(&self) -> String {
        match self {
            CacheKey::Stored { prefix, path, .. } | CacheKey::Pass { prefix, path, .. } => {
                format!("{prefix}/{path}")
            }
            CacheKey::Generation { mapping, path, .. } => format!("{mapping}/{path}"),
            CacheKey::Refresh {
                mapping,
                suite,
                rel,
            } => format!("{mapping}/{}", aptindex::path::join(suite, rel)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_keys() {
        let cs = Checksums {
            size: 5,
            ..Default::default()
        };
        let k = CacheKey::for_file("m", "pool/a.deb", &Lookup::Listed(cs));
        assert_eq!(k.storage_key().as_deref(), Some("m/pool/a.deb#s5"));
        assert_eq!(k.coalesce_key(), "store:m/pool/a.deb#s5");
        let k = CacheKey::for_file("m", "pool/a.deb", &Lookup::Unlisted);
        assert_eq!(k.storage_key().as_deref(), Some("m/pool/a.deb#u"));
        let k = CacheKey::for_file("m", "x/a.deb", &Lookup::Unlisted);
        assert_eq!(k.storage_key(), None);
        assert_eq!(k.coalesce_key(), "pass:m/x/a.deb");
        let k = CacheKey::for_file("m", "pool/a.deb", &Lookup::Undecided);
        assert_eq!(k.storage_key(), None);
        let k = CacheKey::for_file("m", "pool/../a.deb", &Lookup::Unlisted);
        assert_eq!(k.storage_key(), None, "unsafe paths are never stored");
        assert_eq!(
            split_key("m/pool/a#b.deb#s5"),
            Some(("m", "pool/a#b.deb", "s5"))
        );
        for odd in ["m/pool/a.deb", "pool#s5", "/pool/a#s5", "m/#s5", "m/a#"] {
            assert_eq!(split_key(odd), None, "{odd}");
        }
    }
}
