//! `info.json`: what a snapshot holds (every file's size and hashes, the
//! by-hash names it made, the pool files it carried, the Release files it
//! withheld), and the rule for "same bytes" between two descriptions. Both
//! the snapshots ([`crate::snapshot`]) and the shared pool ([`crate::pool`])
//! read it; it depends on neither.

use aptindex::checksum::Checksums;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A digest of `N` bytes, written as lowercase hex in `info.json` (read
/// without an intermediate string: `info.json` of a large mirror is read
/// on every run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hex<const N: usize>(pub [u8; N]);

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 128];
        let out = buf
            .get_mut(..2 * N)
            .ok_or_else(|| serde::ser::Error::custom("digest too long"))?;
        hex::encode_to_slice(self.0, out).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(std::str::from_utf8(out).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de, const N: usize> Deserialize<'de> for Hex<N> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<const N: usize>;
        impl<const N: usize> serde::de::Visitor<'_> for Visitor<N> {
            type Value = Hex<N>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "{} hex digits", 2 * N)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Hex<N>, E> {
                let mut out = [0u8; N];
                hex::decode_to_slice(v, &mut out).map_err(E::custom)?;
                Ok(Hex(out))
            }
        }
        deserializer.deserialize_str(Visitor::<N>)
    }
}

/// Size and hashes of one file, as stored in `info.json` (hex digests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Size in bytes.
    pub size: u64,
    /// MD5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<Hex<16>>,
    /// SHA-1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<Hex<20>>,
    /// SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Hex<32>>,
    /// SHA-512.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha512: Option<Hex<64>>,
}

impl FileInfo {
    /// From checksums.
    pub fn from_checksums(c: &Checksums) -> FileInfo {
        FileInfo {
            size: c.size,
            md5: c.md5.map(Hex),
            sha1: c.sha1.map(Hex),
            sha256: c.sha256.map(Hex),
            sha512: c.sha512.map(Hex),
        }
    }

    /// True when this entry describes a file with the `expected` size and
    /// hashes (see [`same_content`]).
    pub fn describes(&self, expected: &Checksums) -> bool {
        matches(expected, &self.to_checksums())
    }

    /// To checksums.
    pub fn to_checksums(&self) -> Checksums {
        Checksums {
            size: self.size,
            md5: self.md5.map(|h| h.0),
            sha1: self.sha1.map(|h| h.0),
            sha256: self.sha256.map(|h| h.0),
            sha512: self.sha512.map(|h| h.0),
        }
    }

    /// The digest files are indexed by: the strongest of SHA-256, SHA-1, MD5.
    pub fn key(&self) -> Option<&[u8]> {
        if let Some(d) = &self.sha256 {
            Some(&d.0)
        } else if let Some(d) = &self.sha1 {
            Some(&d.0)
        } else {
            self.md5.as_ref().map(|d| &d.0[..])
        }
    }
}

/// `info.json`: what a snapshot holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Info {
    /// Format version (1).
    pub format: u32,
    /// The mirror ID.
    pub id: String,
    /// When the snapshot was made (RFC 3339).
    pub created: String,
    /// Fingerprint of the configuration that shaped the snapshot.
    #[serde(default)]
    pub config: String,
    /// Every regular file of the tree, by path relative to the tree.
    pub files: BTreeMap<String, FileInfo>,
    /// The `by-hash/` paths made for this snapshot's own Release files (the
    /// next snapshot carries them over so clients mid-update find them).
    #[serde(default)]
    pub by_hash: Vec<String>,
    /// Pool files the previous snapshot had and this one's indices no longer
    /// name, kept for one more generation so that clients in the middle of
    /// an update still find them.
    #[serde(default)]
    pub carried: Vec<String>,
    /// Release files fetched but not published (e.g. a `Release.gpg` that
    /// does not verify next to a good `InRelease`), by path: what they
    /// were, so that the next run sees an upstream still serving the same
    /// bytes as unchanged, and why they were left out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub withheld: BTreeMap<String, Withheld>,
}

/// A Release file left out of a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Withheld {
    /// Its size and hashes, as fetched.
    #[serde(flatten)]
    pub file: FileInfo,
    /// Why it was left out.
    pub reason: String,
}

/// Reads a JSON file; `None` if it is missing or unreadable.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let data = std::fs::read(path).ok()?;
    match serde_json::from_slice(&data) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "unreadable file ignored");
            None
        }
    }
}

/// True when `a` and `b` describe the same bytes as far as can be told
/// without reading them (see [`matches`]).
pub fn same_content(a: &Checksums, b: &Checksums) -> bool {
    matches(a, b)
}

/// Same size, and every hash both know equal, with at least one in common.
fn matches(expected: &Checksums, old: &Checksums) -> bool {
    if expected.size != old.size {
        return false;
    }
    let mut common = 0;
    macro_rules! cmp {
        ($f:ident) => {
            if let (Some(a), Some(b)) = (&expected.$f, &old.$f) {
                if a != b {
                    return false;
                }
                common += 1;
            }
        };
    }
    cmp!(md5);
    cmp!(sha1);
    cmp!(sha256);
    cmp!(sha512);
    // The strongest hash the expectation has must be known to the old file.
    let strongest_known = if expected.sha512.is_some() {
        old.sha512.is_some()
    } else if expected.sha256.is_some() {
        old.sha256.is_some()
    } else if expected.sha1.is_some() {
        old.sha1.is_some()
    } else {
        true
    };
    common > 0 && strongest_known
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
    fn withheld_release_files_round_trip_and_are_optional() {
        let mut info = Info {
            format: 1,
            id: "deb".into(),
            ..Default::default()
        };
        let plain = serde_json::to_string(&info).unwrap();
        assert!(!plain.contains("withheld"), "{plain}");
        info.withheld.insert(
            "dists/s/Release.gpg".into(),
            Withheld {
                file: FileInfo::from_checksums(&sums(7, 3)),
                reason: "BAD signature".into(),
            },
        );
        let back: Info = serde_json::from_str(&serde_json::to_string(&info).unwrap()).unwrap();
        let w = &back.withheld["dists/s/Release.gpg"];
        assert_eq!(w.reason, "BAD signature");
        assert!(w.file.describes(&sums(7, 3)));
        // An info.json written before the field existed still reads.
        let old: Info = serde_json::from_str(&plain).unwrap();
        assert!(old.withheld.is_empty());
    }
}
