//! The indices a Release lists, and the files they in turn name: `Packages`
//! (`Filename`, `Size` and hashes), `Sources` (`Directory` plus `Files` /
//! `Checksums-*`), and the i18n `Index` (Translation files relative to its own
//! directory). Compressed indices are read transparently, chosen by name.

use crate::checksum::{Checksums, HashKind};
use crate::compress::{classify_error, decoder, Compression, CompressionError};
use crate::deb822::{
    is_blank, paragraphs, split_field_line, Deb822Error, Paragraph, ParagraphReader,
};
use crate::path::is_safe_relative;
use crate::release::{SumError, SumLists};
use std::io::BufRead;

pub mod bounded;
mod packages_scan;
use packages_scan::scan_packages;

/// A file that an index (or a Release) refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileEntry {
    /// Path relative to the repository root (for Release entries: relative to the Release's directory).
    pub path: String,
    /// Expected size and hashes.
    pub checksums: Checksums,
}

/// What kind of index a path is, as far as file extraction goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// `Packages` (binary or debian-installer), any compression.
    Packages,
    /// `Sources`, any compression.
    Sources,
    /// `i18n/Index`.
    I18nIndex,
}

impl IndexKind {
    /// The kind of the index at `path` (compression suffix ignored), or
    /// `None` when it names no files that this library extracts.
    pub fn from_path(path: &str) -> Option<IndexKind> {
        let path = Compression::from_path(path).strip(path);
        let mut parts = path.rsplit('/');
        match (parts.next(), parts.next()) {
            (Some("Packages"), _) => Some(IndexKind::Packages),
            (Some("Sources"), _) => Some(IndexKind::Sources),
            (Some("Index"), Some("i18n")) => Some(IndexKind::I18nIndex),
            _ => None,
        }
    }
}

/// Parsing an index failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// deb822 syntax.
    #[error(transparent)]
    Deb822(#[from] crate::deb822::Deb822Error),
    /// A paragraph is missing a field or has a bad value.
    #[error("line {line}: {reason}")]
    Invalid {
        /// 1-based line of the paragraph.
        line: usize,
        /// Which kind of problem.
        kind: InvalidKind,
        /// What is wrong.
        reason: String,
    },
    /// Decompression failed.
    #[error(transparent)]
    Compression(#[from] crate::compress::CompressionError),
    /// The index names more files than the cap allows.
    #[error("more than {limit} entries (max_index_entries)")]
    TooManyEntries {
        /// The cap.
        limit: u64,
    },
    /// The paths the index names add up to more bytes than the cap allows
    /// (few entries with huge names would otherwise pass the entry cap).
    #[error("its file names add up to more than {limit} bytes")]
    TooManyPathBytes {
        /// The cap.
        limit: u64,
    },
}

/// What is wrong with a paragraph ([`IndexError::Invalid`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidKind {
    /// A `Filename` or `Directory` that is not a safe relative path
    /// (traversal, absolute, NUL): a hostile index, for some callers.
    UnsafePath,
    /// A field missing, or a value that does not parse (a `Size` that
    /// overflows, a bad digest).
    Value,
}

/// Cap on one paragraph while streaming an index: 64 MiB.
const PARAGRAPH_LIMIT: usize = 64 << 20;

/// Files named by a `Packages` file's paragraphs (uncompressed bytes).
///
/// Every paragraph must have `Filename` (a safe relative path) and `Size`;
/// `MD5sum`, `SHA1`, `SHA256`, `SHA512` are taken when present (real-world
/// indices exist with none: such an entry has no hash, which callers can see
/// with [`Checksums::strongest`]). Other fields are skipped (checked for
/// deb822 syntax, but not decoded as UTF-8).
pub fn packages_entries(data: &[u8]) -> Result<Vec<FileEntry>, IndexError> {
    // A Debian paragraph is about 800 bytes on average; reserving a little
    // more avoids copying the whole list when it grows (untouched capacity
    // costs no memory pages).
    let mut out = Vec::with_capacity(data.len() / 640 + 1);
    scan_packages(data, true, 0, &mut |e| {
        out.push(e?.entry);
        Ok(())
    })?;
    Ok(out)
}

/// The `Sources` fields holding checksum lists.
const SOURCES_SUM_FIELDS: [(&str, HashKind); 4] = [
    ("Files", HashKind::Md5),
    ("Checksums-Sha1", HashKind::Sha1),
    ("Checksums-Sha256", HashKind::Sha256),
    ("Checksums-Sha512", HashKind::Sha512),
];

/// The i18n `Index` fields holding checksum lists.
const I18N_SUM_FIELDS: [(&str, HashKind); 4] = [
    ("MD5Sum", HashKind::Md5),
    ("SHA1", HashKind::Sha1),
    ("SHA256", HashKind::Sha256),
    ("SHA512", HashKind::Sha512),
];

fn sum_error(e: SumError) -> IndexError {
    match e {
        SumError::Invalid { line, reason } => IndexError::Invalid {
            line,
            kind: InvalidKind::Value,
            reason,
        },
        SumError::Conflict { line, source } => IndexError::Invalid {
            line,
            kind: InvalidKind::Value,
            reason: source.to_string(),
        },
    }
}

/// The entries of one `Sources` paragraph: `Directory` joined with each file
/// of `Files` / `Checksums-*`, merged per file.
fn source_paragraph_entries(
    par: &Paragraph<'_>,
    f: &mut dyn FnMut(FileEntry),
) -> Result<(), IndexError> {
    let Some(dir) = par.get("Directory") else {
        return Err(IndexError::Invalid {
            line: par.line,
            kind: InvalidKind::Value,
            reason: "paragraph has no Directory".to_string(),
        });
    };
    if !is_safe_relative(dir) {
        return Err(IndexError::Invalid {
            line: par.line,
            kind: InvalidKind::UnsafePath,
            reason: format!("unsafe Directory {dir:?}"),
        });
    }
    let mut sums = SumLists::default();
    sums.add_paragraph(par, &SOURCES_SUM_FIELDS, dir)
        .map_err(sum_error)?;
    if sums.entries.is_empty() {
        return Err(IndexError::Invalid {
            line: par.line,
            kind: InvalidKind::Value,
            reason: format!("{dir}: paragraph lists no Files"),
        });
    }
    for (path, checksums) in sums.entries {
        f(FileEntry { path, checksums });
    }
    Ok(())
}

/// Files named by a `Sources` file's paragraphs (uncompressed bytes).
///
/// Every paragraph must have `Directory` (a safe relative path) and list at
/// least one file.
pub fn sources_entries(data: &[u8]) -> Result<Vec<FileEntry>, IndexError> {
    let mut out = Vec::new();
    for par in paragraphs(data) {
        source_paragraph_entries(&par?, &mut |e| out.push(e))?;
    }
    Ok(out)
}

/// Files named by an i18n `Index` (uncompressed bytes) found in directory `dir`
/// (e.g. `dists/bookworm/main/i18n`); paths are returned as `dir/name`.
pub fn i18n_index_entries(dir: &str, data: &[u8]) -> Result<Vec<FileEntry>, IndexError> {
    let mut sums = SumLists::default();
    for par in paragraphs(data) {
        sums.add_paragraph(&par?, &I18N_SUM_FIELDS, dir)
            .map_err(sum_error)?;
    }
    Ok(sums
        .entries
        .into_iter()
        .map(|(path, checksums)| FileEntry { path, checksums })
        .collect())
}

/// The directory part of a `/`-separated path (`""` when there is none).
fn parent_dir(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// Parses the (possibly compressed) index at repository path `path`, with
/// bytes `data`, decompressing at most `limit` bytes. Returns the files it names.
/// An index kind without file entries yields an empty list.
pub fn entries_of(path: &str, data: &[u8], limit: u64) -> Result<Vec<FileEntry>, IndexError> {
    let Some(kind) = IndexKind::from_path(path) else {
        return Ok(Vec::new());
    };
    let format = Compression::from_path(path);
    let dir = parent_dir(path);
    if format == Compression::None {
        if data.len() as u64 > limit {
            return Err(CompressionError::TooLarge { limit }.into());
        }
        return match kind {
            IndexKind::Packages => packages_entries(data),
            IndexKind::Sources => sources_entries(data),
            IndexKind::I18nIndex => i18n_index_entries(dir, data),
        };
    }
    let mut out = Vec::new();
    let reader = std::io::BufReader::with_capacity(256 << 10, decoder(format, data, limit));
    for_each_entry(kind, dir, reader, |e| out.push(e)).map_err(|e| match e {
        IndexError::Deb822(Deb822Error::Io { source, .. }) => classify_error(format, source).into(),
        e => e,
    })?;
    Ok(out)
}

/// Turns a read error into an [`IndexError`], keeping a decompression cap
/// overrun recognisable as [`CompressionError::TooLarge`].
fn read_error(line: usize, source: std::io::Error) -> IndexError {
    match classify_error(Compression::None, source) {
        CompressionError::Io { source, .. } => IndexError::Deb822(Deb822Error::Io { line, source }),
        e => IndexError::Compression(e),
    }
}

/// Streams a `Packages` file through [`scan_packages`], calling `f` with
/// each entry; the first bad one fails the whole file.
#[cfg(test)]
fn stream_packages<R: BufRead, F: FnMut(FileEntry)>(
    reader: R,
    chunk: usize,
    f: &mut F,
) -> Result<(), IndexError> {
    stream_packages_with(reader, chunk, &mut |r: Result<Scanned, IndexError>| {
        f(r?.entry);
        Ok(())
    })
}

/// Streams a `Packages` file through [`scan_packages`], reading straight into
/// a buffer of `chunk` bytes, scanned whenever it is full. It doubles only
/// when one paragraph fills it, so the work stays linear.
fn stream_packages_with<
    R: BufRead,
    F: FnMut(Result<Scanned, IndexError>) -> Result<(), IndexError> + ?Sized,
>(
    mut reader: R,
    chunk: usize,
    f: &mut F,
) -> Result<(), IndexError> {
    let mut buf: Vec<u8> = vec![0; chunk.max(1)];
    let mut len = 0; // bytes of `buf` holding data
    let mut lines = 0;
    loop {
        if len == buf.len() {
            if len >= PARAGRAPH_LIMIT {
                return Err(IndexError::Deb822(Deb822Error::Syntax {
                    line: lines + 1,
                    reason: format!("paragraph larger than {PARAGRAPH_LIMIT} bytes"),
                }));
            }
            buf.resize(2 * buf.len(), 0);
        }
        let n = match reader.read(&mut buf[len..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(lines + 1, e)),
        };
        len += n;
        let eof = n == 0;
        if !eof && len < buf.len() {
            continue;
        }
        let (consumed, at_line) = scan_packages(&buf[..len], eof, lines, f)?;
        if eof {
            return Ok(());
        }
        buf.copy_within(consumed..len, 0);
        len -= consumed;
        lines = at_line;
    }
}

/// Streams the files named by an index of `kind` from `reader` (already
/// decompressed), calling `f` for each, without holding the whole index.
/// `dir` is the index's directory (used for [`IndexKind::I18nIndex`]).
/// Read errors are reported as [`Deb822Error::Io`], except a decompression
/// cap overrun, which is [`IndexError::Compression`]. The first bad entry
/// fails the whole index (see [`bounded`] for skipping them instead).
pub fn for_each_entry<R: BufRead>(
    kind: IndexKind,
    dir: &str,
    reader: R,
    mut f: impl FnMut(FileEntry),
) -> Result<(), IndexError> {
    scan_entries(kind, dir, reader, u64::MAX, &mut |r| {
        f(r?.entry);
        Ok(())
    })
}

/// One paragraph's entry as the scanners hand it over: where it starts
/// (for [`IndexKind::I18nIndex`], whose entries are only known at the end,
/// the last line) and the entry.
pub(crate) struct Scanned {
    /// 1-based line of the paragraph.
    pub(crate) line: usize,
    /// The file it names.
    pub(crate) entry: FileEntry,
}

/// [`for_each_entry`] handing `f` every paragraph's entry or why it has
/// none ([`IndexError::Invalid`]), so that the caller decides whether a bad
/// entry fails the index; an error `f` returns stops the scan.
/// `max_sums` bounds what an i18n `Index` accumulates before it is emitted.
pub(crate) fn scan_entries<R: BufRead>(
    kind: IndexKind,
    dir: &str,
    reader: R,
    max_sums: u64,
    f: &mut dyn FnMut(Result<Scanned, IndexError>) -> Result<(), IndexError>,
) -> Result<(), IndexError> {
    match kind {
        IndexKind::Packages => stream_packages_with(reader, 1 << 20, f),
        IndexKind::Sources | IndexKind::I18nIndex => {
            let mut paragraphs = ParagraphReader::with_limit(reader, PARAGRAPH_LIMIT);
            let mut sums = SumLists::default();
            let mut last = 0;
            loop {
                let owned = match paragraphs.next_paragraph() {
                    Ok(Some(p)) => p,
                    Ok(None) => break,
                    Err(Deb822Error::Io { line, source }) => return Err(read_error(line, source)),
                    Err(e) => return Err(e.into()),
                };
                let par = owned.parse()?;
                last = par.line;
                if kind == IndexKind::Sources {
                    let mut got = Vec::new();
                    match source_paragraph_entries(&par, &mut |e| got.push(e)) {
                        Ok(()) => {
                            for entry in got {
                                f(Ok(Scanned {
                                    line: par.line,
                                    entry,
                                }))?;
                            }
                        }
                        Err(e @ IndexError::Invalid { .. }) => f(Err(e))?,
                        Err(e) => return Err(e),
                    }
                } else {
                    if let Err(e) = sums.add_paragraph(&par, &I18N_SUM_FIELDS, dir) {
                        f(Err(sum_error(e)))?;
                    }
                    if sums.entries.len() as u64 > max_sums {
                        return Err(IndexError::TooManyEntries { limit: max_sums });
                    }
                }
            }
            for (path, checksums) in sums.entries {
                f(Ok(Scanned {
                    line: last,
                    entry: FileEntry { path, checksums },
                }))?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
