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

use super::evict::Lru;
use super::key::{safe_key, TMP_DIR};
use crate::metrics::Metrics;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;
use tempfile::TempPath;

/// The files of the cache on disk (non-metadata files).
#[derive(Debug)]
pub struct Storage {
    root: PathBuf,
    tmp: PathBuf,
    capacity: u64,
    index: Mutex<Lru>,
    metrics: Arc<Metrics>,
}

impl Storage {
    /// Opens (creating if needed) the store at `root`, removes leftover
    /// temporary files and indexes what is there; evictions are counted in
    /// `metrics`. Blocking: call it from a blocking task.
    pub fn open(root: &Path, capacity: u64, metrics: Arc<Metrics>) -> io::Result<Storage> {
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
        let mut found = Vec::new();
        scan(root, root, &mut found)?;
        // Oldest first, so the clock reflects use order across restarts.
        found.sort_by_key(|(_, _, t)| *t);
        let mut index = Lru::default();
        for (key, size, _) in found {
            index.insert(key, size);
        }
        let store = Storage {
            root: root.to_path_buf(),
            tmp,
            capacity,
            index: Mutex::new(index),
            metrics,
        };
        store.evict();
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Number of files and their total size.
    pub fn usage(&self) -> (usize, u64) {
        let i = self.lock();
        (i.len(), i.total())
    }

    /// The path of the file stored under `key`, marking it used.
    pub fn get(&self, key: &str) -> Option<PathBuf> {
        if !safe_key(key) {
            return None;
        }
        self.lock().touch(key).then(|| self.root.join(key))
    }

    /// Forgets and deletes `key` (e.g. its file vanished or no longer verifies).
    pub fn remove(&self, key: &str) {
        if self.lock().remove(key) {
            let _ = std::fs::remove_file(self.root.join(key));
        }
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
        if !safe_key(key) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unsafe cache key {key:?}"),
            ));
        }
        let dest = self.root.join(key);
        if let Some(parent) = dest.parent() {
            aptindex::fsmode::create_dir_all(parent)?;
        }
        temp.persist(&dest).map_err(|e| e.error)?;
        if let Some(parent) = dest.parent() {
            // Make the rename durable; a failure here only weakens durability.
            let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
        }
        self.lock().insert(key.to_string(), size);
        self.evict();
        Ok(dest)
    }

    /// Removes least-recently-used files until the total fits the capacity.
    pub fn evict(&self) {
        let victims = self.lock().over(self.capacity);
        self.metrics.evicted(victims.len() as u64);
        for key in victims {
            tracing::debug!(key = %key, "evicting");
            let _ = std::fs::remove_file(self.root.join(&key));
        }
    }
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
