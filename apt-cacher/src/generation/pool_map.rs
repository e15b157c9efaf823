//! The map of pool files to the checksums the indices give: parsed from
//! each index a generation holds, and looked up for a pool file in the
//! current generations first, then those still in their grace period.

use super::*;

/// Parses the pool entries of the index at `file` (repository path `repo_path`).
pub(super) fn parse_pool(repo_path: &str, file: &Path) -> Option<Arc<HashMap<String, Checksums>>> {
    aptindex::index::IndexKind::from_path(repo_path)?;
    let data = std::fs::read(file).ok()?;
    match aptindex::index::entries_of(repo_path, &data, INDEX_LIMIT) {
        Ok(entries) => Some(Arc::new(
            entries.into_iter().map(|e| (e.path, e.checksums)).collect(),
        )),
        Err(e) => {
            tracing::warn!(index = %repo_path, error = %e, "cannot parse index for pool checksums");
            None
        }
    }
}

impl Generations {
    /// The checksums the indices of `mapping` give for `path`, if any: the
    /// current generations' first, then those still in their grace period.
    pub fn expected(&self, mapping: usize, path: &str) -> Option<Checksums> {
        for suite in self.loaded_suites() {
            if suite.mapping != mapping {
                continue;
            }
            // The current generation first, then those still in their grace
            // period (newest first): a client pinned to one of them may ask
            // for a file its indices list and the current ones dropped.
            let gens: Vec<Arc<Gen>> = {
                let st = suite.state();
                st.current
                    .iter()
                    .cloned()
                    .chain(st.previous.iter().rev().map(|(g, _)| g.clone()))
                    .collect()
            };
            for gen in gens {
                let pool = gen.pool.read().unwrap_or_else(|e| e.into_inner());
                for map in pool.values() {
                    if let Some(cs) = map.get(path) {
                        return Some(cs.clone());
                    }
                }
            }
        }
        None
    }
}
