//! Reading an index from an upstream that may be hostile: memory bounded
//! whatever the index's size, one bad entry never costs the rest.
//!
//! The decompressed bytes are streamed through the paragraph scanners of
//! [`super`] (nothing holds the whole index), the decompressed size is
//! capped, and so is the number of entries handed over
//! ([`IndexError::TooManyEntries`]): the caller, which deduplicates as it
//! goes (a map keyed by path), holds at most that many. A paragraph whose
//! entry is unusable (an unsafe `Filename` or `Directory`, a `Size` that
//! overflows, a bad digest, no digest at all, a path longer than
//! [`MAX_PATH_LEN`]) is skipped and counted in
//! [`Skipped`], with the first one's line and reason, so that the good
//! entries still protect their files. Syntax errors, a decompression
//! failure and the caps (entries, and [`MAX_PATH_BYTES`] of paths in all)
//! fail the whole index.

use super::{scan_entries, FileEntry, IndexError, IndexKind, InvalidKind};
use crate::compress::{classify_error, decoder, Compression};
use crate::deb822::Deb822Error;
use std::io::BufRead;

/// Default cap on the entries of one index: Debian's largest (main,
/// amd64) has about 63,000, all of a big suite's components fewer than
/// 200,000.
pub const DEFAULT_MAX_ENTRIES: u64 = 1_000_000;

/// The longest file path an entry may name: real ones are under 300
/// bytes; a longer one is skipped as bad (it would cost memory, not
/// protect a file).
pub const MAX_PATH_LEN: usize = 1024;

/// Cap on the bytes of all paths one index names, together: 256 bytes a
/// path on average over the entry cap, and never more than this. With
/// [`MAX_PATH_LEN`] it bounds what a caller keeping every path holds
/// (Debian's largest index names about 5 MB of paths).
pub const MAX_PATH_BYTES: u64 = 256 << 20;

/// The path-bytes cap for an entry cap of `max_entries` (see [`MAX_PATH_BYTES`]).
pub fn path_bytes_cap(max_entries: u64) -> u64 {
    max_entries.saturating_mul(256).min(MAX_PATH_BYTES)
}

/// The caps on reading one index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Most decompressed bytes read.
    pub decompressed: u64,
    /// Most entries handed over.
    pub max_entries: u64,
}

/// The first entry skipped in an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstSkipped {
    /// 1-based line of its paragraph.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// The entries of an index that were skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// How many.
    pub count: u64,
    /// The first one.
    pub first: Option<FirstSkipped>,
}

impl Skipped {
    fn add(&mut self, line: usize, reason: String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(FirstSkipped { line, reason });
        }
    }
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bad entries skipped", self.count)?;
        if let Some(first) = &self.first {
            write!(f, " (first: line {}: {})", first.line, first.reason)?;
        }
        Ok(())
    }
}

/// What to do with an entry whose path is unsafe ([`InvalidKind::UnsafePath`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafePaths {
    /// Skip and count it, like any bad entry (apt-cacher: the rest of the
    /// index still protects its files).
    Skip,
    /// Fail the whole index (apt-mirror: a hostile index is not mirrored).
    Fail,
}

/// Streams the good entries of an index of `kind` (already decompressed)
/// to `f`, skipping bad ones; fails once more than `max_entries` good ones
/// came. `dir` is the index's directory (for an i18n `Index`).
pub fn scan_bounded<R: BufRead>(
    kind: IndexKind,
    dir: &str,
    reader: R,
    max_entries: u64,
    unsafe_paths: UnsafePaths,
    mut f: impl FnMut(FileEntry),
) -> Result<Skipped, IndexError> {
    let mut skipped = Skipped::default();
    let mut good: u64 = 0;
    let mut path_bytes: u64 = 0;
    let path_cap = path_bytes_cap(max_entries);
    scan_entries(kind, dir, reader, max_entries, &mut |r| {
        match r {
            Ok(s) if s.entry.checksums.strongest().is_none() => {
                skipped.add(s.line, format!("{}: no digest", s.entry.path));
            }
            Ok(s) if s.entry.path.len() > MAX_PATH_LEN => {
                let len = s.entry.path.len();
                skipped.add(
                    s.line,
                    format!("a path of {len} bytes (most {MAX_PATH_LEN})"),
                );
            }
            Ok(s) => {
                good += 1;
                if good > max_entries {
                    return Err(IndexError::TooManyEntries { limit: max_entries });
                }
                path_bytes += s.entry.path.len() as u64;
                if path_bytes > path_cap {
                    return Err(IndexError::TooManyPathBytes { limit: path_cap });
                }
                f(s.entry);
            }
            Err(
                e @ IndexError::Invalid {
                    kind: InvalidKind::UnsafePath,
                    ..
                },
            ) if unsafe_paths == UnsafePaths::Fail => return Err(e),
            Err(IndexError::Invalid { line, reason, .. }) => skipped.add(line, reason),
            Err(e) => return Err(e),
        }
        Ok(())
    })?;
    Ok(skipped)
}

/// [`scan_bounded`] (unsafe paths skipped) of the index at repository path `path` (its kind and
/// compression chosen by name) read from `raw` (as stored: compressed).
/// An index kind without file entries yields nothing.
pub fn read_bounded<R: BufRead>(
    path: &str,
    raw: R,
    bounds: Bounds,
    f: impl FnMut(FileEntry),
) -> Result<Skipped, IndexError> {
    let Some(kind) = IndexKind::from_path(path) else {
        return Ok(Skipped::default());
    };
    let format = Compression::from_path(path);
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    let reader =
        std::io::BufReader::with_capacity(256 << 10, decoder(format, raw, bounds.decompressed));
    scan_bounded(kind, dir, reader, bounds.max_entries, UnsafePaths::Skip, f).map_err(|e| match e {
        IndexError::Deb822(Deb822Error::Io { source, .. }) => classify_error(format, source).into(),
        e => e,
    })
}

#[cfg(test)]
mod tests;
