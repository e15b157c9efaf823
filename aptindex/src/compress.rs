//! Compression formats of APT indices (.gz, .xz, .bz2, .lzma, .zst, plain),
//! chosen by file name, with a cap on decompressed size so that a
//! decompression bomb fails cleanly instead of exhausting memory or disk.

use std::io::{BufRead, Read};

/// A compression format, chosen by file-name suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip (`.gz`).
    Gzip,
    /// xz (`.xz`).
    Xz,
    /// bzip2 (`.bz2`).
    Bzip2,
    /// legacy lzma-alone (`.lzma`).
    Lzma,
    /// zstd (`.zst`).
    Zstd,
}

impl Compression {
    /// Every format, plain first.
    pub const ALL: [Compression; 6] = [
        Compression::None,
        Compression::Gzip,
        Compression::Xz,
        Compression::Bzip2,
        Compression::Lzma,
        Compression::Zstd,
    ];

    /// The format of a file by its name (`Packages.xz` → `Xz`; unknown → `None`).
    pub fn from_path(path: &str) -> Compression {
        todo!()
    }

    /// The suffix including the dot (`".xz"`), empty for `None`.
    pub fn extension(self) -> &'static str {
        todo!()
    }

    /// `path` without this format's suffix (`main/binary-amd64/Packages.xz` → `main/binary-amd64/Packages`).
    pub fn strip<'a>(self, path: &'a str) -> &'a str {
        todo!()
    }
}

/// Decompression failed.
#[derive(Debug, thiserror::Error)]
pub enum CompressionError {
    /// The decompressed data exceeded the cap.
    #[error("decompressed size exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
    /// The compressed stream is corrupt or truncated, or an I/O error occurred.
    #[error("{format:?} stream: {source}")]
    Io {
        /// Which format.
        format: Compression,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Default cap on decompressed index size: 4 GiB.
pub const DEFAULT_LIMIT: u64 = 4 << 30;

/// A reader that decompresses `inner` as `format`, failing with an
/// `InvalidData` I/O error (whose inner error is [`CompressionError::TooLarge`])
/// once more than `limit` bytes come out.
pub fn decoder<'a, R: BufRead + 'a>(format: Compression, inner: R, limit: u64) -> Box<dyn Read + 'a> {
    todo!()
}

/// Decompresses a whole buffer, at most `limit` bytes of output.
pub fn decompress(format: Compression, data: &[u8], limit: u64) -> Result<Vec<u8>, CompressionError> {
    todo!()
}

/// Compresses a whole buffer (used by tests and by tools that generate repositories).
pub fn compress(format: Compression, data: &[u8]) -> Result<Vec<u8>, CompressionError> {
    todo!()
}
