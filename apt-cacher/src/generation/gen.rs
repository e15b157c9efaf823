//! One generation of one suite: its Release, the Release-type files and
//! indices it holds (each verified against that Release), the pool-file
//! checksums its indices give, and what the status page shows of it.

use super::*;
use crate::cache::CommitError;

/// One generation of one suite.
#[derive(Debug)]
pub struct Gen {
    pub(crate) id: u64,
    /// Modification time of every file in it (`Last-Modified`): strictly
    /// later, in whole seconds, than the previous generation's, so that
    /// `If-Modified-Since` never mistakes a new generation for the old.
    pub(crate) stamp: SystemTime,
    pub(crate) dir: PathBuf,
    pub(crate) release: Release,
    /// Which Release-type files it has.
    pub(crate) release_files: Vec<String>,
    /// Indices present in `dir`, relative to the suite directory.
    pub(crate) files: RwLock<HashMap<String, Checksums>>,
    /// Pool file checksums per index (repository-relative paths), each
    /// also registered in `pool_index` under `uid` (until dropped).
    pub(crate) pool: RwLock<HashMap<String, PoolMap>>,
    /// Its number in `pool_index` (unique over all suites; newer: larger).
    pub(crate) uid: u64,
    /// The mapping it belongs to.
    pub(crate) mapping: usize,
    pub(crate) pool_index: Arc<PoolIndex>,
}

impl Drop for Gen {
    fn drop(&mut self) {
        let pool = self.pool.get_mut().unwrap_or_else(|e| e.into_inner());
        for map in pool.values() {
            self.pool_index.unregister(self.uid, self.mapping, map);
        }
    }
}

impl Gen {
    /// An empty generation `id` of `suite`, numbered in `pool_index`.
    pub(super) fn new(
        suite: &Suite,
        pool_index: &Arc<PoolIndex>,
        id: u64,
        stamp: SystemTime,
        dir: PathBuf,
        release: Release,
        release_files: Vec<String>,
    ) -> Gen {
        Gen {
            id,
            stamp,
            dir,
            release,
            release_files,
            files: RwLock::new(HashMap::new()),
            pool: RwLock::new(HashMap::new()),
            uid: pool_index.uid(),
            mapping: suite.mapping,
            pool_index: pool_index.clone(),
        }
    }

    /// True when the generation holds `rel` (relative to the suite directory).
    pub(crate) fn has(&self, rel: &str) -> bool {
        self.files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(rel)
    }

    pub(super) fn add_file(&self, rel: &str, cs: Checksums) {
        self.files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rel.to_string(), cs);
    }

    pub(super) fn add_pool(&self, rel: &str, map: PoolMap) {
        let mut pool = self.pool.write().unwrap_or_else(|e| e.into_inner());
        self.pool_index.register(self.uid, self.mapping, &map);
        if let Some(old) = pool.insert(rel.to_string(), map) {
            self.pool_index.unregister(self.uid, self.mapping, &old);
        }
    }

    /// The entry (relative path) this Release lists with digest `hex` of `kind` in `subdir`.
    pub(super) fn by_hash(
        &self,
        subdir: &str,
        kind: HashKind,
        hex: &str,
    ) -> Option<(String, Checksums)> {
        self.release
            .entries
            .iter()
            .find(|(rel, cs)| {
                crate::mapping::safe_path(rel)
                    && parent(rel) == subdir
                    && cs.hex(kind).is_some_and(|h| h.eq_ignore_ascii_case(hex))
            })
            .map(|(r, c)| (r.clone(), c.clone()))
    }
}

/// The current generation of one suite, for the status page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GenInfo {
    /// The mapping's prefix.
    pub mapping: String,
    /// The suite directory (`dists/bookworm`, or `` for a flat repository).
    pub suite: String,
    /// The generation's number.
    pub generation: u64,
    /// The Release's `Date` field.
    pub release_date: Option<String>,
    /// When the generation was made (seconds since the Unix epoch).
    pub fetched_unix: u64,
    /// When the generation was made, as an HTTP date.
    pub fetched: String,
    /// Indices held in the generation (fetched because a client asked).
    pub indices: usize,
    /// Files the Release lists.
    pub listed: usize,
    /// Signed by whom, unsigned (no keyring), the last refusal.
    pub signature: super::signed::SignatureInfo,
}

impl Generations {
    /// The current generation of every suite known, for the status page.
    pub fn current_generations(&self) -> Vec<GenInfo> {
        let suites: Vec<Arc<Suite>> = {
            let s = self.suites.lock().unwrap_or_else(|e| e.into_inner());
            s.values().cloned().collect()
        };
        let mut out: Vec<GenInfo> = suites
            .iter()
            .filter_map(|s| {
                let g = s.current()?;
                let indices = g.files.read().unwrap_or_else(|e| e.into_inner()).len();
                Some(GenInfo {
                    mapping: self.prefix(s.mapping).to_string(),
                    suite: s.dir.clone(),
                    generation: g.id,
                    release_date: g.release.date.clone(),
                    fetched_unix: unix_secs(g.stamp),
                    fetched: crate::time::http_date(g.stamp),
                    indices,
                    listed: g.release.entries.len(),
                    signature: self.signature_info(s, &g),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.mapping, &a.suite).cmp(&(&b.mapping, &b.suite)));
        out
    }
}

/// A verified index or patch moved into generation `gen` (the commit of
/// its download): its pool entries parsed (an index that cannot be read
/// is refused, see [`super::pool_map`]) and persisted beside it
/// ([`super::pool_store`]), renamed in with the generation's time stamp,
/// then listed as held.
pub(crate) struct IntoGen {
    pub(crate) gen: Arc<Gen>,
    /// Relative to the suite directory.
    pub(crate) rel: String,
    /// The repository path (for parsing its pool entries).
    pub(crate) repo_path: String,
    pub(crate) expected: Checksums,
    /// Mapping prefix and repository path, for the log.
    pub(crate) what: String,
    pub(crate) parser: PoolParser,
}

impl crate::cache::Destination for IntoGen {
    fn place(self: Box<Self>, temp: tempfile::TempPath) -> Result<(), CommitError> {
        let g = &self.gen;
        // Parsed before it is moved in: an index that cannot be read is
        // dropped with its temporary file, never kept in the generation.
        let pool = self
            .parser
            .parse(&self.what, &self.repo_path, &temp)
            .map_err(|e| CommitError::Refused(Box::new(e)))?;
        // Its pool map persisted before the index enters the generation
        // (pool_store.rs): a restart reads it back instead of parsing.
        if let Some(pool) = &pool {
            if let Err(e) = super::pool_store::store(&g.dir, &self.rel, &self.expected, pool) {
                tracing::warn!(index = %self.what, error = %e, "cannot store the pool map of an index; a restart parses it again");
            }
        }
        let dest = g.dir.join(&self.rel);
        if let Some(p) = dest.parent() {
            aptindex::fsmode::create_dir_all(p).map_err(|source| CommitError::Io {
                path: p.to_path_buf(),
                source,
            })?;
        }
        temp.persist(&dest).map_err(|e| CommitError::Io {
            path: dest.clone(),
            source: e.error,
        })?;
        let _ = std::fs::File::options()
            .write(true)
            .open(&dest)
            .and_then(|f| f.set_modified(g.stamp));
        if let Some(p) = dest.parent() {
            sync_dir(p);
        }
        if let Some(pool) = pool {
            g.add_pool(&self.rel, pool);
        }
        g.add_file(&self.rel, self.expected);
        Ok(())
    }
}
