//! `apt-cacher import DIR...`: puts package files found on disk (a host's
//! `/var/cache/apt/archives`, any tree) into the cache, but only those whose
//! size and digest match an entry of a current index. Nothing is fetched:
//! the current generations are read from `meta_dir`
//! ([`crate::generation::current`]). Each DIR is walked first (without
//! following symbolic links, regular files only, within [`MAX_FILES`] and
//! [`MAX_DEPTH`]), so only the index entries of file names found are kept
//! in memory. A file goes in the way a download does: copied into a
//! temporary file of the cache while it is hashed, verified against the
//! index entry, synced, then renamed under its key
//! ([`crate::cache::storage::place`]); never a partial visible file.
//!
//! It may run beside a serving cacher: nothing of `meta_dir` is changed,
//! and the cacher adopts an imported file when it is first asked for
//! ([`crate::cache::Storage::get`]).

use crate::cache::key::{CacheKey, Lookup};
use crate::cache::storage::place;
use crate::config::Config;
use aptindex::checksum::Checksums;
use aptindex::index::bounded::Bounds;
use aptindex::tree::StagedFile;
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// At most this many files are looked at over all DIRs (the rest are
/// reported as not looked at).
pub const MAX_FILES: usize = 1_000_000;
/// Directories deeper than this below a DIR are not entered.
pub const MAX_DEPTH: usize = 32;

/// A DIR that cannot be read at all (the import fails).
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}", path.display())]
pub struct ImportError {
    /// The DIR.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// What became of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    /// Copied into the cache under these keys.
    Imported {
        /// Its storage keys (one per index entry it matched).
        keys: Vec<String>,
    },
    /// Named like a listed file, but not taken.
    Skipped {
        /// Why (digest or size mismatch, already cached, ...).
        reason: String,
    },
    /// No current index lists a file of that name.
    Unknown,
}

/// The report of one import.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Files imported.
    pub imported: u64,
    /// Their bytes (once per file).
    pub imported_bytes: u64,
    /// Files named like a listed file but not taken.
    pub skipped: u64,
    /// Files no current index names.
    pub unknown: u64,
    /// Every file looked at and what became of it, in walk order.
    pub files: Vec<(PathBuf, FileOutcome)>,
    /// What could not be read (subdirectories, stored indices): warnings.
    pub problems: Vec<String>,
}

impl ImportReport {
    /// The summary line: `imported N (X bytes), skipped M, unknown K`.
    pub fn summary(&self) -> String {
        format!(
            "imported {} ({} bytes), skipped {}, unknown {}",
            self.imported, self.imported_bytes, self.skipped, self.unknown
        )
    }
}

/// One index entry a file name may be.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    mapping: usize,
    path: String,
    expected: Checksums,
}

/// Imports the files under `dirs` into the cache of `config` (blocking).
/// Fails only when a DIR itself cannot be read; everything else is in the
/// report.
pub fn import(config: &Config, dirs: &[PathBuf]) -> Result<ImportReport, ImportError> {
    // Files and directories made by another user (`sudo apt-cacher import`)
    // would be ones the service could neither replace nor remove.
    if let Ok(meta) = std::fs::metadata(&config.cache_dir) {
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(ImportError {
                path: config.cache_dir.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "owned by uid {}, not by this user (uid {me}): run the import as its owner, e.g. `sudo -u apt-cacher apt-cacher import DIR...`",
                        meta.uid()
                    ),
                ),
            });
        }
    }
    // Imported files count against cache_capacity like downloaded ones.
    let mut room = config
        .cache_capacity
        .saturating_sub(cache_usage(&config.cache_dir, 0));
    let mut report = ImportReport::default();
    let mut found: Vec<(PathBuf, String)> = Vec::new();
    for dir in dirs {
        let meta = std::fs::metadata(dir).map_err(|source| ImportError {
            path: dir.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(ImportError {
                path: dir.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        std::fs::read_dir(dir).map_err(|source| ImportError {
            path: dir.clone(),
            source,
        })?;
        walk(dir, 0, &mut found, &mut report.problems);
    }
    let names: std::collections::HashSet<&str> = found.iter().map(|(_, n)| n.as_str()).collect();
    let mut by_name: HashMap<String, Vec<Candidate>> = HashMap::new();
    let bounds = Bounds {
        decompressed: crate::generation::INDEX_LIMIT,
        max_entries: config.max_index_entries,
    };
    let problems = crate::generation::current::visit_current(
        &config.meta_dir,
        &config.mappings,
        bounds,
        &|name| names.contains(name),
        &mut |mapping, path, cs| {
            let name = path.rsplit('/').next().unwrap_or(path);
            let c = Candidate {
                mapping,
                path: path.to_string(),
                expected: cs.clone(),
            };
            let list = by_name.entry(name.to_string()).or_default();
            if !list.contains(&c) {
                list.push(c);
            }
        },
    );
    report
        .problems
        .extend(problems.into_iter().map(|p| p.to_string()));
    for (file, name) in &found {
        let outcome = match by_name.get(name) {
            None => FileOutcome::Unknown,
            Some(cands) => import_one(config, file, cands, &mut room),
        };
        match &outcome {
            FileOutcome::Imported { .. } => {
                report.imported += 1;
                report.imported_bytes += std::fs::metadata(file).map_or(0, |m| m.len());
            }
            FileOutcome::Skipped { .. } => report.skipped += 1,
            FileOutcome::Unknown => report.unknown += 1,
        }
        report.files.push((file.clone(), outcome));
    }
    Ok(report)
}

/// Collects the regular files under `dir` (with their names), not
/// following symbolic links, within [`MAX_FILES`] and [`MAX_DEPTH`].
fn walk(dir: &Path, depth: usize, out: &mut Vec<(PathBuf, String)>, problems: &mut Vec<String>) {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => return problems.push(format!("cannot read {}: {e}", dir.display())),
    };
    for entry in rd {
        if out.len() >= MAX_FILES {
            return problems.push(format!(
                "more than {MAX_FILES} files: the rest of {} was not looked at",
                dir.display()
            ));
        }
        let entry = match entry {
            Ok(e) => e,
            Err(e) => return problems.push(format!("cannot read {}: {e}", dir.display())),
        };
        // The entry's own type: a symbolic link is neither a file nor a directory here.
        let Ok(ft) = entry.file_type() else { continue };
        let path = entry.path();
        if ft.is_dir() {
            if depth + 1 >= MAX_DEPTH {
                problems.push(format!("{} is too deep: not entered", path.display()));
            } else {
                walk(&path, depth + 1, out, problems);
            }
        } else if ft.is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            out.push((path, name));
        }
    }
}

/// Imports `file` under each of `cands` it matches.
fn import_one(config: &Config, file: &Path, cands: &[Candidate], room: &mut u64) -> FileOutcome {
    let size = match std::fs::symlink_metadata(file) {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => return skipped("no longer a regular file"),
        Err(e) => return skipped(&format!("cannot read it: {e}")),
    };
    if size > *room {
        return skipped("the cache is full (cache_capacity)");
    }
    let mut keys = Vec::new();
    let mut reasons = Vec::new();
    for c in cands {
        let Some(prefix) = config.mappings.get(c.mapping).map(|m| m.prefix.as_str()) else {
            continue;
        };
        let what = format!("{prefix}/{}", c.path);
        if c.expected.size != size {
            reasons.push(format!(
                "size {size} is not the {} bytes {what} has",
                c.expected.size
            ));
            continue;
        }
        let Some(key) =
            CacheKey::for_file(prefix, &c.path, &Lookup::Listed(c.expected.clone())).storage_key()
        else {
            continue;
        };
        if std::fs::symlink_metadata(config.cache_dir.join(&key)).is_ok() {
            reasons.push(format!("already cached as {what}"));
            continue;
        }
        if size > *room {
            reasons.push("the cache is full (cache_capacity)".to_string());
            continue;
        }
        match copy_verified(config, file, &key, &c.expected) {
            Ok(()) => {
                *room -= size;
                keys.push(key);
            }
            Err(e) => reasons.push(format!("{what}: {e}")),
        }
    }
    if keys.is_empty() {
        let reason = if reasons.is_empty() {
            "no index entry it may be".to_string()
        } else {
            reasons.join("; ")
        };
        return FileOutcome::Skipped { reason };
    }
    FileOutcome::Imported { keys }
}

/// Bytes of the files under `dir` (the cache's own, `.tmp` included: a
/// download in flight takes room too), not following symbolic links.
fn cache_usage(dir: &Path, depth: usize) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0u64;
    for entry in rd.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() && depth < MAX_DEPTH {
            total = total.saturating_add(cache_usage(&entry.path(), depth + 1));
        } else if ft.is_file() {
            total = total.saturating_add(entry.metadata().map_or(0, |m| m.len()));
        }
    }
    total
}

fn skipped(reason: &str) -> FileOutcome {
    FileOutcome::Skipped {
        reason: reason.to_string(),
    }
}

/// Copies `file` into the cache under `key`, hashed as it is written and
/// verified against `expected` before it is renamed in.
fn copy_verified(
    config: &Config,
    file: &Path,
    key: &str,
    expected: &Checksums,
) -> Result<(), aptindex::tree::TreeError> {
    let io = |e: std::io::Error| aptindex::tree::TreeError::io(file)(e);
    // Never through a symbolic link put there since the walk, never blocking on a FIFO.
    let mut src = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(file)
        .map_err(io)?;
    let shown = file.display().to_string();
    let tmp = config.cache_dir.join(crate::cache::key::TMP_DIR);
    let mut staged = StagedFile::for_expected(&tmp, expected, &shown)?;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        // Fails past the expected size: a file that grows is not taken.
        staged.write(buf.get(..n).unwrap_or(&[]))?;
    }
    let verified = staged.finish(expected)?;
    let temp = verified.into_synced_temp_path()?;
    place(&config.cache_dir, key, temp)
        .map_err(|e| aptindex::tree::TreeError::io(&config.cache_dir.join(key))(e))?;
    Ok(())
}
