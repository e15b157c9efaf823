//! PDiff patches from a generation. A client whose indices are nearly
//! current fetches `<index>.diff/Index` (listed in the Release, so it is an
//! ordinary index of the generation) and then a few patches
//! `<index>.diff/<patch>.gz`, which no Release lists: the diff Index does,
//! in its `<Hash>-Download` lines. So a patch is served from the generation
//! the client was served the Release of: its diff Index is loaded into that
//! generation (verified against the Release) if need be, the patch is looked
//! up there, and fetched, verified against the Index's size and hashes, and
//! stored in the same generation directory (the same machinery as an index:
//! one coalesced download, nothing kept or served as good unless it
//! verifies).
//!
//! A patch name the generation's diff Index does not list gets a 404, not an
//! unverified pass-through: nothing could vouch for its bytes, and apt,
//! when a patch is missing, simply fetches the whole index instead (which
//! the cacher verifies against the Release).

use super::{parent, Gen, Generations, Invalid, LocalIo, Meta, MetaError, Suite};
use aptindex::checksum::Checksums;
use aptindex::pdiff::DiffIndex;
use std::sync::Arc;

/// `(directory ending in .diff, patch name)` when `path` names a patch
/// (not the diff Index itself, not a by-hash path).
fn patch_parts(path: &str) -> Option<(&str, &str)> {
    let (dir, name) = path.rsplit_once('/')?;
    if !dir.ends_with(".diff") || name == "Index" {
        return None;
    }
    aptindex::pdiff::check_patch_name(name).ok()?;
    Some((dir, name))
}

impl Generations {
    /// Serves the PDiff patch at repository path `path` of `mapping` to
    /// `client` (see the module documentation). `None` when `path` is no
    /// patch of a diff Index that a served suite's Release lists.
    pub async fn patch_file(
        &self,
        mapping: usize,
        path: &str,
        client: std::net::SocketAddr,
    ) -> Option<Result<Meta, MetaError>> {
        let (diff_dir, name) = patch_parts(path)?;
        let mut sdir = parent(diff_dir);
        loop {
            if let Some(suite) = self.existing_suite(mapping, sdir).await {
                let rel_dir = diff_dir
                    .get(sdir.len()..)
                    .map(|r| r.trim_start_matches('/'))
                    .unwrap_or("");
                let index_rel = format!("{rel_dir}/Index");
                if let Some(gen) = self.gen_for_client(client, &suite) {
                    if let Some(cs) = gen.release.entries.get(&index_rel).cloned() {
                        let patch_rel = format!("{rel_dir}/{name}");
                        return Some(
                            self.patch_in(&suite, gen, &index_rel, cs, &patch_rel, name, path)
                                .await,
                        );
                    }
                }
            }
            if sdir.is_empty() {
                return None;
            }
            sdir = parent(sdir);
        }
    }

    /// Serves patch `patch_rel` (`name`, repository path `path`) of `gen`,
    /// verified against the diff Index `index_rel` (checksums `index_cs`).
    #[allow(clippy::too_many_arguments)]
    async fn patch_in(
        &self,
        suite: &Arc<Suite>,
        gen: Arc<Gen>,
        index_rel: &str,
        index_cs: Checksums,
        patch_rel: &str,
        name: &str,
        path: &str,
    ) -> Result<Meta, MetaError> {
        if gen.has(patch_rel) {
            return Ok(Meta::File(gen.dir.join(patch_rel)));
        }
        let what = format!(
            "{}/{}",
            self.prefix(suite.mapping),
            aptindex::path::join(&suite.dir, index_rel)
        );
        if index_cs.size > aptindex::pdiff::MAX_DIFF_INDEX_SIZE as u64 {
            return Err(Invalid::DiffIndexTooLarge {
                what,
                size: index_cs.size,
                max: aptindex::pdiff::MAX_DIFF_INDEX_SIZE,
            }
            .into());
        }
        match self.gen_file(suite, gen.clone(), index_rel, index_cs)? {
            Meta::File(_) => {}
            Meta::Fetching { source, .. } => {
                source
                    .finished()
                    .await
                    .map_err(|source| Invalid::Download {
                        what: what.clone(),
                        source,
                    })?
            }
        }
        let file = gen.dir.join(index_rel);
        let data = tokio::task::spawn_blocking(move || std::fs::read(&file))
            .await
            .map_err(LocalIo::from)?
            .map_err(|source| LocalIo::Io {
                what: what.clone(),
                source,
            })?;
        let index = DiffIndex::parse(&data).map_err(|source| {
            tracing::warn!(index = %what, error = %source, "diff Index unusable");
            Invalid::DiffIndex {
                what: what.clone(),
                source,
            }
        })?;
        let Some(cs) = index
            .downloads()
            .find(|(n, _)| n == name)
            .map(|(_, cs)| cs.clone())
        else {
            tracing::info!(index = %what, patch = %name, generation = gen.id, "patch not listed by the diff Index of the client's generation");
            return Err(MetaError::NotListed {
                path: path.to_string(),
                index: what,
                generation: gen.id,
            });
        };
        let url = self
            .router
            .upstream_url(suite.mapping, path)
            .ok_or_else(|| Invalid::BadPath(path.to_string()))?;
        self.gen_file_from(suite, gen, patch_rel, cs, vec![url])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_paths() {
        assert_eq!(
            patch_parts("dists/s/main/binary-amd64/Packages.diff/T-2024-F-2023.gz"),
            Some((
                "dists/s/main/binary-amd64/Packages.diff",
                "T-2024-F-2023.gz"
            ))
        );
        assert_eq!(
            patch_parts("dists/s/main/binary-amd64/Packages.diff/Index"),
            None
        );
        assert_eq!(patch_parts("dists/s/main/binary-amd64/Packages.gz"), None);
        assert_eq!(patch_parts("Packages.diff/.."), None);
        assert_eq!(patch_parts("x.diff/"), None);
    }
}
