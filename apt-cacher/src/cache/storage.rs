//! The file cache under `cache_dir`: verified files stored by key (a
//! mapping, a repository path and a content tag, see [`super::key`]), with
//! their sizes and use order in [`super::evict`] for least-recently-used
//! eviction once the total exceeds `cache_capacity`, and temporary files in `cache_dir/.tmp` (same
//! file system, so publishing is a rename). Files are written whole to a
//! temporary file, synced, and renamed into place: a partial file is never
//! visible under its key. At start the directory is scanned (sizes and
//! modification times, in use order) and leftover temporary files are removed;
//! files kept by an older version with another mode get the cache's mode
//! (0644 minus the umask, set by the download before the rename).
//!
//! Files no index lists (keys tagged `#u`, [`super::key::is_unverified_key`])
//! have their own budget (`unverified_capacity`) and lifetime
//! (`unverified_ttl`): they are evicted among themselves, never at the
//! expense of a verified file, and an expired one is removed when asked for.
//! On a full file system [`Storage::make_room`] evicts (unverified first,
//! then least-recently-used verified files, but only for a download that
//! is itself verified) so a download can go on.

use super::evict::Lru;
use super::key::{is_unverified_key, safe_key, TMP_DIR};
use crate::metrics::Metrics;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tempfile::TempPath;

/// Which files [`Storage::make_room`] may evict: a download no index lists
/// never costs a verified file its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evictable {
    /// Unverified files first, then the least recently used verified ones.
    Any,
    /// Unverified files only.
    UnverifiedOnly,
}

impl Evictable {
    /// What a download may evict: anything when it has checksums to
    /// verify against (`expected`), otherwise only unverified files.
    pub fn for_download<T>(expected: Option<&T>) -> Evictable {
        match expected {
            Some(_) => Evictable::Any,
            None => Evictable::UnverifiedOnly,
        }
    }
}

/// The budget of the files no index lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnverifiedBudget {
    /// Bytes they may take together (besides the verified files' capacity).
    pub capacity: u64,
    /// How long one is kept after it was downloaded.
    pub ttl: Duration,
}

impl UnverifiedBudget {
    /// The default budget next to a cache of `capacity` bytes: 5 % of it,
    /// kept one day.
    pub fn default_for(capacity: u64) -> UnverifiedBudget {
        UnverifiedBudget {
            capacity: capacity / 20,
            ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// The use order of the verified files and, apart, of the unverified ones.
#[derive(Debug, Default)]
struct Index {
    verified: Lru,
    unverified: Lru,
}

impl Index {
    fn of(&mut self, key: &str) -> &mut Lru {
        if is_unverified_key(key) {
            &mut self.unverified
        } else {
            &mut self.verified
        }
    }
}

/// The files of the cache on disk (non-metadata files).
#[derive(Debug)]
pub struct Storage {
    root: PathBuf,
    tmp: PathBuf,
    capacity: u64,
    budget: UnverifiedBudget,
    index: Mutex<Index>,
    metrics: Arc<Metrics>,
    /// Whether [`Self::scan_existing`] has indexed the files found at start.
    scanned: AtomicBool,
}

impl Storage {
    /// [`Storage::open_with`] the default budget for unverified files.
    pub fn open(root: &Path, capacity: u64, metrics: Arc<Metrics>) -> io::Result<Storage> {
        Storage::open_with(
            root,
            capacity,
            UnverifiedBudget::default_for(capacity),
            metrics,
        )
    }

    /// Opens (creating if needed) the store at `root`, removes leftover
    /// temporary files and indexes what is there (expired unverified files
    /// are removed); evictions are counted in `metrics`. Blocking: call it
    /// from a blocking task.
    pub fn open_with(
        root: &Path,
        capacity: u64,
        budget: UnverifiedBudget,
        metrics: Arc<Metrics>,
    ) -> io::Result<Storage> {
        let store = Storage::open_unscanned(root, capacity, budget, metrics)?;
        store.scan_existing()?;
        Ok(store)
    }

    /// [`Self::open_with`] without indexing the files already there: call
    /// [`Self::scan_existing`] next (in the background).
    pub fn open_unscanned(
        root: &Path,
        capacity: u64,
        budget: UnverifiedBudget,
        metrics: Arc<Metrics>,
    ) -> io::Result<Storage> {
        let tmp = root.join(TMP_DIR);
        aptindex::fsmode::create_dir_all(root)?;
        match std::fs::remove_dir_all(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("removing {}: {e}", tmp.display()),
                ))
            }
        }
        std::fs::create_dir_all(&tmp)?;
        Ok(Storage {
            root: root.to_path_buf(),
            tmp,
            capacity,
            budget,
            index: Mutex::new(Index {
                verified: Lru::for_background_scan(),
                unverified: Lru::for_background_scan(),
            }),
            metrics,
            scanned: AtomicBool::new(false),
        })
    }

    /// Indexes the files already in the store (removing expired unverified
    /// ones) as used before anything stored since it was opened; then
    /// evicts down to the capacity. Until it is done, a file not indexed
    /// yet is found by [`Self::get`]'s `lstat`, and nothing is evicted
    /// (the LRU does not know the oldest files yet). Blocking: apt-cacher
    /// runs it in the background, so that the listener does not wait for
    /// a walk of a large cache.
    pub fn scan_existing(&self) -> io::Result<()> {
        let mut found = Vec::new();
        let scanned = scan(&self.root, &self.root, &mut found);
        // Oldest first, so the clock reflects use order across restarts.
        found.sort_by_key(|(_, _, t)| *t);
        let expired_before =
            crate::metrics::unix_secs(SystemTime::now()).saturating_sub(self.budget.ttl.as_secs());
        for (key, size, _) in found {
            // The lifetime counts from the download (mtime), not the last use.
            let expired = is_unverified_key(&key)
                && std::fs::metadata(self.root.join(&key))
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| crate::metrics::unix_secs(t) < expired_before);
            if expired {
                let _ = std::fs::remove_file(self.root.join(&key));
                continue;
            }
            self.lock().of(&key).insert_found(key, size);
        }
        // Even after a failed walk: what was found is indexed, and eviction
        // must not stay off.
        self.scanned.store(true, Ordering::Release);
        self.evict();
        scanned
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The budget of the unverified files.
    pub fn unverified_budget(&self) -> UnverifiedBudget {
        self.budget
    }

    /// Number of files and their total size (verified and unverified).
    pub fn usage(&self) -> (usize, u64) {
        let i = self.lock();
        (
            i.verified.len() + i.unverified.len(),
            i.verified.total() + i.unverified.total(),
        )
    }

    /// Number of unverified files and their total size.
    pub fn unverified_usage(&self) -> (usize, u64) {
        let i = self.lock();
        (i.unverified.len(), i.unverified.total())
    }

    /// The path of the file stored under `key`, marking it used; an
    /// unverified file older than its lifetime is removed instead. A file
    /// placed under `key` by another process (`apt-cacher import`, through
    /// [`place`]: verified, then renamed in) is adopted on first use.
    pub fn get(&self, key: &str) -> Option<PathBuf> {
        if !safe_key(key) {
            return None;
        }
        let path = self.root.join(key);
        let known = self.lock().of(key).touch(key);
        if !known && !self.adopt(key, &path) {
            return None;
        }
        if is_unverified_key(key) {
            let age = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok());
            if age.is_some_and(|a| a > self.budget.ttl) {
                tracing::info!(key = %key, ttl_secs = self.budget.ttl.as_secs(), "unverified file expired; removed");
                self.remove(key);
                return None;
            }
        }
        Some(path)
    }

    /// Indexes the regular file at `path` (key `key`) that this process did
    /// not place there; false when there is none. One `lstat` on a miss.
    fn adopt(&self, key: &str, path: &Path) -> bool {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return false;
        };
        if !meta.is_file() {
            return false;
        }
        if self.scanned.load(Ordering::Acquire) {
            tracing::info!(key = %key, bytes = meta.len(), "adopting a file placed in the cache by another process (apt-cacher import)");
        }
        self.lock().of(key).insert(key.to_string(), meta.len());
        self.evict();
        true
    }

    /// Forgets and deletes `key` (e.g. its file vanished or no longer verifies).
    pub fn remove(&self, key: &str) {
        if self.lock().of(key).remove(key) {
            let _ = std::fs::remove_file(self.root.join(key));
        }
    }

    /// Up to `n` verified files used after tick `after` (oldest use first):
    /// (key, size, tick), for the retention sweeper's walk in chunks.
    /// Unverified files are left out: they have their own lifetime.
    pub(crate) fn verified_after(&self, after: u64, n: usize) -> Vec<(String, u64, u64)> {
        self.lock().verified.after(after, n)
    }

    /// Forgets and deletes verified file `key` if it was not used since
    /// tick `tick` (a request that found it meanwhile keeps it); its size
    /// when removed. Readers that opened it keep their descriptor.
    pub(crate) fn remove_unused(&self, key: &str, tick: u64) -> Option<u64> {
        let size = {
            let mut i = self.lock();
            if i.verified.tick_of(key) != Some(tick) {
                return None;
            }
            let size = i.verified.size_of(key)?;
            i.verified.remove(key);
            size
        };
        match std::fs::remove_file(self.root.join(key)) {
            Ok(()) => Some(size),
            // Gone already: nothing reclaimed on disk, but forgotten.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Some(0),
            Err(e) => {
                // Still on disk: kept (and counted) as it was.
                tracing::warn!(key = %key, error = %e, "retention: cannot remove cached file");
                self.lock().verified.insert(key.to_string(), size);
                None
            }
        }
    }

    /// The directory of the temporary files.
    pub fn tmp_dir(&self) -> PathBuf {
        self.tmp.clone()
    }

    /// A new temporary file in the store's file system.
    pub fn temp_file(&self) -> io::Result<(std::fs::File, TempPath)> {
        Ok(tempfile::Builder::new()
            .prefix("dl-")
            .tempfile_in(&self.tmp)?
            .into_parts())
    }

    /// Publishes a complete, verified and synced temporary file under `key`
    /// (a rename), then evicts least-recently-used files over capacity.
    pub fn insert(&self, key: &str, temp: TempPath, size: u64) -> io::Result<PathBuf> {
        let dest = place(&self.root, key, temp)?;
        self.lock().of(key).insert(key.to_string(), size);
        self.evict();
        Ok(dest)
    }

    /// Removes least-recently-used files until the verified ones fit the
    /// capacity and the unverified ones their budget (each among its own).
    pub fn evict(&self) {
        // Not before the start-up scan: the oldest files are not indexed yet.
        if !self.scanned.load(Ordering::Acquire) {
            return;
        }
        let victims = {
            let mut i = self.lock();
            let mut v = i.verified.over(self.capacity);
            v.extend(i.unverified.over(self.budget.capacity));
            v
        };
        self.remove_victims(victims);
    }

    /// Evicts files to free at least `need` bytes on a full file system:
    /// unverified files first, then the least recently used verified ones.
    /// Returns the bytes freed (0: nothing left to evict). Blocking.
    pub fn make_room(&self, need: u64, evictable: Evictable) -> u64 {
        let (victims, freed) = {
            let mut guard = self.lock();
            let i = &mut *guard;
            let mut victims = Vec::new();
            let mut freed = 0u64;
            let lrus = match evictable {
                Evictable::Any => vec![&mut i.unverified, &mut i.verified],
                Evictable::UnverifiedOnly => vec![&mut i.unverified],
            };
            for lru in lrus {
                while freed < need {
                    let Some((key, size)) = lru.pop_oldest() else {
                        break;
                    };
                    freed += size;
                    victims.push(key);
                }
            }
            (victims, freed)
        };
        if !victims.is_empty() {
            tracing::warn!(
                files = victims.len(),
                bytes = freed,
                "file system full: evicting to make room"
            );
        }
        self.remove_victims(victims);
        freed
    }

    fn remove_victims(&self, victims: Vec<String>) {
        self.metrics.evicted(victims.len() as u64);
        for key in victims {
            tracing::debug!(key = %key, "evicting");
            let _ = std::fs::remove_file(self.root.join(&key));
        }
    }
}

/// Renames the complete, verified and synced temporary file `temp` (in
/// `root`'s `.tmp`) to `key` in the cache at `root`, durably; the one way a
/// file enters the cache ([`Storage::insert`], and `apt-cacher import`,
/// whose files a running cacher adopts when asked for them).
pub fn place(root: &Path, key: &str, temp: TempPath) -> io::Result<PathBuf> {
    if !safe_key(key) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unsafe cache key {key:?}"),
        ));
    }
    let dest = root.join(key);
    if let Some(parent) = dest.parent() {
        aptindex::fsmode::create_dir_all(parent)?;
    }
    temp.persist(&dest).map_err(|e| e.error)?;
    if let Some(parent) = dest.parent() {
        // Make the rename durable; a failure here only weakens durability.
        let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
    }
    Ok(dest)
}

/// Collects (key, size, mtime) of every regular file under `dir`, skipping `.tmp`.
fn scan(root: &Path, dir: &Path, out: &mut Vec<(String, u64, u64)>) -> io::Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("reading {}: {e}", dir.display()),
            ))
        }
    };
    for entry in rd {
        let entry = entry?;
        let ft = entry.file_type()?;
        let path = entry.path();
        if ft.is_dir() {
            if dir == root && entry.file_name() == TMP_DIR {
                continue;
            }
            scan(root, &path, out)?;
        } else if ft.is_file() {
            let Ok(meta) = entry.metadata() else { continue };
            // Kept 0600 by an older version: given the mode of the cache.
            if let Err(e) = aptindex::fsmode::heal(&path, &meta) {
                tracing::warn!(error = %e, "cached file keeps its mode");
            }
            let Some(key) = path.strip_prefix(root).ok().and_then(|p| p.to_str()) else {
                continue;
            };
            let t = meta
                .accessed()
                .ok()
                .max(meta.modified().ok())
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            out.push((key.to_string(), meta.len(), t));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn put(store: &Storage, key: &str, data: &[u8]) -> PathBuf {
        let (mut f, tp) = store.temp_file().unwrap();
        f.write_all(data).unwrap();
        f.sync_all().unwrap();
        store.insert(key, tp, data.len() as u64).unwrap()
    }

    #[test]
    fn insert_get_and_restart() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), 1 << 20, Default::default()).unwrap();
        let p = put(&s, "m/pool/a.deb#ab", b"hello");
        assert_eq!(std::fs::read(&p).unwrap(), b"hello");
        assert_eq!(s.get("m/pool/a.deb#ab"), Some(p));
        assert_eq!(s.get("m/pool/b.deb#ab"), None);
        assert_eq!(s.get("../x"), None);
        // A leftover temporary file is removed at start; the cached file is kept.
        let (_f, tp) = s.temp_file().unwrap();
        let leftover = tp.keep().unwrap();
        drop(s);
        let s = Storage::open(dir.path(), 1 << 20, Default::default()).unwrap();
        assert!(!leftover.exists());
        assert_eq!(s.usage(), (1, 5));
        assert!(s.get("m/pool/a.deb#ab").is_some());
    }

    #[test]
    fn retention_removes_only_files_unused_since_read() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), 100, Default::default()).unwrap();
        put(&s, "m/a#ab", b"1234");
        put(&s, "m/b#ab", b"12");
        put(&s, "m/u#u", b"1");
        let seen = s.verified_after(0, 10);
        let keys: Vec<&str> = seen.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(keys, ["m/a#ab", "m/b#ab"], "verified only, in use order");
        assert_eq!(s.verified_after(seen[0].2, 10).len(), 1, "after a cursor");
        // Used since it was read: kept.
        assert!(s.get("m/a#ab").is_some());
        assert_eq!(s.remove_unused("m/a#ab", seen[0].2), None);
        assert!(dir.path().join("m/a#ab").exists());
        // Not used since: removed, its size returned.
        assert_eq!(s.remove_unused("m/b#ab", seen[1].2), Some(2));
        assert!(!dir.path().join("m/b#ab").exists());
        assert_eq!(s.usage(), (2, 5));
        // The touched key moved past the cursor: a walk in chunks sees it again.
        assert_eq!(s.verified_after(seen[1].2, 10)[0].0, "m/a#ab");
    }

    #[test]
    fn files_placed_by_another_process_are_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), 1 << 20, Default::default()).unwrap();
        put(&s, "m/pool/a.deb#ab", b"hello");
        let (mut f, tp) = s.temp_file().unwrap();
        f.write_all(b"imported").unwrap();
        place(dir.path(), "m/pool/c.deb#cd", tp).unwrap();
        assert_eq!(s.usage(), (1, 5));
        assert!(s.get("m/pool/c.deb#cd").is_some());
        assert_eq!(s.usage(), (2, 13));
        // Not a regular file: not adopted.
        std::fs::create_dir_all(dir.path().join("m/pool/d.deb#cd")).unwrap();
        assert!(s.get("m/pool/d.deb#cd").is_none());
        assert_eq!(s.usage(), (2, 13));
    }

    #[test]
    fn files_found_by_the_background_scan_are_older_than_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Storage::open(dir.path(), 1 << 20, Default::default()).unwrap();
            put(&s, "m/old1", b"1234");
            put(&s, "m/old2", b"1234");
        }
        let s = Storage::open_unscanned(
            dir.path(),
            10,
            UnverifiedBudget::default_for(10),
            Default::default(),
        )
        .unwrap();
        // Before the scan: found by their lstat, nothing evicted.
        assert_eq!(s.usage(), (0, 0));
        put(&s, "m/new", b"1234");
        assert!(s.get("m/old2").is_some());
        assert_eq!(s.usage(), (2, 8));
        // The scan adds old1 as the oldest; 12 > 10: old1 goes, not the
        // file stored (or used) since the start.
        s.scan_existing().unwrap();
        assert_eq!(s.usage(), (2, 8));
        assert!(!dir.path().join("m/old1").exists());
        assert!(s.get("m/new").is_some() && s.get("m/old2").is_some());
    }

    #[test]
    fn lru_eviction() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), 10, Default::default()).unwrap();
        put(&s, "m/a", b"1234");
        put(&s, "m/b", b"1234");
        assert!(s.get("m/a").is_some()); // a is now more recent than b
        put(&s, "m/c", b"1234"); // 12 > 10: evict b
        assert!(s.get("m/b").is_none());
        assert!(!dir.path().join("m/b").exists());
        assert!(s.get("m/a").is_some() && s.get("m/c").is_some());
        assert_eq!(s.usage(), (2, 8));
        assert_eq!(s.metrics.counters().evictions, 1);
    }

    #[test]
    fn unverified_files_have_their_own_budget() {
        let dir = tempfile::tempdir().unwrap();
        let budget = UnverifiedBudget {
            capacity: 8,
            ttl: Duration::from_secs(3600),
        };
        let s = Storage::open_with(dir.path(), 10, budget, Default::default()).unwrap();
        put(&s, "m/v1#ab", b"1234");
        put(&s, "m/v2#ab", b"1234");
        for i in 0..5 {
            put(&s, &format!("m/u{i}#u"), b"1234");
        }
        // Only unverified files were evicted, among themselves.
        assert!(s.get("m/v1#ab").is_some() && s.get("m/v2#ab").is_some());
        assert_eq!(s.unverified_usage(), (2, 8));
        assert!(s.get("m/u4#u").is_some() && s.get("m/u0#u").is_none());
        assert_eq!(s.metrics.counters().evictions, 3);
        // Room on a full disk: unverified files first, then the oldest verified.
        assert_eq!(s.make_room(10, Evictable::Any), 12);
        assert_eq!(s.unverified_usage(), (0, 0));
        assert_eq!(s.usage(), (1, 4));
        // An unverified download finds nothing it may evict.
        assert_eq!(s.make_room(100, Evictable::UnverifiedOnly), 0);
        assert_eq!(s.usage(), (1, 4));
        assert_eq!(s.make_room(100, Evictable::Any), 4);
        assert_eq!(s.make_room(100, Evictable::Any), 0);
    }

    #[test]
    fn expired_unverified_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let budget = UnverifiedBudget {
            capacity: 100,
            ttl: Duration::from_secs(3600),
        };
        let s = Storage::open_with(dir.path(), 100, budget, Default::default()).unwrap();
        let old = SystemTime::now() - Duration::from_secs(7200);
        for key in ["m/a#u", "m/b#u", "m/c#ab"] {
            let p = put(&s, key, b"1234");
            let f = std::fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(old).unwrap();
        }
        assert_eq!(s.get("m/a#u"), None, "expired when asked for");
        assert!(!dir.path().join("m/a#u").exists());
        drop(s);
        // At start, too; verified files have no lifetime.
        let s = Storage::open_with(dir.path(), 100, budget, Default::default()).unwrap();
        assert!(!dir.path().join("m/b#u").exists());
        assert!(s.get("m/c#ab").is_some());
    }

    #[test]
    fn scan_is_fast_for_many_files() {
        let dir = tempfile::tempdir().unwrap();
        for d in 0..20 {
            let sub = dir.path().join(format!("m/pool/{d}"));
            std::fs::create_dir_all(&sub).unwrap();
            for f in 0..500 {
                std::fs::write(sub.join(format!("{f}.deb#u")), b"x").unwrap();
            }
        }
        let t = std::time::Instant::now();
        let s = Storage::open(dir.path(), 1 << 30, Default::default()).unwrap();
        assert_eq!(s.usage(), (10_000, 10_000));
        assert!(t.elapsed().as_millis() < 1000, "{:?}", t.elapsed());
    }
}
