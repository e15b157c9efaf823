//! Files of an earlier snapshot that can be hard-linked instead of
//! downloaded: found by path or by content in its `info.json`, or, for a
//! snapshot without one, by path and size (then hashed before use).

use crate::info::{FileInfo, Info};
use aptindex::checksum::Checksums;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// A file of an earlier snapshot that may replace a download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reuse {
    /// Its size and hashes, recorded in `info.json`, match.
    Known(PathBuf),
    /// The earlier snapshot has no `info.json` (e.g. made by go-apt-mirror):
    /// a file at the same path with the same size, to be hashed before use.
    Unverified(PathBuf),
}

/// Finds files of an earlier snapshot that can be hard-linked instead of
/// downloaded: same path or same content, with size and hashes matching.
/// It borrows the snapshot's `info.json`; the index by content is built on
/// the first look-up that needs it.
#[derive(Debug, Default)]
pub struct ReuseIndex<'a> {
    tree: PathBuf,
    unverified: bool,
    files: Option<&'a BTreeMap<String, FileInfo>>,
    by_digest: std::sync::OnceLock<HashMap<&'a [u8], &'a str>>,
}

impl<'a> ReuseIndex<'a> {
    /// An index of `info`'s files in the tree `tree`.
    pub fn new(tree: &Path, info: &'a Info) -> ReuseIndex<'a> {
        ReuseIndex {
            tree: tree.to_path_buf(),
            files: Some(&info.files),
            ..Default::default()
        }
    }

    /// An index of a tree without `info.json`: files at the same path and of
    /// the same size are offered as [`Reuse::Unverified`].
    pub fn unverified(tree: &Path) -> ReuseIndex<'a> {
        ReuseIndex {
            tree: tree.to_path_buf(),
            unverified: true,
            ..Default::default()
        }
    }

    /// Number of files known.
    pub fn len(&self) -> usize {
        self.files.map_or(0, BTreeMap::len)
    }

    /// True when nothing is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A file of an earlier snapshot whose size and hashes match `expected`.
    pub fn find(&self, path: &str, expected: &Checksums) -> Option<Reuse> {
        if self.unverified {
            let candidate = self.tree.join(path);
            let meta = std::fs::symlink_metadata(&candidate).ok()?;
            return (meta.is_file() && meta.len() == expected.size)
                .then_some(Reuse::Unverified(candidate));
        }
        let files = self.files?;
        if let Some(old) = files.get(path) {
            if old.describes(expected) {
                return Some(Reuse::Known(self.tree.join(path)));
            }
        }
        let by_digest = self.by_digest.get_or_init(|| {
            files
                .iter()
                .filter_map(|(p, fi)| Some((fi.key()?, p.as_str())))
                .collect()
        });
        let key = FileInfo::from_checksums(expected);
        let other = by_digest.get(key.key()?)?;
        let old = files.get(*other)?;
        old.describes(expected)
            .then(|| Reuse::Known(self.tree.join(other)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(size: u64, b: u8) -> Checksums {
        Checksums {
            size,
            md5: Some([b; 16]),
            sha256: Some([b; 32]),
            ..Default::default()
        }
    }

    #[test]
    fn reuse_by_path_and_by_content() {
        let mut info = Info::default();
        info.files
            .insert("pool/a.deb".into(), FileInfo::from_checksums(&sums(10, 1)));
        let idx = ReuseIndex::new(Path::new("/t"), &info);
        assert_eq!(
            idx.find("pool/a.deb", &sums(10, 1)),
            Some(Reuse::Known(PathBuf::from("/t/pool/a.deb")))
        );
        assert_eq!(
            idx.find("pool/b.deb", &sums(10, 1)),
            Some(Reuse::Known(PathBuf::from("/t/pool/a.deb")))
        );
        assert_eq!(idx.find("pool/a.deb", &sums(10, 2)), None);
        assert_eq!(idx.find("pool/a.deb", &sums(11, 1)), None);
        let mut only_md5 = sums(10, 1);
        only_md5.sha256 = None;
        assert!(idx.find("pool/a.deb", &only_md5).is_some());
        let mut with_512 = sums(10, 1);
        with_512.sha512 = Some([1; 64]);
        assert!(idx.find("pool/a.deb", &with_512).is_none());
        let mut sha1_only = Checksums {
            size: 10,
            sha1: Some([1; 20]),
            ..Default::default()
        };
        assert!(idx.find("pool/a.deb", &sha1_only).is_none());
        sha1_only.md5 = Some([1; 16]);
        assert!(idx.find("pool/a.deb", &sha1_only).is_none());
    }
}
