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
        Compression::ALL
            .into_iter()
            .skip(1)
            .find(|c| path.ends_with(c.extension()))
            .unwrap_or(Compression::None)
    }

    /// The suffix including the dot (`".xz"`), empty for `None`.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Xz => ".xz",
            Compression::Bzip2 => ".bz2",
            Compression::Lzma => ".lzma",
            Compression::Zstd => ".zst",
        }
    }

    /// `path` without this format's suffix (`main/binary-amd64/Packages.xz` → `main/binary-amd64/Packages`).
    /// A path without the suffix is returned unchanged.
    pub fn strip(self, path: &str) -> &str {
        path.strip_suffix(self.extension()).unwrap_or(path)
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

/// Memory cap for the xz and lzma decoders' dictionaries (apt's indices use far less).
const LZMA_MEMLIMIT: u64 = 1 << 30;

/// A reader that decompresses `inner` as `format`, failing with an
/// `InvalidData` I/O error (whose inner error is [`CompressionError::TooLarge`])
/// once more than `limit` bytes come out. Concatenated gzip, xz, bzip2 and
/// zstd streams are read to the end. A decoder that cannot even be set up
/// (out of memory) yields a reader that returns that error.
pub fn decoder<'a, R: BufRead + 'a>(
    format: Compression,
    inner: R,
    limit: u64,
) -> Box<dyn Read + 'a> {
    let raw: Box<dyn Read + 'a> = match format {
        Compression::None => Box::new(inner),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(inner)),
        Compression::Xz => {
            match liblzma::stream::Stream::new_stream_decoder(
                LZMA_MEMLIMIT,
                liblzma::stream::CONCATENATED,
            ) {
                Ok(s) => Box::new(liblzma::bufread::XzDecoder::new_stream(inner, s)),
                Err(e) => Box::new(FailedReader(Some(e.into()))),
            }
        }
        Compression::Lzma => match liblzma::stream::Stream::new_lzma_decoder(LZMA_MEMLIMIT) {
            Ok(s) => Box::new(liblzma::bufread::XzDecoder::new_stream(inner, s)),
            Err(e) => Box::new(FailedReader(Some(e.into()))),
        },
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(inner)),
        Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(inner) {
            Ok(d) => Box::new(d),
            Err(e) => Box::new(FailedReader(Some(e))),
        },
    };
    Box::new(LimitedReader {
        inner: raw,
        remaining: limit,
        limit,
    })
}

/// A reader that only returns an error (once, then end of stream).
struct FailedReader(Option<std::io::Error>);

impl Read for FailedReader {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        match self.0.take() {
            Some(e) => Err(e),
            None => Ok(0),
        }
    }
}

/// Fails once more than `limit` bytes have come out of `inner`.
struct LimitedReader<R> {
    inner: R,
    remaining: u64,
    limit: u64,
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Ask for at most one byte more than allowed, so that overrunning the
        // cap is noticed without producing much more than it.
        let want = buf
            .len()
            .min(usize::try_from(self.remaining.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.remaining {
            self.remaining = 0;
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                CompressionError::TooLarge { limit: self.limit },
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Turns an I/O error from a [`decoder`] into a [`CompressionError`].
pub fn classify_error(format: Compression, err: std::io::Error) -> CompressionError {
    if let Some(CompressionError::TooLarge { limit }) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<CompressionError>())
    {
        return CompressionError::TooLarge { limit: *limit };
    }
    CompressionError::Io {
        format,
        source: err,
    }
}

/// Decompresses a whole buffer, at most `limit` bytes of output.
pub fn decompress(
    format: Compression,
    data: &[u8],
    limit: u64,
) -> Result<Vec<u8>, CompressionError> {
    if format == Compression::None {
        if data.len() as u64 > limit {
            return Err(CompressionError::TooLarge { limit });
        }
        return Ok(data.to_vec());
    }
    let guess = (data.len() as u64)
        .saturating_mul(6)
        .min(limit)
        .min(256 << 20);
    let mut out = Vec::with_capacity(usize::try_from(guess).unwrap_or(0));
    decoder(format, data, limit)
        .read_to_end(&mut out)
        .map_err(|e| classify_error(format, e))?;
    Ok(out)
}

/// Compresses a whole buffer (used by tests and by tools that generate repositories).
pub fn compress(format: Compression, data: &[u8]) -> Result<Vec<u8>, CompressionError> {
    use std::io::Write;
    let io = |source| CompressionError::Io { format, source };
    match format {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).map_err(io)?;
            e.finish().map_err(io)
        }
        Compression::Xz => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(data).map_err(io)?;
            e.finish().map_err(io)
        }
        Compression::Lzma => {
            let opts = liblzma::stream::LzmaOptions::new_preset(6).map_err(|e| io(e.into()))?;
            let stream =
                liblzma::stream::Stream::new_lzma_encoder(&opts).map_err(|e| io(e.into()))?;
            let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
            e.write_all(data).map_err(io)?;
            e.finish().map_err(io)
        }
        Compression::Bzip2 => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
            e.write_all(data).map_err(io)?;
            e.finish().map_err(io)
        }
        Compression::Zstd => zstd::stream::encode_all(data, 3).map_err(io),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            Compression::from_path("main/binary-amd64/Packages.xz"),
            Compression::Xz
        );
        assert_eq!(Compression::from_path("Packages.lzma"), Compression::Lzma);
        assert_eq!(Compression::from_path("Sources.zst"), Compression::Zstd);
        assert_eq!(Compression::from_path("Packages"), Compression::None);
        assert_eq!(Compression::Gzip.strip("a/Packages.gz"), "a/Packages");
        assert_eq!(Compression::Gzip.strip("a/Packages"), "a/Packages");
        for c in Compression::ALL {
            assert_eq!(Compression::from_path(&format!("x{}", c.extension())), c);
        }
    }

    #[test]
    fn round_trip_every_format() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in Compression::ALL {
            let packed = compress(c, &data).unwrap();
            assert_eq!(
                decompress(c, &packed, data.len() as u64).unwrap(),
                data,
                "{c:?}"
            );
            let err = decompress(c, &packed, data.len() as u64 - 1).unwrap_err();
            assert!(
                matches!(err, CompressionError::TooLarge { .. }),
                "{c:?}: {err}"
            );
        }
    }

    #[test]
    fn concatenated_streams() {
        for c in [
            Compression::Gzip,
            Compression::Xz,
            Compression::Bzip2,
            Compression::Zstd,
        ] {
            let mut packed = compress(c, b"hello ").unwrap();
            packed.extend(compress(c, b"world").unwrap());
            assert_eq!(
                decompress(c, &packed, 100).unwrap(),
                b"hello world",
                "{c:?}"
            );
        }
    }

    #[test]
    fn corrupt_input_is_an_error() {
        for c in Compression::ALL.into_iter().skip(1) {
            let mut packed = compress(c, &[7u8; 5000]).unwrap();
            let mid = packed.len() / 2;
            packed.truncate(mid);
            assert!(decompress(c, &packed, 1 << 20).is_err(), "{c:?} truncated");
            assert!(
                decompress(c, b"definitely not compressed data", 1 << 20).is_err(),
                "{c:?} garbage"
            );
        }
    }
}
