//! The pool entries of every suite's current generation, read from
//! `meta_dir` without network and without touching anything: for
//! `apt-cacher import`, which may run beside a serving cacher (so unlike
//! [`super::recovery`] it removes no old generation and no temporary file,
//! and builds no [`super::Generations`]). The indices are read as start-up
//! reads them: the `current` symlink, the Release it holds, each index it
//! lists that is there with its listed size (verified before it was renamed
//! in), streamed within the same caps ([`aptindex::index::bounded`]).

use super::layout::unescape_dir;
use super::RELEASE_FILES;
use crate::config::Mapping;
use aptindex::checksum::Checksums;
use aptindex::index::bounded::{read_bounded, Bounds};
use aptindex::release::Release;
use std::path::Path;

/// Something of `meta_dir` that could not be read (the rest still is).
#[derive(Debug, thiserror::Error)]
pub enum CurrentError {
    /// A directory or file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// What.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A stored Release could not be parsed.
    #[error("stored Release {path}: {source}")]
    Release {
        /// Which.
        path: String,
        /// Why.
        #[source]
        source: aptindex::release::ReleaseError,
    },
    /// A stored index could not be read within its caps.
    #[error("stored index {path}: {source}")]
    Index {
        /// Which.
        path: String,
        /// Why.
        #[source]
        source: aptindex::index::IndexError,
    },
}

/// Calls `visit(mapping, pool path, checksums)` for every entry of every
/// index of every suite's current generation under `meta_dir` whose file
/// name (last path component) `want` accepts. Returns what could not be
/// read (skipped).
pub fn visit_current(
    meta_dir: &Path,
    mappings: &[Mapping],
    bounds: Bounds,
    want: &dyn Fn(&str) -> bool,
    visit: &mut dyn FnMut(usize, &str, &Checksums),
) -> Vec<CurrentError> {
    let mut problems = Vec::new();
    for (i, m) in mappings.iter().enumerate() {
        let dir = meta_dir.join(&m.prefix);
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                problems.push(CurrentError::Io {
                    path: dir.display().to_string(),
                    source,
                });
                continue;
            }
        };
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(suite) = unescape_dir(&name) else {
                continue;
            };
            suite_entries(&entry.path(), &suite, bounds, want, &mut |p, cs| {
                visit(i, p, cs)
            })
            .unwrap_or_else(|e| problems.push(e));
        }
    }
    problems
}

/// The entries of the current generation of the suite stored at `path`
/// (repository directory `suite`).
fn suite_entries(
    path: &Path,
    suite: &str,
    bounds: Bounds,
    want: &dyn Fn(&str) -> bool,
    visit: &mut dyn FnMut(&str, &Checksums),
) -> Result<(), CurrentError> {
    let Ok(target) = std::fs::read_link(path.join("current")) else {
        return Ok(()); // no generation yet
    };
    let is_gen = target
        .to_str()
        .and_then(|t| t.strip_prefix("gen-"))
        .is_some_and(|id| id.parse::<u64>().is_ok());
    if !is_gen {
        return Ok(());
    }
    let gen = path.join(target);
    let Some(release) = RELEASE_FILES
        .iter()
        .filter(|n| **n != "Release.gpg")
        .map(|n| gen.join(n))
        .find(|p| p.is_file())
    else {
        return Ok(());
    };
    let shown = |p: &Path| p.display().to_string();
    let data = std::fs::read(&release).map_err(|source| CurrentError::Io {
        path: shown(&release),
        source,
    })?;
    let release_text = Release::parse_any(&data).map_err(|source| CurrentError::Release {
        path: shown(&release),
        source,
    })?;
    for (rel, cs) in &release_text.entries {
        if !crate::mapping::safe_path(rel) {
            continue;
        }
        let repo_path = aptindex::path::join(suite, rel);
        if aptindex::index::IndexKind::from_path(&repo_path).is_none() {
            continue;
        }
        let file = gen.join(rel);
        if !std::fs::metadata(&file).is_ok_and(|m| m.is_file() && m.len() == cs.size) {
            continue;
        }
        let f = std::fs::File::open(&file).map_err(|source| CurrentError::Io {
            path: shown(&file),
            source,
        })?;
        let raw = std::io::BufReader::with_capacity(64 << 10, f);
        read_bounded(&repo_path, raw, bounds, |e| {
            let name = e.path.rsplit('/').next().unwrap_or(&e.path);
            if want(name) {
                visit(&e.path, &e.checksums);
            }
        })
        .map_err(|source| CurrentError::Index {
            path: shown(&file),
            source,
        })?;
    }
    Ok(())
}
