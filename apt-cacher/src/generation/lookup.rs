//! Finding a metadata file: the suite whose Release lists a repository
//! path (walking up its directories), the generation a client should see,
//! and by-hash paths looked up in every generation still served.

use super::*;

impl Generations {
    /// The metadata file at repository path `path` of `mapping` for
    /// `client`: a PDiff patch ([`super::pdiff`]), or an index or by-hash
    /// file a served suite's Release lists. `None` for anything else (pool
    /// files are never metadata: no suite lookup for them).
    pub async fn meta_file(
        &self,
        mapping: usize,
        path: &str,
        client: SocketAddr,
    ) -> Option<Result<Meta, MetaError>> {
        if path.starts_with("pool/") {
            return None;
        }
        if let Some(patch) = self.patch_file(mapping, path, client).await {
            return Some(patch);
        }
        self.index_file(mapping, path, client).await
    }

    /// Finds the generation file for repository path `path` of `mapping`:
    /// an index listed by a suite's Release, or a by-hash path. `None` when
    /// no known suite lists it.
    pub async fn index_file(
        &self,
        mapping: usize,
        path: &str,
        client: SocketAddr,
    ) -> Option<Result<Meta, MetaError>> {
        if let PathKind::ByHash { dir, kind, hex } = aptindex::path::classify(path) {
            return self.by_hash_file(mapping, &dir, kind, &hex).await;
        }
        let mut dir = parent(path);
        loop {
            if let Some(suite) = self.existing_suite(mapping, dir).await {
                suite.mark_asked();
                let rel = path
                    .get(dir.len()..)
                    .map(|r| r.trim_start_matches('/'))
                    .unwrap_or("");
                if let Some(gen) = self.gen_for_client(client, &suite) {
                    if let Some(cs) = gen.release.entries.get(rel).cloned() {
                        return Some(self.gen_file(&suite, gen, rel, cs));
                    }
                }
            }
            if dir.is_empty() {
                return None;
            }
            dir = parent(dir);
        }
    }

    /// Every suite of `mapping` that has a current generation: those in
    /// memory and those on disk (loaded now if need be).
    pub(crate) async fn served_suites(&self, mapping: usize) -> Vec<Arc<Suite>> {
        let mut dirs: Vec<String> = {
            let suites = self.suites.lock().unwrap_or_else(|e| e.into_inner());
            suites
                .keys()
                .filter(|(m, _)| *m == mapping)
                .map(|(_, d)| d.clone())
                .collect()
        };
        if let Some(m) = self.router.mappings().get(mapping) {
            if let Ok(rd) = std::fs::read_dir(self.meta_dir.join(&m.prefix)) {
                dirs.extend(
                    rd.flatten()
                        .filter_map(|e| unescape_dir(&e.file_name().to_string_lossy())),
                );
            }
        }
        dirs.sort();
        dirs.dedup();
        let mut out = Vec::new();
        for dir in dirs {
            if let Some(s) = self.existing_suite(mapping, &dir).await {
                out.push(s);
            }
        }
        out
    }

    /// The suite for `dir` if it has (or had on disk) a generation. Asks
    /// nothing upstream and creates nothing for a name it does not know.
    pub(crate) async fn existing_suite(&self, mapping: usize, dir: &str) -> Option<Arc<Suite>> {
        let suite = match self.known_suite(mapping, dir) {
            Some(s) => s,
            None => {
                // No suite has such a name: not even a look on disk.
                check_suite_dir(dir).ok()?;
                let prefix = &self.router.mappings().get(mapping)?.prefix;
                let on_disk = self
                    .meta_dir
                    .join(prefix)
                    .join(escape_dir(dir))
                    .join("current");
                std::fs::symlink_metadata(on_disk).ok()?;
                self.adopt(mapping, dir)?
            }
        };
        if !suite.state().loaded {
            let _guard = suite.lock.lock().await;
            self.ensure_loaded(&suite).await;
        }
        if suite.current().is_none() {
            self.drop_empty(&suite);
            return None;
        }
        Some(suite)
    }

    pub(super) async fn by_hash_file(
        &self,
        mapping: usize,
        dir: &str,
        kind: HashKind,
        hex: &str,
    ) -> Option<Result<Meta, MetaError>> {
        let mut sdir = dir;
        loop {
            if let Some(suite) = self.existing_suite(mapping, sdir).await {
                suite.mark_asked();
                let sub = dir
                    .get(sdir.len()..)
                    .map(|r| r.trim_start_matches('/'))
                    .unwrap_or("");
                let gens: Vec<Arc<Gen>> = {
                    let st = suite.state();
                    st.current
                        .iter()
                        .cloned()
                        .chain(st.previous.iter().rev().map(|(g, _)| g.clone()))
                        .collect()
                };
                // Prefer a generation that already has the file.
                let mut listed = None;
                for g in gens {
                    if let Some((rel, cs)) = g.by_hash(sub, kind, hex) {
                        if g.has(&rel) {
                            return Some(Ok(Meta::File(g.dir.join(&rel))));
                        }
                        listed.get_or_insert((g, rel, cs));
                    }
                }
                if let Some((g, rel, cs)) = listed {
                    return Some(self.gen_file(&suite, g, &rel, cs));
                }
            }
            if sdir.is_empty() {
                return None;
            }
            sdir = parent(sdir);
        }
    }
}
