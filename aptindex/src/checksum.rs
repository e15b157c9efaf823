//! Checksums: "a size plus the hashes we know" ([`Checksums`]), a one-pass
//! [`Hasher`] that computes only the hashes needed, reader/writer adapters
//! that hash bytes as they stream through, and the verification rule used
//! everywhere: the size must match, every hash both sides know must match,
//! and at least the strongest hash the expectation has is always checked.

use sha1::Digest;
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
    pub const ALL: [HashKind; 4] = [
        HashKind::Md5,
        HashKind::Sha1,
        HashKind::Sha256,
        HashKind::Sha512,
    ];

    /// The directory name used under `by-hash/` (`MD5Sum`, `SHA1`, `SHA256`, `SHA512`).
    pub fn by_hash_name(self) -> &'static str {
        match self {
            HashKind::Md5 => "MD5Sum",
            HashKind::Sha1 => "SHA1",
            HashKind::Sha256 => "SHA256",
            HashKind::Sha512 => "SHA512",
        }
    }

    /// Parses a `by-hash/` directory name (as [`HashKind::by_hash_name`] gives).
    pub fn from_by_hash_name(name: &str) -> Option<HashKind> {
        HashKind::ALL.into_iter().find(|k| k.by_hash_name() == name)
    }

    /// Length of the digest in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(self) -> usize {
        match self {
            HashKind::Md5 => 16,
            HashKind::Sha1 => 20,
            HashKind::Sha256 => 32,
            HashKind::Sha512 => 64,
        }
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
        match kind {
            HashKind::Md5 => self.md5.as_ref().map(|d| &d[..]),
            HashKind::Sha1 => self.sha1.as_ref().map(|d| &d[..]),
            HashKind::Sha256 => self.sha256.as_ref().map(|d| &d[..]),
            HashKind::Sha512 => self.sha512.as_ref().map(|d| &d[..]),
        }
    }

    /// Sets the digest of `kind` from a hex string; errors if it is not valid
    /// hex of the right length.
    pub fn set_hex(&mut self, kind: HashKind, hex: &str) -> Result<(), ChecksumError> {
        self.set_hex_bytes(kind, hex.as_bytes())
    }

    /// Like [`Checksums::set_hex`], from bytes (as found in an index).
    pub fn set_hex_bytes(&mut self, kind: HashKind, hex: &[u8]) -> Result<(), ChecksumError> {
        fn decode<const N: usize>(kind: HashKind, hex: &[u8]) -> Result<[u8; N], ChecksumError> {
            let mut out = [0u8; N];
            if decode_hex(hex, &mut out) {
                Ok(out)
            } else {
                Err(ChecksumError::BadHex {
                    kind,
                    value: String::from_utf8_lossy(hex).into_owned(),
                })
            }
        }
        match kind {
            HashKind::Md5 => self.md5 = Some(decode(kind, hex)?),
            HashKind::Sha1 => self.sha1 = Some(decode(kind, hex)?),
            HashKind::Sha256 => self.sha256 = Some(decode(kind, hex)?),
            HashKind::Sha512 => self.sha512 = Some(decode(kind, hex)?),
        }
        Ok(())
    }

    /// The digest of `kind` as lower-case hex, if known.
    pub fn hex(&self, kind: HashKind) -> Option<String> {
        self.get(kind).map(::hex::encode)
    }

    /// The strongest hash known, if any.
    pub fn strongest(&self) -> Option<HashKind> {
        HashKind::ALL
            .into_iter()
            .rev()
            .find(|&k| self.get(k).is_some())
    }

    /// Kinds known, weakest first.
    pub fn kinds(&self) -> Vec<HashKind> {
        HashKind::ALL
            .into_iter()
            .filter(|&k| self.get(k).is_some())
            .collect()
    }

    /// Checks that `self` and `other` agree on the size and on every hash both know.
    fn agree(&self, path: &str, other: &Checksums) -> Result<(), ChecksumError> {
        if self.size != other.size {
            return Err(ChecksumError::Size {
                path: path.to_string(),
                expected: self.size,
                actual: other.size,
            });
        }
        for kind in HashKind::ALL {
            if let (Some(e), Some(a)) = (self.get(kind), other.get(kind)) {
                if e != a {
                    return Err(ChecksumError::Hash {
                        path: path.to_string(),
                        kind,
                        expected: ::hex::encode(e),
                        actual: ::hex::encode(a),
                    });
                }
            }
        }
        Ok(())
    }

    /// Merges `other` (the same file described elsewhere) into `self`: sizes
    /// and every hash both know must agree, otherwise an error naming `path`.
    pub fn merge(&mut self, path: &str, other: &Checksums) -> Result<(), ChecksumError> {
        self.agree(path, other)?;
        self.md5 = self.md5.or(other.md5);
        self.sha1 = self.sha1.or(other.sha1);
        self.sha256 = self.sha256.or(other.sha256);
        self.sha512 = self.sha512.or(other.sha512);
        Ok(())
    }

    /// Verifies `actual` (what was computed) against `self` (what was
    /// expected) for the file `path`: size equal, every hash both know equal,
    /// and `actual` must know the strongest hash `self` has. (An expectation
    /// with no hash at all can only be checked for size; index parsers in
    /// this crate never produce one.)
    pub fn verify(&self, path: &str, actual: &Checksums) -> Result<(), ChecksumError> {
        if let Some(kind) = self.strongest() {
            if actual.get(kind).is_none() {
                return Err(ChecksumError::NotComputed {
                    path: path.to_string(),
                    kind,
                });
            }
        }
        self.agree(path, actual)
    }

    /// Computes every hash of `data`.
    pub fn of_bytes(data: &[u8]) -> Checksums {
        let mut h = Hasher::all();
        h.update(data);
        h.finish()
    }
}

/// Value of each byte as a hex digit, or 0xff.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Decodes hex (either case) into exactly `out.len()` bytes; false if
/// `hex` is not valid hex of that length. Table-driven: index parsing
/// decodes two digests per package, so this is on the hot path.
fn decode_hex(hex: &[u8], out: &mut [u8]) -> bool {
    if hex.len() != 2 * out.len() {
        return false;
    }
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (hi, lo) = (HEX_VALUE[pair[0] as usize], HEX_VALUE[pair[1] as usize]);
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0x0f);
    }
    bad & 0xf0 == 0
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
    size: u64,
    md5: Option<md5::Md5>,
    sha1: Option<sha1::Sha1>,
    sha256: Option<sha2::Sha256>,
    sha512: Option<sha2::Sha512>,
}

impl Hasher {
    /// A hasher computing the given kinds.
    pub fn new(kinds: &[HashKind]) -> Hasher {
        let has = |k| kinds.contains(&k);
        Hasher {
            size: 0,
            md5: has(HashKind::Md5).then(md5::Md5::new),
            sha1: has(HashKind::Sha1).then(sha1::Sha1::new),
            sha256: has(HashKind::Sha256).then(sha2::Sha256::new),
            sha512: has(HashKind::Sha512).then(sha2::Sha512::new),
        }
    }

    /// A hasher computing exactly what is needed to [`Checksums::verify`] against `expected`:
    /// every kind the expectation has.
    pub fn for_expected(expected: &Checksums) -> Hasher {
        Hasher::new(&expected.kinds())
    }

    /// A hasher computing every kind.
    pub fn all() -> Hasher {
        Hasher::new(&HashKind::ALL)
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.size += data.len() as u64;
        if let Some(h) = &mut self.md5 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha1 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha512 {
            h.update(data);
        }
    }

    /// Feeds everything `reader` yields (in 256 KiB reads); returns the byte count read.
    pub fn update_reader<R: std::io::Read>(&mut self, mut reader: R) -> std::io::Result<u64> {
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.update(&buf[..n]);
            total += n as u64;
        }
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The result.
    pub fn finish(self) -> Checksums {
        Checksums {
            size: self.size,
            md5: self.md5.map(|h| h.finalize().into()),
            sha1: self.sha1.map(|h| h.finalize().into()),
            sha256: self.sha256.map(|h| h.finalize().into()),
            sha512: self.sha512.map(|h| h.finalize().into()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn known_digests() {
        let c = Checksums::of_bytes(b"abc");
        assert_eq!(c.size, 3);
        assert_eq!(
            c.hex(HashKind::Md5).unwrap(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            c.hex(HashKind::Sha1).unwrap(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(c.hex(HashKind::Sha256).unwrap(), ABC_SHA256);
        assert_eq!(c.strongest(), Some(HashKind::Sha512));
        assert_eq!(c.kinds(), HashKind::ALL.to_vec());
    }

    #[test]
    fn hasher_computes_only_what_is_asked() {
        let mut expected = Checksums {
            size: 3,
            ..Default::default()
        };
        expected.set_hex(HashKind::Sha256, ABC_SHA256).unwrap();
        let mut h = Hasher::for_expected(&expected);
        h.update(b"a");
        h.update(b"bc");
        let actual = h.finish();
        assert_eq!(actual.kinds(), vec![HashKind::Sha256]);
        expected.verify("f", &actual).unwrap();
    }

    #[test]
    fn verify_rules() {
        let all = Checksums::of_bytes(b"abc");
        let mut only_md5 = Checksums::of_bytes(b"abc");
        only_md5.sha1 = None;
        only_md5.sha256 = None;
        only_md5.sha512 = None;
        // The strongest expected hash must have been computed.
        assert_eq!(
            all.verify("p", &only_md5),
            Err(ChecksumError::NotComputed {
                path: "p".into(),
                kind: HashKind::Sha512
            })
        );
        all.verify("p", &all).unwrap();
        only_md5.verify("p", &all).unwrap();
        let other = Checksums::of_bytes(b"abd");
        let err = all.verify("dists/x/Release", &other).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("dists/x/Release") && msg.contains("Md5"),
            "{msg}"
        );
        assert!(
            msg.contains(&all.hex(HashKind::Md5).unwrap())
                && msg.contains(&other.hex(HashKind::Md5).unwrap())
        );
        let longer = Checksums::of_bytes(b"abcd");
        assert!(matches!(
            all.verify("p", &longer),
            Err(ChecksumError::Size {
                expected: 3,
                actual: 4,
                ..
            })
        ));
    }

    #[test]
    fn merge_and_hex() {
        let mut a = Checksums {
            size: 3,
            ..Default::default()
        };
        a.set_hex(HashKind::Sha256, ABC_SHA256).unwrap();
        let mut b = Checksums {
            size: 3,
            ..Default::default()
        };
        b.set_hex(HashKind::Md5, "900150983CD24FB0D6963F7D28E17F72")
            .unwrap();
        a.merge("x", &b).unwrap();
        assert_eq!(a.kinds(), vec![HashKind::Md5, HashKind::Sha256]);
        let c = Checksums {
            size: 4,
            ..Default::default()
        };
        assert!(matches!(a.merge("x", &c), Err(ChecksumError::Size { .. })));
        assert!(a.set_hex(HashKind::Sha1, "abc").is_err());
        assert!(a.set_hex(HashKind::Sha1, "zz").is_err());
        assert!(a.set_hex(HashKind::Md5, "é").is_err());
    }

    #[test]
    fn by_hash_names_round_trip() {
        for k in HashKind::ALL {
            assert_eq!(HashKind::from_by_hash_name(k.by_hash_name()), Some(k));
        }
        assert_eq!(HashKind::from_by_hash_name("sha256"), None);
    }

    #[test]
    fn reader_and_writer_adapters() {
        use std::io::{Read, Write};
        let mut r = HashingReader::new(&b"abc"[..], Hasher::all());
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(r.finish().1, Checksums::of_bytes(b"abc"));
        let mut w = HashingWriter::new(Vec::new(), Hasher::new(&[HashKind::Sha256]));
        w.write_all(b"abc").unwrap();
        let (v, c) = w.finish();
        assert_eq!(v, b"abc");
        assert_eq!(c.hex(HashKind::Sha256).unwrap(), ABC_SHA256);
        let mut h = Hasher::new(&[HashKind::Sha1]);
        assert_eq!(h.update_reader(&b"abc"[..]).unwrap(), 3);
        assert_eq!(h.size(), 3);
    }
}
