//! Steps 3 to 7 of an update: the new snapshot's tree, from the Release
//! files believed to the `info.json` that describes it.

use super::place::{file_size, link_all, link_file, newer_than, Job};
use super::pool_target::{carried_files, check_held};
use super::release::SuiteReleases;
use super::run::Update;
use super::{MirrorError, TMP_DIR};
use crate::plan::{self, IndexFile};
use crate::pool;
use crate::progress::{Progress, Reporter};
use crate::snapshot::{FileInfo, Info, Reuse, ReuseIndex, Snapshot, Withheld};
use aptindex::checksum::Checksums;
use aptindex::trust::{Decision, ReleaseFile};
use futures_util::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Instant;

impl Update<'_> {
    pub(super) async fn build(
        &self,
        new: &Snapshot,
        releases: &[SuiteReleases],
        parsed: &[Decision],
        current: Option<&Snapshot>,
        current_info: Option<&Info>,
        fingerprint: String,
    ) -> Result<Info, MirrorError> {
        let t0 = Instant::now();
        let tmp = new.dir.join(TMP_DIR);
        let reuse = match (current, current_info) {
            (Some(c), Some(i)) => ReuseIndex::new(&c.tree, i),
            (Some(c), None) => {
                tracing::warn!(mirror = %self.cfg.id, snapshot = %c.name, "current snapshot has no usable info.json: its files are hashed before reuse");
                ReuseIndex::unverified(&c.tree)
            }
            _ => ReuseIndex::default(),
        };
        let files: Mutex<BTreeMap<String, FileInfo>> = Mutex::new(BTreeMap::new());
        let record = |path: &str, sums: &Checksums| {
            files
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(path.to_string(), FileInfo::from_checksums(sums));
        };

        // Release files, as fetched, those that verified (or all, without
        // a keyring); the others are only recorded, so that the next run
        // recognises an upstream still serving the same bytes.
        let mut withheld = BTreeMap::new();
        for (r, decision) in releases.iter().zip(parsed) {
            for (file, data) in ReleaseFile::ALL.into_iter().zip(&r.files) {
                if let Some(data) = data {
                    let path = aptindex::path::join(&r.dir, file.name());
                    if !decision.publishes(file) {
                        let reason = decision
                            .warning(file)
                            .map(|w| w.problem.to_string())
                            .unwrap_or_else(|| "not verified".to_string());
                        withheld.insert(
                            path,
                            Withheld {
                                file: FileInfo::from_checksums(&Checksums::of_bytes(data)),
                                reason,
                            },
                        );
                        continue;
                    }
                    let dest = new.tree.join(&path);
                    aptindex::tree::atomic::write_file(&dest, data)?;
                    if let Some(cur) = current {
                        newer_than(&dest, &cur.tree.join(&path));
                    }
                    record(&path, &Checksums::of_bytes(data));
                }
            }
        }

        // Indices.
        let mut indices: Vec<IndexFile> = Vec::new();
        for (r, decision) in releases.iter().zip(parsed) {
            let (rel, other) = (&decision.release, &decision.other);
            let main = plan::select_indices(self.cfg, &r.suite, rel)?;
            if let Some(other) = other {
                for mut idx in plan::select_indices(self.cfg, &r.suite, other)? {
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
        let progress = Progress::new();
        let _reporter = Reporter::start(&self.cfg.id, progress.clone(), self.ctx.progress_interval);
        let present: Vec<Option<IndexFile>> = futures_util::stream::iter(indices.iter())
            .map(|idx| self.fetch_index(new, idx, &reuse, &progress))
            .buffer_unordered(self.ctx.parallel)
            .try_collect()
            .await?;
        let present: Vec<IndexFile> = present.into_iter().flatten().collect();
        for idx in &present {
            record(&idx.stored_path(), &idx.checksums);
        }
        // PDiffs: the patches each diff Index lists, verified against it.
        self.place_patches(new, &present, &reuse, &progress, &record)
            .await?;
        // Every group needs one variant; Packages and Sources are required.
        let have: HashSet<&str> = present.iter().map(|i| i.group.as_str()).collect();
        for idx in &indices {
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

        // Pool files named by the indices.
        let index_paths: HashSet<&str> = indices.iter().map(|i| i.path.as_str()).collect();
        tracing::debug!(mirror = %self.cfg.id, elapsed_ms = t0.elapsed().as_millis() as u64, "indices fetched");
        let pool = self.read_indices(new, &present).await?;
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
        let mut metadata: Vec<String> = files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
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
        files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(held_carried);
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
            self.place_all(&tmp, &jobs, &progress, &files),
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
            record(&job.path, &job.sums);
        }
        files.lock().unwrap_or_else(|p| p.into_inner()).extend(held);
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
        self.place_all(&tmp, &unlinked, &progress, &files).await?;

        tracing::debug!(mirror = %self.cfg.id, elapsed_ms = t0.elapsed().as_millis() as u64, "pool files placed");
        // by-hash links: this snapshot's indices, plus the previous
        // snapshot's so that clients that read the old InRelease still
        // find its indices.
        let mut by_hash = Vec::new();
        for idx in present.iter().filter(|i| i.by_hash) {
            for kind in idx.checksums.kinds() {
                let Some(hex) = idx.checksums.hex(kind) else {
                    continue;
                };
                let bh = aptindex::path::by_hash_path(&idx.path, kind, &hex);
                link_file(&new.tree.join(idx.stored_path()), &new.tree.join(&bh))?;
                record(&bh, &idx.checksums);
                by_hash.push(bh);
            }
        }
        if let Some(cur) = current {
            for (path, sums) in carry {
                let dest = dest_of(&path);
                // (A leftover of a failed run in the shared pool is replaced.)
                let _ = std::fs::remove_file(&dest);
                if link_file(&cur.tree.join(&path), &dest).is_ok() {
                    record(&path, &sums);
                    carried_names.push(path);
                }
            }
        }
        if let (Some(cur), Some(info)) = (current, current_info) {
            for bh in &info.by_hash {
                let dest = new.tree.join(bh);
                if dest.exists() || plan::safe_path("info.json", bh).is_err() {
                    continue;
                }
                if let Some(fi) = info.files.get(bh) {
                    if link_file(&cur.tree.join(bh), &dest).is_ok() {
                        record(bh, &fi.to_checksums());
                    }
                }
            }
        }
        let carried = carried_names;

        tracing::debug!(mirror = %self.cfg.id, elapsed_ms = t0.elapsed().as_millis() as u64, "by-hash and carried files linked");
        // The upstream must not have changed meanwhile.
        let again = self.fetch_releases().await?;
        for (a, b) in releases.iter().zip(&again) {
            if a.files != b.files {
                return Err(MirrorError::Changed {
                    url: self
                        .url(&aptindex::path::join(&a.dir, "InRelease"))?
                        .to_string(),
                });
            }
        }

        Ok(Info {
            format: 1,
            id: self.cfg.id.clone(),
            created: chrono::Utc::now().to_rfc3339(),
            config: fingerprint,
            files: files.into_inner().unwrap_or_else(|p| p.into_inner()),
            by_hash,
            carried,
            withheld,
        })
    }
}
