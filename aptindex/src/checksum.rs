//! Checksums: "a size plus the hashes we know" ([`Checksums`]), a one-pass
//! [`Hasher`] that computes only the hashes needed, reader/writer adapters
//! that hash bytes as they stream through, and the verification rule used
//! everywhere: the size must match, every hash both sides know must match,
//! and at least the strongest hash the expectation has is always checked.

use std::fmt;

/// A hash algorithm APT repositories use, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashKind {
    /// MD5 (`MD5Sum` in Release, `MD5sum` in Packages).
    Md5,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl HashKind {
    /// All kinds, weakest first.
    pub const ALL: [HashKind; 4] = [HashKind::Md5, HashKind::Sha1, HashKind::Sha256, HashKind::Sha512];

    /// The directory name used under `by-hash/` (`MD5Sum`, `SHA1`, `SHA256`, `SHA512`).
    pub fn by_hash_name(self) -> &'static str {
        todo!()
    }

    /// Parses a `by-hash/` directory name (as [`HashKind::by_hash_name`] gives).
    pub fn from_by_hash_name(name: &str) -> Option<HashKind> {
        todo!()
    }

    /// Length of the digest in bytes.
    pub fn len(self) -> usize {
        todo!()
    }
}

/// A size and the hashes known for one file. Hashes are raw digest bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Checksums {
    /// Size in bytes.
    pub size: u64,
    /// MD5 digest, if known.
    pub md5: Option<[u8; 16]>,
    /// SHA-1 digest, if known.
    pub sha1: Option<[u8; 20]>,
    /// SHA-256 digest, if known.
    pub sha256: Option<[u8; 32]>,
    /// SHA-512 digest, if known.
    pub sha512: Option<[u8; 64]>,
}

impl Checksums {
    /// The digest of `kind`, if known.
    pub fn get(&self, kind: HashKind) -> Option<&[u8]> {
        todo!()
    }

    /// Sets the digest of `kind` from a hex string; errors if it is not valid
    /// hex of the right length.
    pub fn set_hex(&mut self, kind: HashKind, hex: &str) -> Result<(), ChecksumError> {
        todo!()
    }

    /// The digest of `kind` as lower-case hex, if known.
    pub fn hex(&self, kind: HashKind) -> Option<String> {
        todo!()
    }

    /// The strongest hash known, if any.
    pub fn strongest(&self) -> Option<HashKind> {
        todo!()
    }

    /// Kinds known, weakest first.
    pub fn kinds(&self) -> Vec<HashKind> {
        todo!()
    }

    /// Merges `other` (the same file described elsewhere) into `self`: sizes
    /// and every hash both know must agree, otherwise an error naming `path`.
    pub fn merge(&mut self, path: &str, other: &Checksums) -> Result<(), ChecksumError> {
        todo!()
    }

    /// Verifies `actual` (what was computed) against `self` (what was
    /// expected) for the file `path`: size equal, every hash both know equal,
    /// and `actual` must know the strongest hash `self` has.
    pub fn verify(&self, path: &str, actual: &Checksums) -> Result<(), ChecksumError> {
        todo!()
    }

    /// Computes every hash of `data`.
    pub fn of_bytes(data: &[u8]) -> Checksums {
        todo!()
    }
}

/// What went wrong checking or parsing a checksum.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChecksumError {
    /// Sizes differ.
    #[error("{path}: size mismatch: expected {expected} bytes, got {actual}")]
    Size {
        /// The file.
        path: String,
        /// Expected size.
        expected: u64,
        /// Actual size.
        actual: u64,
    },
    /// A hash differs.
    #[error("{path}: {kind:?} mismatch: expected {expected}, got {actual}")]
    Hash {
        /// The file.
        path: String,
        /// Which hash.
        kind: HashKind,
        /// Expected hex digest.
        expected: String,
        /// Actual hex digest.
        actual: String,
    },
    /// The expectation has a hash the computation did not produce.
    #[error("{path}: {kind:?} was not computed, cannot verify")]
    NotComputed {
        /// The file.
        path: String,
        /// Which hash.
        kind: HashKind,
    },
    /// Not a valid hex digest.
    #[error("invalid {kind:?} digest {value:?}")]
    BadHex {
        /// Which hash.
        kind: HashKind,
        /// The offending text.
        value: String,
    },
}

/// Computes, in one pass, the size and the chosen hashes of a byte stream.
pub struct Hasher {
    _private: (),
}

impl Hasher {
    /// A hasher computing the given kinds.
    pub fn new(kinds: &[HashKind]) -> Hasher {
        todo!()
    }

    /// A hasher computing exactly what is needed to [`Checksums::verify`] against `expected`.
    pub fn for_expected(expected: &Checksums) -> Hasher {
        todo!()
    }

    /// A hasher computing every kind.
    pub fn all() -> Hasher {
        todo!()
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        todo!()
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        todo!()
    }

    /// The result.
    pub fn finish(self) -> Checksums {
        todo!()
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher").finish_non_exhaustive()
    }
}

/// A reader that hashes everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, hasher: Hasher) -> Self {
        HashingReader { inner, hasher }
    }
    /// Returns the inner reader and the checksums of what was read.
    pub fn finish(self) -> (R, Checksums) {
        (self.inner, self.hasher.finish())
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A writer that hashes everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W, hasher: Hasher) -> Self {
        HashingWriter { inner, hasher }
    }
    /// Returns the inner writer and the checksums of what was written.
    pub fn finish(self) -> (W, Checksums) {
        (self.inner, self.hasher.finish())
    }
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
