//! One pool file as the pool map keeps it: its size and its strongest
//! digest only. An index may list up to `max_index_entries` files (a
//! million by default) and every one is held while its generation lives,
//! so the entry is about a third of a [`Checksums`] with every digest
//! (verifying against the strongest digest is what counts).

use aptindex::checksum::{Checksums, HashKind};
use std::collections::HashMap;
use std::sync::Arc;

/// The pool files one index names, with their checksums (shared by the
/// generations that hold the index and by [`super::pool_index::PoolIndex`]).
pub(crate) type PoolMap = Arc<HashMap<Box<str>, PoolEntry>>;

/// A pool file's expected size and strongest digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PoolEntry {
    size: u64,
    digest: Digest,
}

/// The strongest digest an index gives (SHA-512 boxed: rare, and large).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Digest {
    Md5([u8; 16]),
    Sha1([u8; 20]),
    Sha256([u8; 32]),
    Sha512(Box<[u8; 64]>),
}

impl PoolEntry {
    /// The compact form of `cs`; `None` when it has no digest (such
    /// entries are skipped as bad before they get here).
    pub(crate) fn new(cs: &Checksums) -> Option<PoolEntry> {
        let digest = match cs.strongest()? {
            HashKind::Sha512 => Digest::Sha512(Box::new(cs.sha512?)),
            HashKind::Sha256 => Digest::Sha256(cs.sha256?),
            HashKind::Sha1 => Digest::Sha1(cs.sha1?),
            HashKind::Md5 => Digest::Md5(cs.md5?),
        };
        Some(PoolEntry {
            size: cs.size,
            digest,
        })
    }

    /// The checksums to verify the file against.
    pub(crate) fn checksums(&self) -> Checksums {
        let mut cs = Checksums {
            size: self.size,
            ..Checksums::default()
        };
        match &self.digest {
            Digest::Md5(d) => cs.md5 = Some(*d),
            Digest::Sha1(d) => cs.sha1 = Some(*d),
            Digest::Sha256(d) => cs.sha256 = Some(*d),
            Digest::Sha512(d) => cs.sha512 = Some(**d),
        }
        cs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_size_and_strongest_digest() {
        let cs = Checksums {
            size: 7,
            md5: Some([1; 16]),
            sha256: Some([2; 32]),
            ..Checksums::default()
        };
        let e = PoolEntry::new(&cs).unwrap();
        assert_eq!(
            e.checksums(),
            Checksums {
                size: 7,
                sha256: Some([2; 32]),
                ..Checksums::default()
            }
        );
        assert!(PoolEntry::new(&Checksums::default()).is_none());
        assert!(std::mem::size_of::<PoolEntry>() <= 48);
    }
}
