//! Memory maps of large complete cache files, so a cache hit is written to
//! the client straight from the page cache: one copy per byte (into the
//! socket) instead of two (into a buffer, then into the socket), which is
//! what brings one client's throughput close to a `sendfile` server's.
//! Concurrent responses for one file share one map, found by device and
//! inode, so its pages are mapped (and counted in RSS) once.
//!
//! A map is only used when every page of the file is already in the page
//! cache (`mincore`): that is exactly when the copy is the bottleneck, and
//! it keeps disk reads, and so disk read errors, out of the map. A page
//! that fails to read through a map raises SIGBUS, which would kill the
//! whole proxy, where `read` fails one request. Files on disk are read
//! into buffers; the disk is then slower than the copy anyway.
//!
//! Why this is sound: maps are only taken of files the cacher published
//! itself by renaming a verified temporary file into place (the store and
//! the metadata generations). Such a file is never written or truncated in
//! place afterwards: it is replaced by rename and removed by unlink, and
//! neither disturbs an existing map. Someone truncating a cache file in
//! place from outside while it is being served would make the process
//! fault (SIGBUS); the operators' guide says not to edit the cache by hand.
//! The remaining risk is a page evicted under memory pressure between the
//! residency check and the send, whose re-read then fails on a failing disk.
//!
//! A download in flight is mapped too ([`map_download`]), so that the many
//! clients of one cold file (they all follow the same download) are served
//! like hits instead of each copying every chunk out of the temporary file.
//! Its temporary file is first extended to the announced length, so the map
//! never reaches past the end of the file; it is only ever written
//! sequentially by its download and unlinked or renamed, never truncated.
//! Readers only slice bytes the download has already written, and only
//! frames whose pages are resident ([`resident_range`]); others are read.
//!
//! Every map keeps its file open and is registered by address, so the
//! client socket ([`crate::sendfile`]) can recognise a body slice that lies
//! in a map and hand the kernel the file range instead (`sendfile(2)`: the
//! socket takes the page-cache pages themselves, no copy at all).

use bytes::Bytes;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, RwLock, Weak};

/// Files at least this large are served from a map; smaller ones are read
/// into buffers (a map costs a system call and page-table set-up that only
/// pays off for large files).
pub const MIN_MAPPED: u64 = 4 << 20;

/// Body frames sent from a map: slices of this size, so hyper writes from
/// the map directly and a slow client holds no more than a few of them.
pub const FRAME: usize = 1 << 20;

/// A read-only map of a whole file, and the file (for `sendfile`).
pub struct Map {
    mmap: memmap2::Mmap,
    file: File,
}

impl Map {
    /// Maps `file` (which stays open as long as the map) and registers the
    /// map's address range.
    ///
    /// # Safety
    /// The file must not be truncated while the map lives, and no byte of
    /// it may be read through the map before it is written (see the module
    /// documentation).
    #[allow(unsafe_code)]
    unsafe fn new(file: &File) -> std::io::Result<Arc<Map>> {
        let file = file.try_clone()?;
        // SAFETY: the caller's promise.
        let mmap = unsafe { memmap2::Mmap::map(&file)? };
        let map = Arc::new(Map { mmap, file });
        let mut regions = REGIONS.write().unwrap_or_else(|e| e.into_inner());
        regions.insert(
            map.mmap.as_ptr() as usize,
            (map.len(), Arc::downgrade(&map)),
        );
        Ok(map)
    }

    /// The mapped file (crate-private: it is open for writing, and the map
    /// is only sound while nobody truncates it).
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    fn len(&self) -> usize {
        self.mmap.len()
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // Before the unmap (the fields drop after this), so no other map
        // can have been placed at this address yet.
        let mut regions = REGIONS.write().unwrap_or_else(|e| e.into_inner());
        regions.remove(&(self.mmap.as_ptr() as usize));
    }
}

/// A map shared by the responses that serve it.
struct Shared(Arc<Map>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0.mmap
    }
}

/// Live maps by (device, inode).
static MAPS: Mutex<BTreeMap<(u64, u64), Weak<Map>>> = Mutex::new(BTreeMap::new());

/// Live maps by start address: their length and the map.
static REGIONS: RwLock<BTreeMap<usize, (usize, Weak<Map>)>> = RwLock::new(BTreeMap::new());

/// If `buf` lies wholly inside a live map made here: that map and the file
/// offset where `buf` starts. The map stays alive while the caller holds
/// it, so the file range stays valid.
pub fn file_range(buf: &[u8]) -> Option<(Arc<Map>, u64)> {
    let addr = buf.as_ptr() as usize;
    let (offset, weak) = {
        let regions = REGIONS.read().unwrap_or_else(|e| e.into_inner());
        let (&start, (len, weak)) = regions.range(..=addr).next_back()?;
        let offset = addr - start;
        if offset.checked_add(buf.len())? > *len {
            return None;
        }
        (offset, weak.clone())
    };
    // Upgraded only after the lock is released: if this turns out to be the
    // last reference, its drop takes the write lock (`Map::drop`). A map
    // that died meanwhile (and any new one at its address) is simply not
    // found; the caller then writes the bytes as they are.
    let map = weak.upgrade()?;
    Some((map, offset as u64))
}

/// The whole content of `file` (a complete cache file of at least
/// [`MIN_MAPPED`] bytes) as [`Bytes`] backed by a shared read-only map, if
/// all of it is in the page cache; `None` otherwise (read it instead). The
/// map lives while any slice of it does.
///
/// # Safety
/// `file` must be immutable: never written, truncated or extended while
/// any map of it lives (the cacher's published files: replaced by rename,
/// removed by unlink; or a finished download).
#[allow(unsafe_code)]
pub unsafe fn map(file: &File) -> std::io::Result<Option<Bytes>> {
    let meta = file.metadata()?;
    let key = (meta.dev(), meta.ino());
    let mut maps = MAPS.lock().unwrap_or_else(|e| e.into_inner());
    let m = match maps.get(&key).and_then(Weak::upgrade) {
        Some(m) if m.len() as u64 == meta.len() => m,
        _ => {
            // SAFETY: the caller's promise (see the module documentation).
            let m = unsafe { Map::new(file)? };
            maps.retain(|_, w| w.strong_count() > 0);
            maps.insert(key, Arc::downgrade(&m));
            m
        }
    };
    drop(maps);
    Ok(resident(&m).then(|| Bytes::from_owner(Shared(m))))
}

/// Downloads larger than this are not mapped while in flight (the map is
/// address space, and extending the temporary file up front trusts the
/// announced length that far).
pub const MAX_DOWNLOAD_MAPPED: u64 = 64 << 30;

/// A map of the temporary file of a download that will be `len` bytes long
/// (at least [`MIN_MAPPED`], at most [`MAX_DOWNLOAD_MAPPED`]; `None`
/// otherwise). The file is extended to `len` first (on a file system
/// without sparse files that writes zeros: call this on the blocking pool);
/// if mapping then fails, it is cut back to empty and `Err` returned. The map
/// is registered like a complete file's, so the published file's readers
/// share it.
///
/// # Safety
/// `file` must be empty and, while any slice of the map lives, only be
/// written sequentially from offset 0 by its download, never truncated; and
/// no byte of the map may be read before the download has written it.
#[allow(unsafe_code)]
pub unsafe fn map_download(file: &File, len: u64) -> std::io::Result<Option<Bytes>> {
    if !(MIN_MAPPED..=MAX_DOWNLOAD_MAPPED).contains(&len) {
        return Ok(None);
    }
    file.set_len(len)?;
    // SAFETY: the caller's promise; the file is already `len` bytes long.
    let mapped = file
        .metadata()
        .and_then(|meta| Ok((meta, unsafe { Map::new(file)? })));
    let (meta, m) = match mapped {
        Ok(v) => v,
        Err(e) => {
            // No map exists: nothing written yet, back to empty.
            file.set_len(0)?;
            return Err(e);
        }
    };
    let mut maps = MAPS.lock().unwrap_or_else(|e| e.into_inner());
    maps.retain(|_, w| w.strong_count() > 0);
    maps.insert((meta.dev(), meta.ino()), Arc::downgrade(&m));
    Ok(Some(Bytes::from_owner(Shared(m))))
}

/// True when every page of `m` is in the page cache.
fn resident(m: &Map) -> bool {
    pages_resident(m.mmap.as_ptr(), m.len())
}

/// True when every page of `map[from..to]` (a slice of a map returned by
/// this module) is in the page cache.
pub fn resident_range(map: &Bytes, from: usize, to: usize) -> bool {
    match map.get(from..to) {
        Some(s) => pages_resident(s.as_ptr(), s.len()),
        None => false,
    }
}

/// True when every page touching `len` bytes at `ptr` (inside a live map)
/// is in the page cache.
fn pages_resident(ptr: *const u8, len: usize) -> bool {
    if len == 0 {
        return true;
    }
    // SAFETY: sysconf has no preconditions.
    #[allow(unsafe_code)]
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
        .unwrap_or(4096)
        .max(1);
    let addr = ptr as usize;
    let start = addr - addr % page;
    let span = addr + len - start;
    let mut vec = vec![0u8; span.div_ceil(page)];
    // SAFETY: `start..addr + len` lies within the pages of a live map
    // (maps are page-aligned and whole pages), `start` is page-aligned, and
    // `vec` has one byte per page of the range, as mincore(2) requires.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::mincore(start as *mut libc::c_void, span, vec.as_mut_ptr()) };
    rc == 0 && vec.iter().all(|b| b & 1 == 1)
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
        f.as_file().sync_all().unwrap();
        // Just written: in the page cache. (SAFETY, here and below: the
        // file is not changed while mapped.)
        #[allow(unsafe_code)]
        let a = unsafe { map(f.as_file()) }.unwrap().expect("resident");
        #[allow(unsafe_code)]
        let b = unsafe { map(&File::open(f.path()).unwrap()) }
            .unwrap()
            .expect("resident");
        assert_eq!(&a[..], &data[..]);
        assert_eq!(a.as_ptr(), b.as_ptr(), "one map for one file");
        drop((a, b));
        #[allow(unsafe_code)]
        let c = unsafe { map(f.as_file()) }.unwrap().expect("resident");
        assert_eq!(c.len(), data.len());
    }

    #[test]
    fn files_not_in_the_page_cache_are_not_mapped() {
        use std::os::fd::AsRawFd;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&vec![7u8; MIN_MAPPED as usize]).unwrap();
        f.as_file().sync_all().unwrap();
        // Clean pages: DONTNEED drops them from the page cache.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::posix_fadvise(f.as_file().as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED)
        };
        assert_eq!(rc, 0);
        #[allow(unsafe_code)]
        let m = unsafe { map(f.as_file()) }.unwrap();
        assert!(m.is_none());
    }
}
