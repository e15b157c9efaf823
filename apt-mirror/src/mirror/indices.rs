//! The indices of a snapshot: selected from the Release believed (and, for
//! a second Release that disagrees, kept under `by-hash/` only), fetched
//! by-hash first and verified against the Release, and read for the pool
//! files they name: streaming, within caps on decompressed size and on
//! entries per index (`max_index_entries`); a bad entry (unsafe path, bad
//! size or digest) is skipped, counted and warned about, its file not
//! mirrored.

use super::building::Building;
use super::place::{Found, Placement};
use super::release::SuiteReleases;
use super::update::Update;
use super::{MirrorError, INDEX_LIMIT};
use crate::config::MirrorConfig;
use crate::plan::{self, IndexFile, PlanError, PoolSet};
use crate::progress::Progress;
use crate::snapshot::{ReuseIndex, Snapshot};
use aptindex::checksum::Checksums;
use aptindex::trust::Decision;
use futures_util::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

impl Update<'_> {
    /// Fetches every index (one variant per group suffices), records them
    /// and places the PDiff patches they list; returns those present
    /// upstream. A missing Packages or Sources fails the run.
    pub(super) async fn fetch_indices(
        &self,
        b: &Building<'_>,
        indices: &[IndexFile],
    ) -> Result<Vec<IndexFile>, MirrorError> {
        let (new, reuse, progress) = (b.new, &b.reuse, &b.progress);
        let record = |path: &str, sums: &Checksums| b.files.record(path, sums);
        let present: Vec<Option<IndexFile>> = futures_util::stream::iter(indices.iter())
            .map(|idx| self.fetch_index(new, idx, reuse, progress))
            .buffer_unordered(self.ctx.parallel)
            .try_collect()
            .await?;
        let present: Vec<IndexFile> = present.into_iter().flatten().collect();
        for idx in &present {
            record(&idx.stored_path(), &idx.checksums);
        }
        // PDiffs: the patches each diff Index lists, verified against it.
        self.place_patches(new, &present, reuse, progress, &record)
            .await?;
        // Every group needs one variant; Packages and Sources are required.
        let have: HashSet<&str> = present.iter().map(|i| i.group.as_str()).collect();
        for idx in indices {
            if !have.contains(idx.group.as_str()) && !idx.by_hash_only {
                let url = self.url(&idx.path)?.to_string();
                if matches!(
                    idx.kind,
                    Some(aptindex::IndexKind::Packages | aptindex::IndexKind::Sources)
                ) {
                    return Err(MirrorError::Missing { url });
                }
                tracing::warn!(mirror = %self.cfg.id, url = %url, "index listed in Release but not found upstream");
            }
        }
        Ok(present)
    }

    /// Places one variant of an index; `None` if the upstream lacks it.
    pub(super) async fn fetch_index(
        &self,
        new: &Snapshot,
        idx: &IndexFile,
        reuse: &ReuseIndex<'_>,
        progress: &Progress,
    ) -> Result<Option<IndexFile>, MirrorError> {
        let stored = idx.stored_path();
        let old = reuse.find(&stored, &idx.checksums);
        let found = self
            .place(
                Placement {
                    path: &stored,
                    sums: &idx.checksums,
                    dest: &new.tree.join(&stored),
                    tmp: None,
                    old,
                    candidates: &plan::candidates(idx),
                },
                progress,
            )
            .await?;
        Ok((found == Found::Placed).then(|| idx.clone()))
    }

    /// Reads the downloaded indices (one variant per group) and collects the
    /// files they name.
    pub(super) async fn read_indices(
        &self,
        new: &Snapshot,
        present: &[IndexFile],
    ) -> Result<PoolSet, MirrorError> {
        let mut chosen: HashMap<&str, &IndexFile> = HashMap::new();
        for idx in present.iter().filter(|i| i.kind.is_some()) {
            let better = match chosen.get(idx.group.as_str()) {
                None => true,
                // Prefer the cheapest to decompress: plain, then gzip, then others.
                Some(prev) => rank(&idx.path) < rank(&prev.path),
            };
            if better {
                chosen.insert(&idx.group, idx);
            }
        }
        let mut work: Vec<(String, PathBuf, aptindex::IndexKind)> = chosen
            .values()
            .filter_map(|i| Some((i.path.clone(), new.tree.join(i.stored_path()), i.kind?)))
            .collect();
        work.sort_by(|a, b| a.0.cmp(&b.0));
        let cfg = self.cfg.clone();
        let (pool, skipped) = tokio::task::spawn_blocking(move || {
            let mut pool = PoolSet::default();
            let mut skipped = Vec::new();
            for (path, file, kind) in work {
                let s = read_index(&cfg, &path, &file, kind, &mut pool)?;
                if s.count > 0 {
                    skipped.push((path, s));
                }
            }
            Ok::<_, MirrorError>((pool, skipped))
        })
        .await
        .map_err(|e| MirrorError::Index {
            path: "indices".into(),
            problem: Box::new(e.into()),
        })??;
        for (path, s) in skipped {
            let url = self.url(&path).map_or(path.clone(), |u| u.to_string());
            tracing::warn!(mirror = %self.cfg.id, url = %url, skipped = s.count, first = %s, "bad index entries skipped; their files are not mirrored");
            self.counters
                .skipped
                .fetch_add(s.count, std::sync::atomic::Ordering::Relaxed);
            self.counters.warn(format!("{url}: {s}"));
        }
        Ok(pool)
    }
}

fn rank(path: &str) -> u8 {
    match aptindex::Compression::from_path(path) {
        aptindex::Compression::None => 0,
        aptindex::Compression::Gzip => 1,
        aptindex::Compression::Zstd => 2,
        aptindex::Compression::Xz => 3,
        _ => 4,
    }
}

/// Streams one index from disk into `pool`; returns its skipped entries.
fn read_index(
    cfg: &MirrorConfig,
    path: &str,
    file: &Path,
    kind: aptindex::IndexKind,
    pool: &mut PoolSet,
) -> Result<aptindex::index::bounded::Skipped, MirrorError> {
    let f = std::fs::File::open(file).map_err(|source| MirrorError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let reader = std::io::BufReader::with_capacity(256 * 1024, f);
    let decoded =
        aptindex::compress::decoder(aptindex::Compression::from_path(path), reader, INDEX_LIMIT);
    let decoded = std::io::BufReader::with_capacity(256 * 1024, decoded);
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let mut first_error: Option<PlanError> = None;
    let skipped = aptindex::index::bounded::scan_bounded(
        kind,
        dir,
        decoded,
        cfg.max_index_entries,
        // A path that escapes the mirror is a hostile index: not mirrored.
        aptindex::index::bounded::UnsafePaths::Fail,
        |entry| {
            if first_error.is_some() {
                return;
            }
            if kind == aptindex::IndexKind::I18nIndex {
                // Translation files listed by i18n/Index: filtered by language.
                let name = entry.path.rsplit('/').next().unwrap_or("");
                let lang = name
                    .strip_prefix("Translation-")
                    .map(|l| aptindex::Compression::from_path(l).strip(l));
                if !lang.is_some_and(|l| plan::language_wanted(cfg, l)) {
                    return;
                }
            }
            if let Err(e) = pool.add(path, &entry.path, entry.checksums) {
                first_error = Some(e);
            }
        },
    )
    .map_err(|e| MirrorError::Index {
        path: path.to_string(),
        problem: Box::new(e.into()),
    })?;
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(skipped),
    }
}

/// The indices of every suite: those `cfg` selects of the Release believed
/// and, of a second Release that disagrees with it, those that differ
/// (kept under `by-hash/` only, for clients that read the other one).
pub(super) fn select_all(
    cfg: &MirrorConfig,
    releases: &[SuiteReleases],
    parsed: &[Decision],
) -> Result<Vec<IndexFile>, PlanError> {
    let mut indices: Vec<IndexFile> = Vec::new();
    for (r, decision) in releases.iter().zip(parsed) {
        let (rel, other) = (&decision.release, &decision.other);
        let main = plan::select_indices(cfg, &r.suite, rel)?;
        if let Some(other) = other {
            for mut idx in plan::select_indices(cfg, &r.suite, other)? {
                if !main
                    .iter()
                    .any(|m| m.path == idx.path && m.checksums == idx.checksums)
                {
                    idx.by_hash_only = true;
                    idx.group = format!("{} (other Release)", idx.group);
                    indices.push(idx);
                }
            }
        }
        indices.extend(main);
    }
    Ok(indices)
}
