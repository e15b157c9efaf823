//! PDiffs in a snapshot: for every `<index>.diff/Index` the plan selected
//! (fetched and verified against the Release like any index, with its
//! by-hash links), the patches it lists (`<Hash>-Download`, `<name>.gz`
//! next to the Index) are placed too, each verified against the Index.
//!
//! A patch missing upstream is a warning: a client that asks the mirror for
//! it gets a 404 and apt falls back to the whole index. A patch that fails
//! verification fails the run like any other file that fails verification:
//! the current snapshot is kept, and no snapshot ever publishes an Index
//! whose patch does not match it. Patches the new Index no longer lists
//! stay one more snapshot, like every file dropped upstream
//! (`carried_files` in mirror/pool_target.rs), for clients that read the previous
//! InRelease; then they go.

use super::place::{Found, Placement};
use super::update::Update;
use super::{IndexProblem, MirrorError};
use crate::plan::{self, IndexFile, PlanError};
use crate::progress::Progress;
use crate::snapshot::{ReuseIndex, Snapshot};
use aptindex::checksum::Checksums;
use aptindex::pdiff::{diff_dir, DiffIndex, MAX_DIFF_INDEX_SIZE};
use futures_util::{StreamExt, TryStreamExt};
use std::collections::BTreeMap;

/// True for a PDiff index (`….diff/Index`).
pub(super) fn is_diff_index(path: &str) -> bool {
    path.ends_with(".diff/Index")
}

/// The patches the diff Index `idx` (stored in `new`) lists: path relative
/// to the repository root and the checksums of the `.gz` file.
fn patches_of(new: &Snapshot, idx: &IndexFile) -> Result<Vec<(String, Checksums)>, MirrorError> {
    let bad = |problem: IndexProblem| MirrorError::Index {
        path: idx.path.clone(),
        problem: Box::new(problem),
    };
    if idx.checksums.size > MAX_DIFF_INDEX_SIZE as u64 {
        return Err(bad(IndexProblem::TooLarge {
            size: idx.checksums.size,
            limit: MAX_DIFF_INDEX_SIZE,
        }));
    }
    let file = new.tree.join(idx.stored_path());
    let data = std::fs::read(&file).map_err(|source| MirrorError::Io { path: file, source })?;
    let index = DiffIndex::parse(&data).map_err(|e| bad(e.into()))?;
    let dir = diff_dir(&idx.path);
    index
        .downloads()
        .map(|(name, sums)| {
            let path = plan::safe_path(&idx.path, &aptindex::path::join(dir, &name))?;
            Ok((path, sums.clone()))
        })
        .collect()
}

impl Update<'_> {
    /// Places the patches of every diff Index in `present` and records each
    /// one placed with `record`.
    pub(super) async fn place_patches(
        &self,
        new: &Snapshot,
        present: &[IndexFile],
        reuse: &ReuseIndex<'_>,
        progress: &Progress,
        record: &(dyn Fn(&str, &Checksums) + Sync),
    ) -> Result<(), MirrorError> {
        let mut wanted: BTreeMap<String, Checksums> = BTreeMap::new();
        for idx in present.iter().filter(|i| is_diff_index(&i.path)) {
            for (path, sums) in patches_of(new, idx)? {
                match wanted.get_mut(&path) {
                    None => {
                        wanted.insert(path, sums);
                    }
                    Some(known) => known.merge(&path, &sums).map_err(|e| PlanError::Conflict {
                        source_file: idx.path.clone(),
                        conflict: e.into(),
                    })?,
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        tracing::info!(mirror = %self.cfg.id, patches = wanted.len(), "pdiff patches");
        futures_util::stream::iter(wanted.iter())
            .map(|(path, sums)| async move {
                let old = reuse.find(path, sums);
                let found = self
                    .place(
                        Placement {
                            path,
                            sums,
                            dest: &new.tree.join(path),
                            tmp: None,
                            old,
                            candidates: std::slice::from_ref(path),
                        },
                        progress,
                    )
                    .await?;
                match found {
                    Found::Placed => record(path, sums),
                    Found::NotUpstream => {
                        let url = self.url(path)?;
                        tracing::warn!(mirror = %self.cfg.id, url = %url, "pdiff patch listed in its Index but not found upstream; clients fall back to the whole index");
                    }
                }
                Ok::<(), MirrorError>(())
            })
            .buffer_unordered(self.ctx.parallel)
            .try_collect::<()>()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_index_paths() {
        assert!(is_diff_index(
            "dists/s/main/binary-amd64/Packages.diff/Index"
        ));
        assert!(!is_diff_index("dists/s/main/i18n/Index"));
        assert!(!is_diff_index(
            "dists/s/main/binary-amd64/Packages.diff/x.gz"
        ));
    }
}
