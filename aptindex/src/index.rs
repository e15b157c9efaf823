//! The indices a Release lists, and the files they in turn name: `Packages`
//! (`Filename`, `Size` and hashes), `Sources` (`Directory` plus `Files` /
//! `Checksums-*`), and the i18n `Index` (Translation files relative to its own
//! directory). Compressed indices are read transparently, chosen by name.

use crate::checksum::Checksums;
use crate::compress::Compression;
use std::io::BufRead;

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
        todo!()
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
        /// What is wrong.
        reason: String,
    },
    /// Decompression failed.
    #[error(transparent)]
    Compression(#[from] crate::compress::CompressionError),
}

/// Files named by a `Packages` file's paragraphs (uncompressed bytes).
pub fn packages_entries(data: &[u8]) -> Result<Vec<FileEntry>, IndexError> {
    todo!()
}

/// Files named by a `Sources` file's paragraphs (uncompressed bytes).
pub fn sources_entries(data: &[u8]) -> Result<Vec<FileEntry>, IndexError> {
    todo!()
}

/// Files named by an i18n `Index` (uncompressed bytes) found in directory `dir`
/// (e.g. `dists/bookworm/main/i18n`); paths are returned as `dir/name`.
pub fn i18n_index_entries(dir: &str, data: &[u8]) -> Result<Vec<FileEntry>, IndexError> {
    todo!()
}

/// Parses the (possibly compressed) index at repository path `path`, with
/// bytes `data`, decompressing at most `limit` bytes. Returns the files it names.
/// An index kind without file entries yields an empty list.
pub fn entries_of(path: &str, data: &[u8], limit: u64) -> Result<Vec<FileEntry>, IndexError> {
    todo!()
}

/// Streams the files named by an index of `kind` from `reader` (already
/// decompressed), calling `f` for each, without holding the whole index.
/// `dir` is the index's directory (used for [`IndexKind::I18nIndex`]).
pub fn for_each_entry<R: BufRead>(
    kind: IndexKind,
    dir: &str,
    reader: R,
    f: impl FnMut(FileEntry),
) -> Result<(), IndexError> {
    todo!()
}

#[allow(dead_code)]
fn _compression_is_used(_: Compression) {}
