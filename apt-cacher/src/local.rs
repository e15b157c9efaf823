//! Pool files served from a local mirror. A mapping may name a local
//! apt-mirror snapshot (`local = "/var/spool/apt-mirror/debian"`): a pool
//! file the current indices list, not in the cache yet, whose file under
//! that tree has the listed size and digest, is served from there, with no
//! upstream request and without a copy into the cache (it is on disk
//! already). Anything else (absent, another size, another digest, not a
//! regular file) goes upstream as before; a mismatch is logged and counted
//! once.
//!
//! The digest is checked through the descriptor that is then served
//! ([`crate::response::serve_file`]), so a name replaced in between cannot
//! slip other bytes in. Files are not hashed on every request: a bounded
//! memo keeps each verdict by the file's identity (device, inode, size,
//! modification and change times) and the digest it was checked against,
//! so a file changed in place or replaced (a new inode or ctime) is checked
//! again. Like the cache's own files, a local mirror's files must never be
//! written in place while served (apt-mirror places them by rename or hard
//! link): a large file is sent from a shared memory map.

use crate::metrics::Metrics;
use aptindex::checksum::{Checksums, Hasher};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// At most this many verdicts are remembered (the oldest are forgotten
/// first, and then checked again when asked for).
pub const MAX_MEMO: usize = 65_536;

/// What identifies one version of a file on disk: any write, rename over
/// or `touch` changes one of these.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileId {
    fn of(m: &std::fs::Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// A memo key: the file's identity and the expected digest (kind and
/// bytes) it was checked against.
type MemoKey = (FileId, Box<[u8]>);

/// Whether a file matched the digest it was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Matches,
    Differs,
}

/// The remembered verdicts, oldest first in `order`.
#[derive(Debug, Default)]
struct Memo {
    map: HashMap<MemoKey, Verdict>,
    order: VecDeque<MemoKey>,
}

impl Memo {
    fn get(&self, key: &MemoKey) -> Option<Verdict> {
        self.map.get(key).copied()
    }

    fn put(&mut self, key: MemoKey, v: Verdict) {
        if self.map.insert(key.clone(), v).is_some() {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > MAX_MEMO {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

/// The local mirrors of every mapping, and what is known of their files.
#[derive(Debug)]
pub struct LocalMirrors {
    memo: Mutex<Memo>,
    metrics: Arc<Metrics>,
}

/// The expected digest as a memo key part: its kind's name, then its bytes.
fn expected_tag(cs: &Checksums) -> Option<Box<[u8]>> {
    let kind = cs.strongest()?;
    let mut tag = kind.by_hash_name().as_bytes().to_vec();
    tag.push(b':');
    tag.extend_from_slice(cs.get(kind)?);
    Some(tag.into_boxed_slice())
}

impl LocalMirrors {
    /// No verdicts yet; mismatches are counted in `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> LocalMirrors {
        LocalMirrors {
            memo: Mutex::new(Memo::default()),
            metrics,
        }
    }

    /// Number of verdicts remembered.
    pub fn remembered(&self) -> usize {
        self.memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }

    /// The file for repository path `path` (a safe relative path) of the
    /// mapping `prefix` under its local tree `root`, open, when it has the
    /// size and digest of `expected`; `None` otherwise (absent, not a
    /// regular file, unreadable, or not matching: go upstream).
    pub async fn open(
        self: &Arc<Self>,
        prefix: &str,
        root: &Path,
        path: &str,
        expected: &Checksums,
    ) -> Option<File> {
        if !crate::mapping::safe_path(path) {
            return None;
        }
        let tag = expected_tag(expected)?;
        let (this, file) = (self.clone(), root.join(path));
        let (prefix, expected) = (prefix.to_string(), expected.clone());
        tokio::task::spawn_blocking(move || this.check(&prefix, &file, &expected, tag))
            .await
            .ok()
            .flatten()
    }

    /// Opens `file` and checks it against `expected` (blocking: hashes it
    /// unless its verdict is remembered).
    fn check(
        &self,
        prefix: &str,
        file: &PathBuf,
        expected: &Checksums,
        tag: Box<[u8]>,
    ) -> Option<File> {
        // Non-blocking: a FIFO put in the tree must not hold a thread.
        let f = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(file)
        {
            Ok(f) => f,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::debug!(mapping = %prefix, file = %file.display(), error = %e, "local mirror file not readable; asking upstream");
                }
                return None;
            }
        };
        let meta = f.metadata().ok()?;
        if !meta.is_file() {
            return None;
        }
        let key = (FileId::of(&meta), tag);
        match self.lock().get(&key) {
            Some(Verdict::Matches) => return Some(f),
            Some(Verdict::Differs) => return None,
            None => {}
        }
        let actual = if meta.len() == expected.size {
            let mut h = Hasher::for_expected(expected);
            // Never more than the expected size plus one byte, whatever happens to the file.
            match h.update_reader((&f).take(expected.size.saturating_add(1))) {
                Ok(_) => h.finish(),
                Err(e) => {
                    tracing::warn!(mapping = %prefix, file = %file.display(), error = %e, "cannot read a local mirror file; asking upstream");
                    return None;
                }
            }
        } else {
            Checksums {
                size: meta.len(),
                ..Checksums::default()
            }
        };
        // Changed while it was read: no verdict on a moving target.
        if f.metadata().ok().map(|m| FileId::of(&m)) != Some(key.0.clone()) {
            return None;
        }
        let shown = file.display().to_string();
        match expected.verify(&shown, &actual) {
            Ok(()) => {
                self.lock().put(key, Verdict::Matches);
                Some(f)
            }
            Err(e) => {
                tracing::warn!(mapping = %prefix, file = %shown, error = %e, "local mirror file does not match the index; fetching it upstream");
                self.metrics
                    .local_mismatch(&shown, &format!("local mirror file: {e}"));
                self.lock().put(key, Verdict::Differs);
                None
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memo> {
        self.memo.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(data: &[u8]) -> Checksums {
        let all = Checksums::of_bytes(data);
        Checksums {
            size: all.size,
            sha256: all.sha256,
            ..Checksums::default()
        }
    }

    #[tokio::test]
    async fn serves_matching_files_and_checks_changed_ones_again() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        let local = Arc::new(LocalMirrors::new(metrics.clone()));
        std::fs::create_dir_all(dir.path().join("pool/main")).unwrap();
        let p = dir.path().join("pool/main/a.deb");
        std::fs::write(&p, b"hello").unwrap();
        let good = expect(b"hello");
        let open = |cs: Checksums| {
            let local = local.clone();
            let root = dir.path().to_path_buf();
            async move { local.open("m", &root, "pool/main/a.deb", &cs).await }
        };
        assert!(open(good.clone()).await.is_some());
        assert!(open(good.clone()).await.is_some(), "remembered");
        assert_eq!(local.remembered(), 1);
        // Same size, other bytes, written in place: checked again, refused once.
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(&p, b"HELLO").unwrap();
        assert!(open(good.clone()).await.is_none());
        assert!(open(good.clone()).await.is_none());
        assert_eq!(metrics.counters().local_mismatches, 1);
        // Another size: refused; absent, a directory, unsafe: just not there.
        std::fs::write(&p, b"hello!").unwrap();
        assert!(open(good.clone()).await.is_none());
        assert_eq!(metrics.counters().local_mismatches, 2);
        std::fs::remove_file(&p).unwrap();
        assert!(open(good.clone()).await.is_none());
        std::fs::create_dir(&p).unwrap();
        assert!(open(good.clone()).await.is_none());
        assert!(local
            .open("m", dir.path(), "../a.deb", &good)
            .await
            .is_none());
        assert_eq!(metrics.counters().local_mismatches, 2);
    }

    #[test]
    fn the_memo_is_bounded() {
        let mut m = Memo::default();
        for i in 0..(MAX_MEMO as u64 + 10) {
            let id = FileId {
                dev: 1,
                ino: i,
                size: 1,
                mtime: (0, 0),
                ctime: (0, 0),
            };
            m.put((id, Box::from(&b"x"[..])), Verdict::Matches);
        }
        assert_eq!(m.map.len(), MAX_MEMO);
        assert_eq!(m.order.len(), MAX_MEMO);
    }
}
