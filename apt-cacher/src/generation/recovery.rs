//! Crash recovery and start: a suite's current generation is read back
//! from disk (the `current` symlink; files checked by size; each index's
//! pool map from its sidecar, pool_store.rs, or parsed again when that is
//! missing or does not match), every other generation directory (left by
//! a crash or a restart) is removed. Until [`Generations::load_all`] is
//! done, pool requests wait for it (startup.rs).

use super::*;

impl Generations {
    /// Loads every suite found on disk (run once at start, in the background).
    pub async fn load_all(&self) {
        let _done = self.startup.guard();
        let started = std::time::Instant::now();
        for (i, m) in self.router.mappings().iter().enumerate() {
            let Ok(rd) = std::fs::read_dir(self.meta_dir.join(&m.prefix)) else {
                continue;
            };
            for entry in rd.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(dir) = unescape_dir(&name) else {
                    continue;
                };
                if let Some(suite) = self.adopt(i, &dir) {
                    let _guard = suite.lock.lock().await;
                    self.ensure_loaded(&suite).await;
                    // Nothing usable on disk: not a suite (yet).
                    self.drop_empty(&suite);
                }
            }
        }
        let suites = self.loaded_suites();
        let indices: usize = suites
            .iter()
            .filter_map(|s| s.current())
            .map(|g| g.files.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum();
        // Scripts (bench/restart.sh) read this line: everything is served from here on.
        let stats = self.load_stats();
        tracing::info!(
            suites = suites.len(),
            indices,
            pool_maps_read = stats.pool_maps_read,
            indices_parsed = stats.indices_parsed,
            ms = started.elapsed().as_millis() as u64,
            "cached metadata loaded"
        );
    }

    /// Loads a suite's current generation from disk, once. Call with the suite lock held.
    pub(super) async fn ensure_loaded(&self, suite: &Arc<Suite>) {
        if suite.state().loaded {
            return;
        }
        let (s, index) = (suite.clone(), self.pool_index.clone());
        let parser = self.pool_parser.clone();
        let prefix = self.prefix(suite.mapping).to_string();
        let counts = self.startup.1.clone();
        let result =
            tokio::task::spawn_blocking(move || load_suite(&s, &index, &parser, &prefix, &counts))
                .await;
        let (current, next_id) = match result {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::warn!(suite = %suite.path.display(), error = %e, "cannot load cached generation; starting afresh");
                (None, 1)
            }
            Err(e) => {
                tracing::warn!(suite = %suite.path.display(), error = %e, "loading generation failed");
                (None, 1)
            }
        };
        // Verified again (the keyring may be new since it was kept) before
        // its pool maps serve any lookup.
        let (current, pools) = match current {
            Some(Loaded { gen, pools }) => (Some(gen), pools),
            None => (None, Vec::new()),
        };
        let current = self.verify_loaded(suite, current).await;
        if let Some(gen) = &current {
            for (rel, pool) in pools {
                gen.add_pool(&rel, pool);
            }
        }
        let mut st = suite.state_mut();
        st.current = current;
        st.next_id = next_id;
        st.loaded = true;
    }
}

/// Reads a suite's current generation from disk; removes other generation
/// directories (left over from a crash or from before a restart).
///
/// An index that cannot be read within the caps (kept by an older version,
/// or damaged) is quarantined: removed, so no later start parses it again.
pub(super) fn load_suite(
    suite: &Suite,
    pool_index: &Arc<PoolIndex>,
    parser: &PoolParser,
    prefix: &str,
    counts: &startup::LoadCounts,
) -> Result<(Option<Loaded>, u64), MetaError> {
    let mut max_id = 0;
    let mut gens = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(&suite.path) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(id) = name
                .strip_prefix("gen-")
                .and_then(|n| n.parse::<u64>().ok())
            {
                max_id = max_id.max(id);
                gens.insert(id, e.path());
            }
        }
    }
    let current = std::fs::read_link(suite.path.join("current"))
        .ok()
        .and_then(|t| {
            t.to_str()
                .and_then(|s| s.strip_prefix("gen-"))
                .and_then(|n| n.parse::<u64>().ok())
        });
    // Only the current generation is kept: the others were left by a
    // crash or belonged to clients of a previous run.
    let names = gens.keys().map(|id| format!("gen-{id}")).collect();
    let current_name = current.map(|id| format!("gen-{id}"));
    let selection =
        aptindex::tree::generations::select(names, current_name.as_deref(), 0, |_| false);
    for name in selection.doomed {
        let _ = aptindex::tree::generations::remove(&suite.path.join(name));
    }
    let Some(id) = current else {
        return Ok((None, max_id + 1));
    };
    let dir = suite.path.join(format!("gen-{id}"));
    let mut release_files = Vec::new();
    let mut release = None;
    for name in RELEASE_FILES {
        let p = dir.join(name);
        if !p.exists() {
            continue;
        }
        release_files.push(name.to_string());
        if name != "Release.gpg" && release.is_none() {
            let data = std::fs::read(&p).map_err(io_err(p.display()))?;
            release = Some(Release::parse_any(&data).map_err(|source| Invalid::Stored {
                path: p.clone(),
                source,
            })?);
        }
    }
    let Some(release) = release else {
        return Ok((None, max_id + 1));
    };
    let stamp = release_files
        .first()
        .and_then(|n| std::fs::metadata(dir.join(n)).ok())
        .and_then(|m| m.modified().ok())
        // An mtime is anyone's to set (`touch -d @-100`): never before 1970
        // nor in the future.
        .map(|t| crate::time::clamp_http(t.min(SystemTime::now())))
        .unwrap_or_else(SystemTime::now);
    let gen = Gen::new(
        suite,
        pool_index,
        id,
        stamp,
        dir.clone(),
        release,
        release_files,
    );
    let entries: Vec<(String, Checksums)> = gen
        .release
        .entries
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut pools = Vec::new();
    for (rel, cs) in entries {
        if !crate::mapping::safe_path(&rel) {
            continue;
        }
        let p = dir.join(&rel);
        // Files were verified before they were renamed in; a size check catches damage.
        if std::fs::metadata(&p).is_ok_and(|m| m.is_file() && m.len() == cs.size) {
            let repo_path = aptindex::path::join(&suite.dir, &rel);
            let names_pool = aptindex::index::IndexKind::from_path(&repo_path).is_some();
            // The pool map persisted with the index (pool_store.rs): no
            // decompressing and parsing at start.
            if names_pool {
                match pool_store::load(&dir, &rel, &cs, parser.bounds) {
                    Ok(pool) => {
                        counts.map_read();
                        pools.push((rel.clone(), pool));
                        gen.add_file(&rel, cs);
                        continue;
                    }
                    Err(e) => {
                        tracing::info!(index = %format!("{prefix}/{repo_path}"), reason = %e, "no usable pool map stored with the index; parsing it")
                    }
                }
            }
            match parser.parse(&format!("{prefix}/{repo_path}"), &repo_path, &p) {
                Ok(pool) => {
                    if let Some(pool) = pool {
                        counts.parsed();
                        // Written again, so the next start reads it.
                        if let Err(e) = pool_store::store(&dir, &rel, &cs, &pool) {
                            tracing::warn!(index = %format!("{prefix}/{repo_path}"), error = %e, "cannot store the pool map of an index");
                        }
                        pools.push((rel.clone(), pool));
                    }
                    gen.add_file(&rel, cs);
                }
                Err(_) => {
                    // Logged and counted by the parser.
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
    }
    Ok((
        Some(Loaded {
            gen: Arc::new(gen),
            pools,
        }),
        max_id + 1,
    ))
}

/// A generation read back from disk, and its indices' pool maps: not
/// registered for pool lookups ([`Gen::add_pool`]) before its Release files
/// verified against the mapping's keyring.
pub(super) struct Loaded {
    gen: Arc<Gen>,
    pools: Vec<(String, PoolMap)>,
}
