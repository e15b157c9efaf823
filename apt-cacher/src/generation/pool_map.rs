//! The map of pool files to the checksums the indices give: parsed from
//! each index a generation holds (and found through [`super::pool_index::PoolIndex`]).
//!
//! An index comes from upstream, which may be hostile: it is read
//! streaming, within caps on its decompressed size and on its entries
//! (`max_index_entries`), and before it is moved into a generation, so
//! that one that cannot be read never lands in `meta_dir` (nor is parsed
//! again at start). Such an index is *quarantined*: logged (index and
//! reason), counted, shown among the recent failures, and refused (the
//! generation is not swapped in with it). Bad entries of an otherwise
//! good index are skipped and counted; the others still protect their files.

use super::pool_entry::PoolMap;
use super::*;
use aptindex::index::bounded::{read_bounded, Bounds};
use aptindex::index::IndexError;

/// An index that cannot be read within its caps.
#[derive(Debug, thiserror::Error)]
#[error("index {index} quarantined: {source}")]
pub struct Quarantined {
    /// Mapping prefix and repository path.
    pub index: String,
    /// Why.
    #[source]
    pub source: IndexError,
}

/// Reads indices for their pool entries, within caps.
#[derive(Debug, Clone)]
pub(crate) struct PoolParser {
    pub(crate) bounds: Bounds,
    pub(crate) metrics: Arc<Metrics>,
}

impl PoolParser {
    /// The pool entries of the index stored at `file` (`index`: mapping
    /// prefix and repository path `repo_path`); `None` for a file that
    /// names no pool files. An unreadable one is logged and counted.
    pub(super) fn parse(
        &self,
        index: &str,
        repo_path: &str,
        file: &Path,
    ) -> Result<Option<PoolMap>, Quarantined> {
        if aptindex::index::IndexKind::from_path(repo_path).is_none() {
            return Ok(None);
        }
        let mut map: HashMap<Box<str>, PoolEntry> = HashMap::new();
        let result = std::fs::File::open(file)
            .map_err(|source| {
                IndexError::Deb822(aptindex::deb822::Deb822Error::Io { line: 0, source })
            })
            .and_then(|f| {
                let raw = std::io::BufReader::with_capacity(64 << 10, f);
                read_bounded(repo_path, raw, self.bounds, |e| {
                    // Deduplicated as it goes: one entry per path.
                    if let Some(entry) = PoolEntry::new(&e.checksums) {
                        map.insert(e.path.into_boxed_str(), entry);
                    }
                })
            });
        match result {
            Ok(skipped) => {
                if skipped.count > 0 {
                    let first = skipped.first.as_ref();
                    tracing::warn!(
                        index = %index,
                        skipped = skipped.count,
                        first_line = first.map_or(0, |f| f.line),
                        first_reason = %first.map_or("", |f| f.reason.as_str()),
                        "bad index entries skipped; their files are not listed"
                    );
                    self.metrics.index_entries_skipped(skipped.count);
                }
                map.shrink_to_fit();
                Ok(Some(Arc::new(map)))
            }
            Err(source) => {
                let q = Quarantined {
                    index: index.to_string(),
                    source,
                };
                tracing::warn!(index = %index, file = %file.display(), error = %q.source, "index quarantined: not used, not kept");
                self.metrics.index_quarantined();
                self.metrics.failure(index, &q.to_string());
                Err(q)
            }
        }
    }
}

impl Generations {
    /// The checksums the indices of `mapping` give for `path`, if any: the
    /// newest generation's that lists it (a suite's current generation
    /// before those still in their grace period, which a client pinned to
    /// one of them may ask for). One hash lookup in [`super::pool_index::PoolIndex`]: no walk
    /// over suites.
    pub fn expected(&self, mapping: usize, path: &str) -> Option<Checksums> {
        self.pool_index.get(mapping, path)
    }
}
