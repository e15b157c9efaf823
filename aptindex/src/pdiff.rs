//! PDiffs: the `<index>.diff/Index` file that lets apt update an index it
//! already has with small ed-script patches instead of fetching it whole.
//!
//! The format is what dak's `generate-index-diffs` writes and what apt's
//! `pkgAcqDiffIndex::ParseDiffIndex` reads: one deb822 paragraph with, for
//! each hash apt knows (`SHA512`, `SHA256`, `SHA1`, `MD5Sum`),
//!
//! * `<Hash>-Current: <hex> <size>`: the uncompressed index the patches lead to
//!   (it equals the Release's entry for the uncompressed index);
//! * `<Hash>-History:` lines `<hex> <size> <patch>`: the uncompressed index a
//!   patch applies *to*;
//! * `<Hash>-Patches:` lines `<hex> <size> <patch>`: the uncompressed ed script;
//! * `<Hash>-Download:` lines `<hex> <size> <patch>.gz`: the file to fetch,
//!   `<index>.diff/<patch>.gz` (apt reads only `.gz` downloads; others are skipped).
//!
//! Debian's merged layout (`X-Patch-Precedence: merged`) names each patch
//! `T-<to>-F-<from>` and makes every one lead straight to Current; dak keeps
//! its own bookkeeping of the unmerged series in `X-Unmerged-<Hash>-History`,
//! `-Patches` and `-Download`, which apt ignores. Both series are parsed here:
//! [`DiffIndex::patches`] is what apt uses, [`DiffIndex::unmerged`] dak's record.
//!
//! Bounded ([`MAX_DIFF_INDEX_SIZE`] bytes, [`MAX_PATCHES`] per series), no
//! panics on input, every error names its line; patch names must be a single
//! safe path component, since they become file names next to the Index.

use crate::checksum::{ChecksumError, Checksums, HashKind};
use crate::deb822::{paragraphs, Deb822Error, Field};

/// Largest diff Index accepted, in bytes (Debian's are tens of KiB).
pub const MAX_DIFF_INDEX_SIZE: usize = 4 << 20;

/// Most patches accepted in one series (dak keeps a few dozen).
pub const MAX_PATCHES: usize = 4096;

/// Longest patch name accepted, in bytes (one file name).
pub const MAX_PATCH_NAME: usize = 255;

/// The hash names apt reads, as they prefix the fields (strongest first, as apt lists them).
const HASH_FIELD_NAMES: [(&str, HashKind); 4] = [
    ("SHA512", HashKind::Sha512),
    ("SHA256", HashKind::Sha256),
    ("SHA1", HashKind::Sha1),
    ("MD5Sum", HashKind::Md5),
];

/// Prefix of dak's fields for the unmerged series.
const UNMERGED_PREFIX: &str = "X-Unmerged-";

/// A parsed `*.diff/Index`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffIndex {
    /// The uncompressed index the patches lead to (`<Hash>-Current`).
    pub current: Checksums,
    /// The patches apt reads (`<Hash>-History/-Patches/-Download`), in the
    /// order they first appear (History order: oldest first).
    pub patches: Vec<Patch>,
    /// dak's unmerged series (`X-Unmerged-<Hash>-*`), which apt ignores.
    pub unmerged: Vec<Patch>,
    /// `X-Patch-Precedence`.
    pub precedence: Precedence,
}

/// How apt is to apply the patches (`X-Patch-Precedence`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Precedence {
    /// No such field: patches form a chain, each leading to the next.
    #[default]
    Chained,
    /// `merged`: each patch leads straight to Current; apt fetches only the
    /// first one it needs.
    Merged,
}

/// One patch of a series.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    /// The patch's name (a single path component, without `.gz`).
    pub name: String,
    /// The uncompressed index this patch applies to (`-History`).
    pub history: Option<Checksums>,
    /// The uncompressed ed script (`-Patches`).
    pub patch: Option<Checksums>,
    /// The gzipped file to fetch, `<name>.gz` (`-Download`).
    pub download: Option<Checksums>,
}

impl Patch {
    /// The file name to fetch, next to the Index: `<name>.gz`.
    pub fn download_name(&self) -> String {
        format!("{}.gz", self.name)
    }

    /// True when apt can use this patch: all three lists name it.
    pub fn is_complete(&self) -> bool {
        self.history.is_some() && self.patch.is_some() && self.download.is_some()
    }
}

/// Which list of a series a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// `-History`: the index a patch applies to.
    History,
    /// `-Patches`: the uncompressed patch.
    Patches,
    /// `-Download`: the compressed patch.
    Download,
}

impl ListKind {
    const ALL: [ListKind; 3] = [ListKind::History, ListKind::Patches, ListKind::Download];

    fn suffix(self) -> &'static str {
        match self {
            ListKind::History => "-History",
            ListKind::Patches => "-Patches",
            ListKind::Download => "-Download",
        }
    }
}

/// What is wrong with a patch name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadName {
    /// Empty (or only `.gz`).
    Empty,
    /// `.` or `..`.
    Dots,
    /// Holds `/`, `\`, a control character or white space.
    Separator,
    /// Longer than [`MAX_PATCH_NAME`] bytes.
    TooLong,
}

impl std::fmt::Display for BadName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadName::Empty => "empty",
            BadName::Dots => "`.` or `..`",
            BadName::Separator => "not a single path component",
            BadName::TooLong => "too long",
        })
    }
}

/// Parsing a diff Index failed.
#[derive(Debug, thiserror::Error)]
pub enum DiffIndexError {
    /// The file is larger than [`MAX_DIFF_INDEX_SIZE`].
    #[error("diff Index of {size} bytes, more than the {limit} accepted")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// deb822 syntax (carries the line).
    #[error(transparent)]
    Syntax(#[from] Deb822Error),
    /// No paragraph at all.
    #[error("empty diff Index")]
    Empty,
    /// No `<Hash>-Current` field.
    #[error("no SHA512-, SHA256-, SHA1- or MD5Sum-Current field")]
    NoCurrent,
    /// A line is not `<hex> <size>` (Current) or `<hex> <size> <name>` (lists).
    #[error("line {line}: {field}: expected `{expected}`, got {text:?}")]
    Malformed {
        /// 1-based line.
        line: usize,
        /// The field.
        field: String,
        /// What the line should look like.
        expected: &'static str,
        /// The line.
        text: String,
    },
    /// A size is not a number.
    #[error("line {line}: {field}: bad size {size:?}")]
    BadSize {
        /// 1-based line.
        line: usize,
        /// The field.
        field: String,
        /// The size as written.
        size: String,
    },
    /// A hash is not hex of its kind's length.
    #[error("line {line}: {field}: {source}")]
    BadHash {
        /// 1-based line.
        line: usize,
        /// The field.
        field: String,
        /// The hex problem.
        #[source]
        source: ChecksumError,
    },
    /// A patch name that is no safe file name.
    #[error("line {line}: {field}: patch name {name:?} is {problem}")]
    BadName {
        /// 1-based line.
        line: usize,
        /// The field.
        field: String,
        /// The name as written.
        name: String,
        /// What is wrong.
        problem: BadName,
    },
    /// Two fields disagree about one file (sizes, or one hash listed twice).
    #[error("line {line}: {field}: {source}")]
    Conflict {
        /// 1-based line.
        line: usize,
        /// The field.
        field: String,
        /// The disagreement.
        #[source]
        source: ChecksumError,
    },
    /// More than [`MAX_PATCHES`] patches in one series.
    #[error("line {line}: more than {limit} patches")]
    TooManyPatches {
        /// 1-based line.
        line: usize,
        /// The limit.
        limit: usize,
    },
}

/// Checks that `name` can be a file name next to the Index.
pub fn check_patch_name(name: &str) -> Result<(), BadName> {
    if name.is_empty() {
        return Err(BadName::Empty);
    }
    if name == "." || name == ".." {
        return Err(BadName::Dots);
    }
    if name.len() > MAX_PATCH_NAME {
        return Err(BadName::TooLong);
    }
    if name
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control() || c.is_whitespace())
    {
        return Err(BadName::Separator);
    }
    Ok(())
}

/// The diff Index of an index: `<path without compression suffix>.diff/Index`
/// (`main/binary-amd64/Packages.xz` → `main/binary-amd64/Packages.diff/Index`).
pub fn diff_index_path(index_path: &str) -> String {
    let base = crate::compress::Compression::from_path(index_path).strip(index_path);
    format!("{base}.diff/Index")
}

/// The directory holding a diff Index's patches (`….diff`), from the Index's path.
pub fn diff_dir(diff_index_path: &str) -> &str {
    diff_index_path
        .strip_suffix("/Index")
        .unwrap_or(diff_index_path)
}

impl DiffIndex {
    /// Parses a diff Index. Only the first paragraph is read, as apt does;
    /// fields of hashes apt does not know are ignored.
    pub fn parse(data: &[u8]) -> Result<DiffIndex, DiffIndexError> {
        if data.len() > MAX_DIFF_INDEX_SIZE {
            return Err(DiffIndexError::TooLarge {
                size: data.len(),
                limit: MAX_DIFF_INDEX_SIZE,
            });
        }
        let par = paragraphs(data).next().ok_or(DiffIndexError::Empty)??;
        let mut index = DiffIndex::default();
        let mut have_current = false;
        let mut primary = Series::default();
        let mut unmerged = Series::default();
        for field in &par.fields {
            if field.name.eq_ignore_ascii_case("X-Patch-Precedence") {
                if field.raw.trim() == "merged" {
                    index.precedence = Precedence::Merged;
                }
                continue;
            }
            let (name, is_unmerged) = match strip_prefix_ignore_case(field.name, UNMERGED_PREFIX) {
                Some(rest) => (rest, true),
                None => (field.name, false),
            };
            let Some((kind, rest)) = HASH_FIELD_NAMES
                .iter()
                .find_map(|&(h, kind)| strip_prefix_ignore_case(name, h).map(|rest| (kind, rest)))
            else {
                continue;
            };
            if rest.eq_ignore_ascii_case("-Current") && !is_unmerged {
                let sums = parse_current(field, kind)?;
                if have_current {
                    index.current.merge("Current", &sums).map_err(|source| {
                        DiffIndexError::Conflict {
                            line: field.line,
                            field: field.name.to_string(),
                            source,
                        }
                    })?;
                } else {
                    index.current = sums;
                    have_current = true;
                }
                continue;
            }
            let Some(list) = ListKind::ALL
                .into_iter()
                .find(|l| rest.eq_ignore_ascii_case(l.suffix()))
            else {
                continue;
            };
            let series = if is_unmerged {
                &mut unmerged
            } else {
                &mut primary
            };
            series.add_field(field, kind, list)?;
        }
        if !have_current {
            return Err(DiffIndexError::NoCurrent);
        }
        index.patches = primary.patches;
        index.unmerged = unmerged.patches;
        Ok(index)
    }

    /// The patches apt would apply to update an index whose uncompressed
    /// checksums are `local`: from the last patch whose History matches
    /// `local` (size equal, at least one common hash, all common hashes
    /// equal) to the end. `Some(&[])` when `local` is already Current;
    /// `None` when no patch starts there (apt then fetches the whole index).
    pub fn series_from(&self, local: &Checksums) -> Option<&[Patch]> {
        if same_file(&self.current, local) {
            return Some(&[]);
        }
        let start = self
            .patches
            .iter()
            .rposition(|p| p.history.as_ref().is_some_and(|h| same_file(h, local)))?;
        self.patches.get(start..)
    }

    /// The downloads apt may ask for (every patch of [`DiffIndex::patches`]
    /// with a `-Download` entry): file name next to the Index, and checksums.
    pub fn downloads(&self) -> impl Iterator<Item = (String, &Checksums)> + '_ {
        self.patches
            .iter()
            .filter_map(|p| p.download.as_ref().map(|d| (p.download_name(), d)))
    }
}

/// Size equal, at least one hash in common, every common hash equal.
fn same_file(a: &Checksums, b: &Checksums) -> bool {
    a.size == b.size
        && HashKind::ALL
            .into_iter()
            .any(|k| a.get(k).is_some() && b.get(k).is_some())
        && HashKind::ALL
            .into_iter()
            .all(|k| match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) => x == y,
                _ => true,
            })
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// Parses `<hex> <size>` of a `-Current` field.
fn parse_current(field: &Field<'_>, kind: HashKind) -> Result<Checksums, DiffIndexError> {
    let text = field.raw.trim();
    let mut words = text.split_ascii_whitespace();
    let (Some(hex), Some(size), None) = (words.next(), words.next(), words.next()) else {
        return Err(DiffIndexError::Malformed {
            line: field.line,
            field: field.name.to_string(),
            expected: "<hash> <size>",
            text: text.to_string(),
        });
    };
    checksums(field.name, field.line, kind, hex, size)
}

fn checksums(
    field: &str,
    line: usize,
    kind: HashKind,
    hex: &str,
    size: &str,
) -> Result<Checksums, DiffIndexError> {
    let size: u64 = size.parse().map_err(|_| DiffIndexError::BadSize {
        line,
        field: field.to_string(),
        size: size.to_string(),
    })?;
    let mut sums = Checksums {
        size,
        ..Checksums::default()
    };
    sums.set_hex(kind, hex)
        .map_err(|source| DiffIndexError::BadHash {
            line,
            field: field.to_string(),
            source,
        })?;
    Ok(sums)
}

/// One series being collected: patches in first-seen order.
#[derive(Debug, Default)]
struct Series {
    patches: Vec<Patch>,
    by_name: std::collections::HashMap<String, usize>,
}

impl Series {
    fn add_field(
        &mut self,
        field: &Field<'_>,
        kind: HashKind,
        list: ListKind,
    ) -> Result<(), DiffIndexError> {
        for (line, text) in field.numbered_lines() {
            if text.trim().is_empty() {
                continue;
            }
            self.add_line(field.name, line, text, kind, list)?;
        }
        Ok(())
    }

    fn add_line(
        &mut self,
        field: &str,
        line: usize,
        text: &str,
        kind: HashKind,
        list: ListKind,
    ) -> Result<(), DiffIndexError> {
        let mut words = text.split_ascii_whitespace();
        let (Some(hex), Some(size), Some(name), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(DiffIndexError::Malformed {
                line,
                field: field.to_string(),
                expected: "<hash> <size> <name>",
                text: text.to_string(),
            });
        };
        let bad_name = |problem| DiffIndexError::BadName {
            line,
            field: field.to_string(),
            name: name.to_string(),
            problem,
        };
        check_patch_name(name).map_err(bad_name)?;
        let name = if list == ListKind::Download {
            match name.strip_suffix(".gz") {
                // apt fetches only gzipped patches and skips other downloads.
                None => return Ok(()),
                Some(stem) => {
                    check_patch_name(stem).map_err(bad_name)?;
                    stem
                }
            }
        } else {
            name
        };
        let sums = checksums(field, line, kind, hex, size)?;
        let i = match self.by_name.get(name) {
            Some(&i) => i,
            None => {
                if self.patches.len() >= MAX_PATCHES {
                    return Err(DiffIndexError::TooManyPatches {
                        line,
                        limit: MAX_PATCHES,
                    });
                }
                self.by_name.insert(name.to_string(), self.patches.len());
                self.patches.push(Patch {
                    name: name.to_string(),
                    ..Patch::default()
                });
                self.patches.len() - 1
            }
        };
        let Some(patch) = self.patches.get_mut(i) else {
            return Ok(());
        };
        let slot = match list {
            ListKind::History => &mut patch.history,
            ListKind::Patches => &mut patch.patch,
            ListKind::Download => &mut patch.download,
        };
        match slot {
            None => *slot = Some(sums),
            // Another hash of the same file (or the same one again): sizes
            // and common hashes must agree.
            Some(old) => {
                old.merge(name, &sums)
                    .map_err(|source| DiffIndexError::Conflict {
                        line,
                        field: field.to_string(),
                        source,
                    })?;
            }
        }
        Ok(())
    }
}
