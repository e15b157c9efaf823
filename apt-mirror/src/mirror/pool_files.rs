//! Steps 4 and 5 of an update: the pool files the indices name, placed in
//! the shared pool generation ([`crate::pool`]) or the new tree: those the
//! generation already holds for a kept snapshot are done, the others are
//! hard-linked from the current snapshot or downloaded, each verified; the
//! pool files dropped upstream stay one more snapshot.

use super::building::Building;
use super::place::{file_size, link_all, link_file, Job};
use super::pool_target::{carried_files, check_held, PoolTarget};
use super::update::Update;
use super::MirrorError;
use crate::plan::IndexFile;
use crate::pool;
use crate::snapshot::{FileInfo, Reuse};
use aptindex::checksum::Checksums;
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;

impl Update<'_> {
    /// Reads the pool files the indices `present` name (but the indices of
    /// `indices` themselves), adds those the current snapshot had and
    /// upstream dropped, and decides where they go.
    async fn plan_pool(
        &self,
        b: &Building<'_>,
        indices: &[IndexFile],
        present: &[IndexFile],
    ) -> Result<PoolPlan, MirrorError> {
        let (new, current, current_info, t0) = (b.new, b.current, b.current_info, b.t0);
        let index_paths: HashSet<&str> = indices.iter().map(|i| i.path.as_str()).collect();
        let pool = self.read_indices(new, present).await?;
        tracing::debug!(mirror = %self.cfg.id, elapsed_ms = t0.elapsed().as_millis() as u64, "indices read");
        let wanted: Vec<(String, Checksums)> = pool
            .files
            .into_iter()
            .filter(|(path, _)| !index_paths.contains(path.as_str()))
            .collect();
        // Pool files just dropped upstream stay one more generation, for
        // clients that read the previous indices.
        let carried = carried_files(current_info, &wanted);

        // The top-level directories holding only pool files are shared with
        // the previous snapshots (crate::pool); the rest of the tree is new.
        let mut metadata: Vec<String> = b.files.paths();
        metadata.extend(indices.iter().map(|i| i.path.clone()));
        metadata.extend(current_info.iter().flat_map(|i| i.by_hash.iter().cloned()));
        let shared = pool::shared_dirs(
            wanted.iter().chain(&carried).map(|(p, _)| p.as_str()),
            metadata.iter().map(String::as_str),
        );
        let target = self.pool_target(new, current, current_info, &shared, &wanted, &carried)?;
        if let Some(t) = &target {
            pool::link_shared(&new.tree, &t.dir, &t.name, &shared)?;
        }
        Ok(PoolPlan {
            wanted,
            carried,
            shared,
            target,
        })
    }

    /// Places the pool files `present` (the indices fetched of `indices`)
    /// name; returns the paths carried over from the current snapshot.
    pub(super) async fn place_pool_files(
        &self,
        b: &Building<'_>,
        indices: &[IndexFile],
        present: &[IndexFile],
    ) -> Result<Vec<String>, MirrorError> {
        let (new, current) = (b.new, b.current);
        let (reuse, progress, tmp) = (&b.reuse, &b.progress, &b.tmp);
        let PoolPlan {
            wanted,
            carried,
            shared,
            target,
        } = self.plan_pool(b, indices, present).await?;
        let extending = target.as_ref().filter(|t| !t.fresh);
        let dest_of = |path: &str| match &target {
            Some(t) if pool::is_shared(&shared, path) => t.dir.join(path),
            _ => new.tree.join(path),
        };
        let no_flags = (vec![false; wanted.len()], vec![false; carried.len()]);
        let (wanted_present, carried_present) = match extending {
            Some(t) => (&t.wanted_present, &t.carried_present),
            None => (&no_flags.0, &no_flags.1),
        };

        // What to place: files the shared generation already holds for a
        // kept snapshot are done; the others are hard-linked from the
        // current snapshot when it has them, or downloaded. Whatever goes
        // into the shared generation is journaled first.
        let mut jobs: Vec<Job> = Vec::new();
        let mut journal: Vec<String> = Vec::new();
        let mut held: Vec<(String, FileInfo)> = Vec::new();
        let (mut n, mut bytes) = (0u64, 0u64);
        for ((path, sums), present) in wanted.into_iter().zip(wanted_present) {
            if *present {
                held.push((path, FileInfo::from_checksums(&sums)));
                continue;
            }
            let dest = dest_of(&path);
            let mut old = reuse.find(&path, &sums);
            let staged = extending.is_some() && pool::is_shared(&shared, &path);
            if staged {
                journal.push(path.clone());
                // A leftover of a failed run: kept if it verifies, else replaced.
                if std::fs::symlink_metadata(&dest).is_ok() {
                    old = Some(Reuse::Unverified(dest.clone()));
                }
            }
            if old.is_none() {
                n += 1;
                bytes += sums.size;
            }
            jobs.push(Job {
                path,
                sums,
                dest,
                old,
                staged,
            });
        }
        let in_place = held.len() as u64;
        let mut carried_names = Vec::new();
        let mut carry = Vec::new();
        let mut held_carried = Vec::new();
        for ((path, sums), present) in carried.into_iter().zip(carried_present) {
            if *present && file_size(&dest_of(&path)) == Some(sums.size) {
                aptindex::fsmode::heal_path(&dest_of(&path))?;
                held_carried.push((path.clone(), FileInfo::from_checksums(&sums)));
                carried_names.push(path);
                continue;
            }
            if extending.is_some() && pool::is_shared(&shared, &path) {
                journal.push(path.clone());
            }
            carry.push((path, sums));
        }
        b.files.extend(held_carried);
        if let Some(t) = extending {
            // Written and flushed before anything is added to the generation.
            let data = serde_json::to_vec(&pool::Journal {
                pool: t.name.clone(),
                paths: journal,
            })
            .map_err(|e| MirrorError::Io {
                path: new.dir.join(pool::JOURNAL),
                source: e.into(),
            })?;
            aptindex::tree::atomic::write_file(&new.dir.join(pool::JOURNAL), &data)?;
        }
        progress.add_planned(n, bytes);
        tracing::info!(mirror = %self.cfg.id, files = jobs.len() as u64 + in_place, already_in_pool = in_place, to_download = n, bytes_to_download = bytes, "pool files");
        // Files the current snapshot has with the same size and hashes are
        // hard-linked on a blocking thread (file-system bound) while the
        // others download; a link that fails is downloaded afterwards.
        let (known, jobs): (Vec<_>, Vec<_>) = jobs
            .into_iter()
            .partition(|j| matches!(j.old, Some(Reuse::Known(_))));
        // Meanwhile, the files the generation holds are checked to be there
        // (one removed or truncated behind our back is placed again).
        let holds = target.as_ref().map(|t| t.dir.clone());
        let (links, downloads, held) = tokio::join!(
            link_all(&new.tree, known),
            self.place_all(tmp, &jobs, progress, &b.files),
            check_held(holds, held),
        );
        downloads?;
        let (linked, mut unlinked) = links?;
        let (held, missing) = held?;
        self.counters.reused.fetch_add(
            linked.len() as u64 + in_place - missing.len() as u64,
            Ordering::Relaxed,
        );
        for job in &linked {
            b.files.record(&job.path, &job.sums);
        }
        b.files.extend(held);
        for (path, fi) in missing {
            tracing::warn!(mirror = %self.cfg.id, path = %path, "missing from the shared pool: placed again");
            let dest = dest_of(&path);
            let old = std::fs::symlink_metadata(&dest)
                .is_ok()
                .then(|| Reuse::Unverified(dest.clone()));
            unlinked.push(Job {
                path,
                sums: fi.to_checksums(),
                dest,
                old,
                staged: true,
            });
        }
        self.place_all(tmp, &unlinked, progress, &b.files).await?;

        if let Some(cur) = current {
            for (path, sums) in carry {
                let dest = dest_of(&path);
                // (A leftover of a failed run in the shared pool is replaced.)
                let _ = std::fs::remove_file(&dest);
                if link_file(&cur.tree.join(&path), &dest).is_ok() {
                    b.files.record(&path, &sums);
                    carried_names.push(path);
                }
            }
        }
        Ok(carried_names)
    }
}

/// The pool files of a new snapshot and where they go.
struct PoolPlan {
    /// Named by the indices: path and expected checksums.
    wanted: Vec<(String, Checksums)>,
    /// Dropped upstream, kept one more snapshot.
    carried: Vec<(String, Checksums)>,
    /// The top-level directories shared through a pool generation.
    shared: BTreeSet<String>,
    /// That generation (`None`: nothing is shared).
    target: Option<PoolTarget>,
}
