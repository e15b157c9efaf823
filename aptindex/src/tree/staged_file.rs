//! A file on its way into a tree: its bytes stream into a temporary file in
//! the target's file system while they are hashed, under a size cap; only
//! once the whole file verifies against what the Release (or an index) says
//! is it given the published mode and renamed to its final name, or handed
//! back as a verified temporary path. A partial or unverified file is never
//! visible under its final name, and a dropped [`StagedFile`] removes its
//! temporary file.
//!
//! The API is synchronous and cheap per call: async code writes each
//! received chunk with [`StagedFile::write`] (a buffered write), and may run
//! [`StagedFile::finish`] / [`VerifiedFile::persist`] in `spawn_blocking`.
//! A caller whose readers read the file while it grows (apt-cacher: pread on
//! a shared handle, memory maps) starts it with [`StagedFile::shared`]
//! from its own temporary file: writes then go straight to the file (no
//! buffer, no copy), one `write` per chunk.

use super::TreeError;
use crate::checksum::{Checksums, Hasher, HashingWriter};
use crate::fsmode;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tempfile::{NamedTempFile, TempPath};

/// The temporary file, shared with whoever reads it while it grows.
#[derive(Debug)]
struct SharedFile(Arc<File>);

impl Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        (&*self.0).write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        (&*self.0).flush()
    }
}

/// A temporary file being written and hashed, capped at the expected size.
pub struct StagedFile {
    writer: HashingWriter<BufWriter<NamedTempFile<SharedFile>>>,
    path: PathBuf,
    written: u64,
    limit: u64,
    what: String,
}

impl std::fmt::Debug for StagedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedFile")
            .field("path", &self.path)
            .field("written", &self.written)
            .field("limit", &self.limit)
            .field("what", &self.what)
            .finish()
    }
}

impl StagedFile {
    /// Starts a file expected to be `expected` (its size is the cap; its
    /// strongest hash is computed), in `tmp_dir` (created if missing; on
    /// the file system of the final name). `what` names the source in
    /// errors (a URL or a path).
    pub fn for_expected(
        tmp_dir: &Path,
        expected: &Checksums,
        what: &str,
    ) -> Result<StagedFile, TreeError> {
        let Some(kind) = expected.strongest() else {
            return Err(TreeError::NoChecksum {
                what: what.to_string(),
            });
        };
        StagedFile::new(tmp_dir, expected.size, Hasher::new(&[kind]), what)
    }

    /// Starts a file of at most `limit` bytes, hashed with `hasher`.
    pub fn new(
        tmp_dir: &Path,
        limit: u64,
        hasher: Hasher,
        what: &str,
    ) -> Result<StagedFile, TreeError> {
        fsmode::create_dir_all(tmp_dir).map_err(TreeError::io(tmp_dir))?;
        let tmp = tempfile::Builder::new()
            .prefix(".part-")
            .tempfile_in(tmp_dir)
            .map_err(TreeError::io(tmp_dir))?;
        // Small files get small buffers.
        let buf = usize::try_from(limit.clamp(8 << 10, 256 << 10)).unwrap_or(256 << 10);
        let (file, path) = tmp.into_parts();
        Ok(StagedFile::with_buffer(
            Arc::new(file),
            path,
            buf,
            limit,
            hasher,
            what,
        ))
    }

    /// Continues with the caller's fresh, empty temporary file `file` at
    /// `path` (removed when this is dropped unverified), of at most `limit`
    /// bytes (`u64::MAX`: no cap), hashed with `hasher`. Unbuffered: every
    /// [`StagedFile::write`] is one write to the file, so readers of
    /// `file` (a clone of the `Arc`) see each byte [`StagedFile::written`]
    /// counts, without [`StagedFile::flush`].
    pub fn shared(
        file: Arc<File>,
        path: TempPath,
        limit: u64,
        hasher: Hasher,
        what: &str,
    ) -> StagedFile {
        StagedFile::with_buffer(file, path, 0, limit, hasher, what)
    }

    fn with_buffer(
        file: Arc<File>,
        path: TempPath,
        buf: usize,
        limit: u64,
        hasher: Hasher,
        what: &str,
    ) -> StagedFile {
        let tmp = NamedTempFile::from_parts(SharedFile(file), path);
        StagedFile {
            path: tmp.path().to_path_buf(),
            // A capacity of 0 writes each chunk straight through.
            writer: HashingWriter::new(BufWriter::with_capacity(buf, tmp), hasher),
            written: 0,
            limit,
            what: what.to_string(),
        }
    }

    /// Appends `data`; fails (and nothing is written) when the file would
    /// exceed its cap. When a write fails part way (a full file system),
    /// [`StagedFile::written`] still counts (and the hash covers) exactly
    /// the bytes written, so a caller that made room may write the rest of
    /// `data` again.
    pub fn write(&mut self, data: &[u8]) -> Result<(), TreeError> {
        let total = self.written.saturating_add(data.len() as u64);
        if total > self.limit {
            return Err(TreeError::TooLarge {
                what: self.what.clone(),
                limit: self.limit,
            });
        }
        let mut rest = data;
        while !rest.is_empty() {
            match self.writer.write(rest) {
                Ok(0) => {
                    return Err(TreeError::io(&self.path)(std::io::Error::from(
                        std::io::ErrorKind::WriteZero,
                    )))
                }
                Ok(n) => {
                    self.written += n as u64;
                    rest = rest.get(n..).unwrap_or_default();
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TreeError::io(&self.path)(e)),
            }
        }
        Ok(())
    }

    /// The temporary file's path: readers may open it while it grows (it
    /// is never the final name); see [`StagedFile::flush`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the buffered bytes to the file, so that a reader of
    /// [`StagedFile::path`] sees every byte [`StagedFile::written`] counts.
    pub fn flush(&mut self) -> Result<(), TreeError> {
        self.writer.flush().map_err(TreeError::io(&self.path))
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes the file and verifies it against `expected`: on success a
    /// [`VerifiedFile`]; on failure the temporary file is removed.
    pub fn finish(self, expected: &Checksums) -> Result<VerifiedFile, TreeError> {
        let what = self.what.clone();
        let (tmp, actual) = self.complete()?;
        expected
            .verify(&what, &actual)
            .map_err(|source| TreeError::Verify { what, source })?;
        Ok(VerifiedFile {
            tmp,
            checksums: actual,
        })
    }

    /// Flushes the file without verifying it: for a file nothing names
    /// (apt-cacher passes such files through, marked unverified). The
    /// returned [`VerifiedFile`] carries the checksums computed, checked
    /// against nothing; the caller alone decides what it may be used for.
    pub fn finish_unverified(self) -> Result<VerifiedFile, TreeError> {
        let (tmp, checksums) = self.complete()?;
        Ok(VerifiedFile { tmp, checksums })
    }

    /// Flushes the buffer; the file and the checksums of what was written.
    fn complete(self) -> Result<(NamedTempFile<SharedFile>, Checksums), TreeError> {
        let (buf, actual) = self.writer.finish();
        let tmp = buf
            .into_inner()
            .map_err(|e| TreeError::io(&self.path)(e.into_error()))?;
        Ok((tmp, actual))
    }
}

/// A complete temporary file whose bytes verified.
#[derive(Debug)]
pub struct VerifiedFile {
    tmp: NamedTempFile<SharedFile>,
    checksums: Checksums,
}

impl VerifiedFile {
    /// The size and hashes computed while it was written.
    pub fn checksums(&self) -> &Checksums {
        &self.checksums
    }

    /// Its temporary path.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// fsyncs its data (for a file that must be durable on its own, not
    /// flushed later with the whole tree).
    pub fn sync(&self) -> Result<(), TreeError> {
        self.tmp
            .as_file()
            .0
            .sync_all()
            .map_err(TreeError::io(self.tmp.path()))
    }

    /// Gives it the published mode and renames it to `dest` (in the same
    /// file system; `dest`'s directory must exist).
    pub fn persist(self, dest: &Path) -> Result<(), TreeError> {
        fsmode::publish_file(&self.tmp.as_file().0, dest)?;
        self.tmp
            .persist(dest)
            .map_err(|e| TreeError::io(dest)(e.error))?;
        Ok(())
    }

    /// Gives it the published mode and hands back its temporary path (removed
    /// when dropped unless persisted): for a caller that places it later.
    pub fn into_temp_path(self) -> Result<TempPath, TreeError> {
        fsmode::publish_file(&self.tmp.as_file().0, self.tmp.path())?;
        Ok(self.tmp.into_temp_path())
    }

    /// Like [`VerifiedFile::into_temp_path`], and fsyncs the file after its
    /// mode is set (so the mode is durable with the data).
    pub fn into_synced_temp_path(self) -> Result<TempPath, TreeError> {
        fsmode::publish_file(&self.tmp.as_file().0, self.tmp.path())?;
        self.sync()?;
        Ok(self.tmp.into_temp_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::ChecksumError;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn verified_file_is_renamed_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let expected = Checksums::of_bytes(b"hello world");
        let mut f = StagedFile::for_expected(dir.path(), &expected, "http://h/x").unwrap();
        f.write(b"hello ").unwrap();
        f.flush().unwrap();
        // Readable under its temporary name while it grows.
        assert_eq!(std::fs::read(f.path()).unwrap(), b"hello ");
        f.write(b"world").unwrap();
        assert_eq!(f.written(), 11);
        let v = f.finish(&expected).unwrap();
        assert_eq!(v.checksums().size, 11);
        v.sync().unwrap();
        let dest = dir.path().join("x");
        v.persist(&dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello world");
        assert!(fsmode::is_published(&dest));
        assert_eq!(names(dir.path()), vec!["x".to_string()]);
    }

    #[test]
    fn verification_failure_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let expected = Checksums::of_bytes(b"hello world");
        let mut f = StagedFile::for_expected(dir.path(), &expected, "http://h/x").unwrap();
        f.write(b"hello WORLD").unwrap();
        let err = f.finish(&expected).unwrap_err();
        assert!(
            matches!(&err, TreeError::Verify { what, source: ChecksumError::Hash { .. } } if what == "http://h/x"),
            "{err}"
        );
        assert!(names(dir.path()).is_empty());
        // Short: a size mismatch.
        let mut f = StagedFile::for_expected(dir.path(), &expected, "x").unwrap();
        f.write(b"hello").unwrap();
        assert!(matches!(
            f.finish(&expected),
            Err(TreeError::Verify {
                source: ChecksumError::Size { .. },
                ..
            })
        ));
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn size_cap() {
        let dir = tempfile::tempdir().unwrap();
        let expected = Checksums::of_bytes(b"abc");
        let mut f = StagedFile::for_expected(dir.path(), &expected, "u").unwrap();
        f.write(b"ab").unwrap();
        let err = f.write(b"cd").unwrap_err();
        assert!(matches!(err, TreeError::TooLarge { limit: 3, .. }), "{err}");
        assert_eq!(f.written(), 2);
        drop(f);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn no_checksum_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let expected = Checksums {
            size: 3,
            ..Default::default()
        };
        assert!(matches!(
            StagedFile::for_expected(dir.path(), &expected, "u"),
            Err(TreeError::NoChecksum { .. })
        ));
    }

    #[test]
    fn temp_path_handed_back() {
        let dir = tempfile::tempdir().unwrap();
        let expected = Checksums::of_bytes(b"abc");
        let mut f = StagedFile::new(dir.path(), 3, Hasher::all(), "u").unwrap();
        f.write(b"abc").unwrap();
        let v = f.finish(&expected).unwrap();
        assert!(v.checksums().sha256.is_some());
        let p = v.into_temp_path().unwrap();
        assert!(fsmode::is_published(&p));
        assert_eq!(std::fs::read(&p).unwrap(), b"abc");
        drop(p);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn shared_file_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let (file, path) = tempfile::Builder::new()
            .prefix("dl-")
            .tempfile_in(dir.path())
            .unwrap()
            .into_parts();
        let file = Arc::new(file);
        let expected = Checksums::of_bytes(b"hello world");
        let mut f = StagedFile::shared(
            file.clone(),
            path,
            expected.size,
            Hasher::for_expected(&expected),
            "u",
        );
        f.write(b"hello ").unwrap();
        // Readers of the shared handle see every written byte, unflushed.
        let mut buf = [0u8; 6];
        std::os::unix::fs::FileExt::read_exact_at(&*file, &mut buf, 0).unwrap();
        assert_eq!(&buf, b"hello ");
        f.write(b"world").unwrap();
        assert!(matches!(
            f.write(b"!"),
            Err(TreeError::TooLarge { limit: 11, .. })
        ));
        let p = f
            .finish(&expected)
            .unwrap()
            .into_synced_temp_path()
            .unwrap();
        assert!(fsmode::is_published(&p));
        assert_eq!(std::fs::read(&p).unwrap(), b"hello world");
        drop(p);
        assert!(names(dir.path()).is_empty());
        // Nothing to verify against: kept as written, checksums computed.
        let (file, path) = tempfile::NamedTempFile::new_in(dir.path())
            .unwrap()
            .into_parts();
        let mut f = StagedFile::shared(Arc::new(file), path, u64::MAX, Hasher::all(), "u");
        f.write(b"abc").unwrap();
        let v = f.finish_unverified().unwrap();
        assert_eq!(v.checksums(), &Checksums::of_bytes(b"abc"));
        drop(v);
        assert!(names(dir.path()).is_empty());
    }
}
