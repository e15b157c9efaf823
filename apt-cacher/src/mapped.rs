//! Memory maps of large complete cache files, so a cache hit is written to
//! the client straight from the page cache: one copy per byte (into the
//! socket) instead of two (into a buffer, then into the socket), which is
//! what brings one client's throughput close to a `sendfile` server's.
//! Concurrent responses for one file share one map, found by device and
//! inode, so its pages are mapped (and counted in RSS) once.
//!
//! Why this is sound: maps are only taken of files the cacher published
//! itself by renaming a verified temporary file into place (the store and
//! the metadata generations). Such a file is never written or truncated in
//! place afterwards: it is replaced by rename and removed by unlink, and
//! neither disturbs an existing map. Someone truncating a cache file in
//! place from outside while it is being served would make the process
//! fault (SIGBUS); the operators' guide says not to edit the cache by hand.

use bytes::Bytes;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, Weak};

/// Files at least this large are served from a map; smaller ones are read
/// into buffers (a map costs a system call and page-table set-up that only
/// pays off for large files).
pub const MIN_MAPPED: u64 = 4 << 20;

/// A map shared by the responses that serve it.
struct Shared(Arc<memmap2::Mmap>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Live maps by (device, inode).
static MAPS: Mutex<BTreeMap<(u64, u64), Weak<memmap2::Mmap>>> = Mutex::new(BTreeMap::new());

/// The whole content of `file` (a complete cache file of at least
/// [`MIN_MAPPED`] bytes) as [`Bytes`] backed by a shared read-only map; the
/// map lives while any slice of it does.
pub fn map(file: &File) -> std::io::Result<Bytes> {
    let meta = file.metadata()?;
    let key = (meta.dev(), meta.ino());
    let mut maps = MAPS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = maps.get(&key).and_then(Weak::upgrade) {
        if m.len() as u64 == meta.len() {
            return Ok(Bytes::from_owner(Shared(m)));
        }
    }
    // SAFETY: see the module documentation: cache files are immutable once
    // published (replaced by rename, removed by unlink, never truncated).
    #[allow(unsafe_code)]
    let m = Arc::new(unsafe { memmap2::Mmap::map(file)? });
    maps.retain(|_, w| w.strong_count() > 0);
    maps.insert(key, Arc::downgrade(&m));
    Ok(Bytes::from_owner(Shared(m)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn maps_are_shared_and_exact() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let data: Vec<u8> = (0..(MIN_MAPPED as usize + 3)).map(|i| i as u8).collect();
        f.write_all(&data).unwrap();
        let a = map(f.as_file()).unwrap();
        let b = map(&File::open(f.path()).unwrap()).unwrap();
        assert_eq!(&a[..], &data[..]);
        assert_eq!(a.as_ptr(), b.as_ptr(), "one map for one file");
        drop((a, b));
        let c = map(f.as_file()).unwrap();
        assert_eq!(c.len(), data.len());
    }
}
