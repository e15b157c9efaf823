//! Publishing a generation: a complete directory (Release files, indices
//! new or carried over from the current generation, each index's pool map
//! in its sidecar, pool_store.rs), every file synced,
//! then the `current` symlink swapped atomically; the old generation
//! enters its grace period.

use super::*;

impl Generations {
    /// Writes a complete generation directory and swaps `current` to it.
    /// `indices`: (relative path, checksums, new file or `None` = link from the current generation).
    pub(super) async fn publish(
        &self,
        suite: &Arc<Suite>,
        release: Release,
        files: Vec<(String, bytes::Bytes)>,
        indices: Vec<(String, Checksums, Option<tempfile::TempPath>)>,
    ) -> Result<(), MetaError> {
        let (id, old) = {
            let mut st = suite.state_mut();
            let id = st.next_id.max(1);
            st.next_id = id + 1;
            (id, st.current.clone())
        };
        let suite_path = suite.path.clone();
        let gen_dir = suite_path.join(format!("gen-{id}"));
        let failed_dir = gen_dir.clone();
        let dir = suite.dir.clone();
        let old_dir = old.as_ref().map(|g| g.dir.clone());
        let old_pool: HashMap<String, PoolMap> = old
            .as_ref()
            .map(|g| g.pool.read().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default();
        let release_names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
        let parser = self.pool_parser.clone();
        let prefix = self.prefix(suite.mapping).to_string();
        let now = SystemTime::now();
        let stamp = match &old {
            Some(g) if g.stamp + Duration::from_secs(1) > now => g.stamp + Duration::from_secs(1),
            _ => now,
        };
        let (built_suite, pool_index) = (suite.clone(), self.pool_index.clone());
        let built = tokio::task::spawn_blocking(move || -> Result<Gen, MetaError> {
            let _ = std::fs::remove_dir_all(&gen_dir);
            aptindex::fsmode::create_dir_all(&gen_dir).map_err(io_err(gen_dir.display()))?;
            for (name, data) in &files {
                aptindex::tree::atomic::write_file(&gen_dir.join(name), data)
                    .map_err(LocalIo::from)?;
            }
            let gen = Gen::new(
                &built_suite,
                &pool_index,
                id,
                stamp,
                gen_dir.clone(),
                release,
                release_names,
            );
            for (rel, cs, temp) in indices {
                let dest = gen_dir.join(&rel);
                if let Some(p) = dest.parent() {
                    aptindex::fsmode::create_dir_all(p).map_err(io_err(p.display()))?;
                }
                let repo_path = aptindex::path::join(&dir, &rel);
                let what = format!("{prefix}/{repo_path}");
                let pool = match (&temp, &old_dir) {
                    (None, _) if old_pool.contains_key(&rel) => old_pool.get(&rel).cloned(),
                    // Parsed before it is moved in: an index that cannot be
                    // read never enters a generation, and this one is not
                    // swapped in (the current one stays).
                    (Some(t), _) => match parser.parse(&what, &repo_path, t) {
                        Ok(p) => p,
                        Err(q) => {
                            let _ = std::fs::remove_dir_all(&gen_dir);
                            return Err(Invalid::from(q).into());
                        }
                    },
                    // Carried without parsed entries (kept by an older
                    // version): not carried if it cannot be read.
                    (None, Some(od)) => match parser.parse(&what, &repo_path, &od.join(&rel)) {
                        Ok(p) => p,
                        Err(_) => continue,
                    },
                    (None, None) => None,
                };
                // Its pool map persisted before the index enters the
                // generation (pool_store.rs): a restart reads it back.
                if let Some(p) = &pool {
                    let stored = match (&temp, &old_dir) {
                        (None, Some(od)) => pool_store::carry(od, &gen_dir, &rel, &cs, p),
                        _ => pool_store::store(&gen_dir, &rel, &cs, p),
                    };
                    if let Err(e) = stored {
                        tracing::warn!(index = %what, error = %e, "cannot store the pool map of an index; a restart parses it again");
                    }
                }
                match (temp, &old_dir) {
                    (Some(t), _) => t
                        .persist(&dest)
                        .map_err(|e| io_err(dest.display())(e.error))?,
                    (None, Some(od)) => {
                        let src = od.join(&rel);
                        if std::fs::hard_link(&src, &dest).is_err() {
                            std::fs::copy(&src, &dest).map_err(io_err(src.display()))?;
                        }
                        // Kept 0600 by an older version: given the cache's mode.
                        aptindex::fsmode::heal_path(&dest).map_err(LocalIo::from)?;
                    }
                    (None, None) => continue,
                }
                if let Some(p) = pool {
                    gen.add_pool(&rel, p);
                }
                gen.add_file(&rel, cs);
            }
            set_mtimes(&gen_dir, stamp);
            sync_tree(&gen_dir);
            // Atomic pointer swap (new symlink, rename, directory fsync).
            // Once the rename is done, `current` names the new generation
            // and it is served; a failed directory fsync (as before) does
            // not undo that (the old generation after a crash is
            // consistent too).
            let link = suite_path.join("current");
            aptindex::tree::atomic::rename_symlink(
                &link,
                Path::new(&format!("gen-{id}")),
                "current.tmp",
            )
            .map_err(LocalIo::from)?;
            let _ = aptindex::tree::atomic::fsync_dir(&suite_path);
            Ok(gen)
        })
        .await
        .map_err(|e| MetaError::from(LocalIo::from(e)))
        .and_then(|built| built);
        let built = match built {
            Ok(gen) => gen,
            Err(e) => {
                // Not published (`current` still names the old one): the
                // partial directory goes at once, not at the next start.
                let what = format!("{}/{}", self.prefix(suite.mapping), suite.dir);
                crate::cache::diskfull::record_in(&self.metrics, &what, &failed_dir, &e);
                let dir = failed_dir.clone();
                let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
                return Err(e);
            }
        };
        let gen = Arc::new(built);
        self.metrics.generation_swapped();
        tracing::info!(mapping = %self.prefix(suite.mapping), suite = %suite.dir, generation = id, "new metadata generation");
        let dead = {
            let mut st = suite.state_mut();
            if let Some(old) = st.current.replace(gen) {
                st.previous.push((old, Instant::now()));
            }
            let grace = self.grace;
            let (dead, live): (Vec<_>, Vec<_>) = std::mem::take(&mut st.previous)
                .into_iter()
                .partition(|(_, t)| t.elapsed() >= grace);
            st.previous = live;
            dead
        };
        remove_gens(dead);
        Ok(())
    }
}
