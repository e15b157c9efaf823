//! The pool map of an index, persisted next to it: a restart reads back
//! what the pool lookup needs instead of decompressing and parsing every
//! cached index again, so a cached pool file is a verified hit from the
//! first request (issue 12, "instant restart").
//!
//! One *sidecar* per index that names pool files, at
//! `gen-<id>/.pool/<index path relative to the suite>.map`, written
//! atomically (temporary file, fsync, rename) before the index enters
//! the generation, and hard-linked along with an index a new generation
//! carries. The format (little-endian):
//!
//! ```text
//! magic "APTCPOOL" | version u32 | index size u64 | index digest kind u8 | digest
//! | entry count u64 | entries: path length u16, path, size u64, kind u8, digest
//! | SHA-256 of everything before it
//! ```
//!
//! The header names the index's own size and strongest digest as the
//! Release gives them, so a sidecar only ever describes those exact bytes:
//! a sidecar of another index (an older generation's, a file moved by
//! hand) does not match and is not used. Reading is bounded like parsing
//! the index (`max_index_entries`, [`MAX_PATH_LEN`], the path-bytes cap);
//! anything wrong (missing, truncated, another version, another index,
//! garbage) is a [`StoreError`], and the caller parses the index as before
//! and writes the sidecar again.

use super::pool_entry::{PoolEntry, PoolMap};
use aptindex::checksum::{Checksums, HashKind, Hasher};
use aptindex::index::bounded::{path_bytes_cap, Bounds, MAX_PATH_LEN};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The first bytes of every sidecar.
const MAGIC: &[u8; 8] = b"APTCPOOL";
/// The format this code writes and reads.
pub(crate) const VERSION: u32 = 1;
/// The directory of a generation holding the sidecars.
pub(crate) const STORE_DIR: &str = ".pool";

/// Why a sidecar was not used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// It cannot be read (missing, permissions).
    #[error("{path}: {source}")]
    Io {
        /// The sidecar.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// Its bytes are not a sidecar of this version for this index.
    #[error("{path}: {reason}")]
    Invalid {
        /// The sidecar.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The sidecar of index `rel` (relative to the suite directory) in the
/// generation directory `gen_dir`.
pub(crate) fn sidecar_path(gen_dir: &Path, rel: &str) -> PathBuf {
    gen_dir.join(STORE_DIR).join(format!("{rel}.map"))
}

fn kind_code(kind: HashKind) -> u8 {
    match kind {
        HashKind::Md5 => 1,
        HashKind::Sha1 => 2,
        HashKind::Sha256 => 3,
        HashKind::Sha512 => 4,
    }
}

fn kind_of(code: u8) -> Option<HashKind> {
    HashKind::ALL.into_iter().find(|k| kind_code(*k) == code)
}

/// `cs`'s strongest digest with its kind.
fn strongest(cs: &Checksums) -> Option<(HashKind, &[u8])> {
    let kind = cs.strongest()?;
    Some((kind, cs.get(kind)?))
}

/// Sets digest `kind` of `cs` to `bytes` (of the kind's length).
fn set_digest(cs: &mut Checksums, kind: HashKind, bytes: &[u8]) -> Option<()> {
    match kind {
        HashKind::Md5 => cs.md5 = Some(bytes.try_into().ok()?),
        HashKind::Sha1 => cs.sha1 = Some(bytes.try_into().ok()?),
        HashKind::Sha256 => cs.sha256 = Some(bytes.try_into().ok()?),
        HashKind::Sha512 => cs.sha512 = Some(bytes.try_into().ok()?),
    }
    Some(())
}

/// The sidecar bytes of `map`, the pool map of the index whose Release
/// checksums are `index`; `None` when the index has no digest.
pub(crate) fn encode(index: &Checksums, map: &PoolMap) -> Option<Vec<u8>> {
    let (kind, digest) = strongest(index)?;
    let mut out = Vec::with_capacity(64 + map.len() * 80);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&index.size.to_le_bytes());
    out.push(kind_code(kind));
    out.extend_from_slice(digest);
    out.extend_from_slice(&(map.len() as u64).to_le_bytes());
    for (path, entry) in map.iter() {
        let cs = entry.checksums();
        let Ok(len) = u16::try_from(path.len()) else {
            continue;
        };
        let Some((kind, digest)) = strongest(&cs) else {
            continue;
        };
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&cs.size.to_le_bytes());
        out.push(kind_code(kind));
        out.extend_from_slice(digest);
    }
    let sum = sha256(&out);
    out.extend_from_slice(&sum);
    Some(out)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h = Hasher::new(&[HashKind::Sha256]);
    h.update(data);
    h.finish().sha256.unwrap_or_default()
}

/// Reads `data` from its start, one field at a time.
struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.data.len() < n {
            return None;
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn digest(&mut self) -> Option<(HashKind, &'a [u8])> {
        let kind = kind_of(self.u8()?)?;
        Some((kind, self.take(kind.len())?))
    }
}

/// The pool map in sidecar bytes `data` (read from `path`, for errors),
/// if they describe the index with Release checksums `index`, within `bounds`.
pub(crate) fn decode(
    path: &Path,
    data: &[u8],
    index: &Checksums,
    bounds: Bounds,
) -> Result<PoolMap, StoreError> {
    let bad = |reason| StoreError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let truncated = || bad("truncated");
    if data.len() < MAGIC.len() + 4 + 32 {
        return Err(truncated());
    }
    let (body, sum) = data.split_at(data.len() - 32);
    let mut c = Cursor { data: body };
    if c.take(MAGIC.len()) != Some(&MAGIC[..]) {
        return Err(bad("not a pool map (wrong magic)"));
    }
    if c.u32().ok_or_else(truncated)? != VERSION {
        return Err(bad("another format version"));
    }
    if sha256(body)[..] != sum[..] {
        return Err(bad("damaged (its checksum does not match)"));
    }
    let size = c.u64().ok_or_else(truncated)?;
    let (kind, digest) = c.digest().ok_or_else(|| bad("bad index digest"))?;
    if size != index.size || index.get(kind) != Some(digest) || index.strongest() != Some(kind) {
        return Err(bad("made for other index bytes"));
    }
    let count = c.u64().ok_or_else(truncated)?;
    if count > bounds.max_entries {
        return Err(bad("more entries than max_index_entries"));
    }
    let path_cap = path_bytes_cap(bounds.max_entries);
    let mut path_bytes = 0u64;
    // Each entry takes at least 2 + 1 + 8 + 1 + 16 bytes: no allocation
    // beyond what the file holds.
    let room = (c.data.len() / 28).min(usize::try_from(count).unwrap_or(usize::MAX));
    let mut map: HashMap<Box<str>, PoolEntry> = HashMap::with_capacity(room);
    for _ in 0..count {
        let len = usize::from(c.u16().ok_or_else(truncated)?);
        if len == 0 || len > MAX_PATH_LEN {
            return Err(bad("a path over the length cap"));
        }
        path_bytes += len as u64;
        if path_bytes > path_cap {
            return Err(bad("paths over the path-bytes cap"));
        }
        let name = c.take(len).ok_or_else(truncated)?;
        let name = std::str::from_utf8(name).map_err(|_| bad("a path that is not UTF-8"))?;
        let mut cs = Checksums {
            size: c.u64().ok_or_else(truncated)?,
            ..Checksums::default()
        };
        let (kind, digest) = c.digest().ok_or_else(|| bad("bad entry digest"))?;
        set_digest(&mut cs, kind, digest).ok_or_else(|| bad("bad entry digest"))?;
        let entry = PoolEntry::new(&cs).ok_or_else(|| bad("bad entry digest"))?;
        map.insert(name.into(), entry);
    }
    if !c.data.is_empty() {
        return Err(bad("bytes after the last entry"));
    }
    map.shrink_to_fit();
    Ok(Arc::new(map))
}

/// Reads the sidecar of index `rel` in `gen_dir` (see [`decode`]).
pub(crate) fn load(
    gen_dir: &Path,
    rel: &str,
    index: &Checksums,
    bounds: Bounds,
) -> Result<PoolMap, StoreError> {
    let path = sidecar_path(gen_dir, rel);
    let io = |source| StoreError::Io {
        path: path.clone(),
        source,
    };
    let file = std::fs::File::open(&path).map_err(io)?;
    // A sidecar is never larger than its bounded entries: read no more.
    let cap =
        64 + bounds.max_entries.saturating_mul(2 + 8 + 1 + 64) + path_bytes_cap(bounds.max_entries);
    let mut data = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(io)?;
    if data.len() as u64 > cap {
        return Err(StoreError::Invalid {
            path,
            reason: "larger than its entry cap allows",
        });
    }
    decode(&path, &data, index, bounds)
}

/// Writes the sidecar of index `rel` (Release checksums `index`) into
/// `gen_dir` atomically; nothing is written for an index without a digest.
pub(crate) fn store(
    gen_dir: &Path,
    rel: &str,
    index: &Checksums,
    map: &PoolMap,
) -> Result<(), aptindex::tree::TreeError> {
    match encode(index, map) {
        Some(data) => aptindex::tree::atomic::write_file(&sidecar_path(gen_dir, rel), &data),
        None => Ok(()),
    }
}

/// Gives index `rel` of the new generation `gen_dir` (carried from
/// `old_dir`, the same bytes) its sidecar: a hard link to the old one when
/// there is one (its header still names those bytes, checked when it is
/// read), else written from `map`.
pub(crate) fn carry(
    old_dir: &Path,
    gen_dir: &Path,
    rel: &str,
    index: &Checksums,
    map: &PoolMap,
) -> Result<(), aptindex::tree::TreeError> {
    let (src, dest) = (sidecar_path(old_dir, rel), sidecar_path(gen_dir, rel));
    let linked = src.is_file()
        && dest
            .parent()
            .is_some_and(|p| aptindex::fsmode::create_dir_all(p).is_ok())
        && std::fs::hard_link(&src, &dest).is_ok();
    if linked {
        return Ok(());
    }
    store(gen_dir, rel, index, map)
}

#[cfg(test)]
mod tests;
