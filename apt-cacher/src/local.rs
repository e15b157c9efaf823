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
//! again. A local mirror's tree is another program's, so its files are
//! never memory-mapped (a file truncated in place would be SIGBUS): they
//! are read in chunks. Bytes written in place into a file between its check
//! and its reading would still go out unchecked: apt-mirror never does that
//! (it places files by rename or hard link), and nor may anything else
//! that keeps the tree.

use crate::metrics::Metrics;
use aptindex::checksum::{Checksums, Hasher};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// At most this many verdicts are remembered (the oldest are forgotten
/// first, and then checked again when asked for).
pub const MAX_MEMO: usize = 65_536;
/// At most this many local files are hashed at once (other requests wait;
/// one for a file being checked then finds its verdict remembered).
pub const MAX_HASHING: usize = 2;

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
    hashing: tokio::sync::Semaphore,
    metrics: Arc<Metrics>,
}

/// What the first look at a local file decided.
enum Step {
    /// Served from it (`Some`) or not.
    Done(Option<File>),
    /// To be hashed: the open file and its memo key.
    Hash(File, MemoKey),
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
            hashing: tokio::sync::Semaphore::new(MAX_HASHING),
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
    /// regular file, unreadable, or not matching: go upstream). At most
    /// [`MAX_HASHING`] files are hashed at once.
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
        let this = self.clone();
        let file = Arc::new(root.join(path));
        let (prefix, expected) = (Arc::<str>::from(prefix), Arc::new(expected.clone()));
        let (p, f, e) = (prefix.clone(), file.clone(), expected.clone());
        let step = tokio::task::spawn_blocking(move || this.look(&p, &f, &e, tag))
            .await
            .ok()?;
        let (opened, key) = match step {
            Step::Done(found) => return found,
            Step::Hash(opened, key) => (opened, key),
        };
        let _permit = self.hashing.acquire().await.ok()?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.hash(&prefix, &file, opened, key, &expected))
            .await
            .ok()
            .flatten()
    }

    /// Opens `file`: done when it is not there, has another size, or its
    /// verdict is remembered; otherwise it is to be hashed (blocking).
    fn look(&self, prefix: &str, file: &Path, expected: &Checksums, tag: Box<[u8]>) -> Step {
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
                return Step::Done(None);
            }
        };
        let Ok(meta) = f.metadata() else {
            return Step::Done(None);
        };
        if !meta.is_file() {
            return Step::Done(None);
        }
        let key = (FileId::of(&meta), tag);
        match self.lock().get(&key) {
            Some(Verdict::Matches) => return Step::Done(Some(f)),
            Some(Verdict::Differs) => return Step::Done(None),
            None => {}
        }
        if meta.len() != expected.size {
            let what = format!(
                "local mirror file: size {} is not the {} bytes the index gives",
                meta.len(),
                expected.size
            );
            self.differs(prefix, file, key, &what);
            return Step::Done(None);
        }
        Step::Hash(f, key)
    }

    /// Hashes `f` (the file at `file`, identified by `key`) and checks it
    /// against `expected`, remembering the verdict (blocking).
    fn hash(
        &self,
        prefix: &str,
        file: &Path,
        f: File,
        key: MemoKey,
        expected: &Checksums,
    ) -> Option<File> {
        // Checked meanwhile by a request that held the permit first.
        match self.lock().get(&key) {
            Some(Verdict::Matches) => return Some(f),
            Some(Verdict::Differs) => return None,
            None => {}
        }
        let mut h = Hasher::for_expected(expected);
        // Never more than the expected size plus one byte, whatever happens to the file.
        if let Err(e) = h.update_reader((&f).take(expected.size.saturating_add(1))) {
            tracing::warn!(mapping = %prefix, file = %file.display(), error = %e, "cannot read a local mirror file; asking upstream");
            return None;
        }
        let actual = h.finish();
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
                self.differs(prefix, file, key, &format!("local mirror file: {e}"));
                None
            }
        }
    }

    /// Logs, counts and remembers a file that does not match its index entry.
    fn differs(&self, prefix: &str, file: &Path, key: MemoKey, what: &str) {
        let shown = file.display().to_string();
        tracing::warn!(mapping = %prefix, file = %shown, error = %what, "local mirror file does not match the index; fetching it upstream");
        self.metrics.local_mismatch(&shown, what);
        self.lock().put(key, Verdict::Differs);
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
