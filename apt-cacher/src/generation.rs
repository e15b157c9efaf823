//! Consistent metadata generations. For each (mapping, suite directory)
//! the cacher serves one *generation* at a time: the Release files
//! (`InRelease`, `Release`, `Release.gpg`) plus the indices that clients
//! asked for, each verified against that Release.
//!
//! On disk a suite lives in `meta_dir/<prefix>/<suite dir, escaped>/`, with
//! one directory per generation (`gen-<id>`) and a `current` symlink that is
//! swapped atomically (new symlink, rename, fsync) once a new generation is
//! complete. When the upstream Release changes, every index of the current
//! generation is fetched again (by-hash when the Release allows it) and
//! verified against the new Release before the swap; if anything fails, the
//! old generation stays and the refresh is retried later.
//!
//! The previous generations stay available for a grace period: by their
//! by-hash paths to anyone, and by their plain paths to a client (address)
//! that was served their Release shortly before. Indices also feed the map
//! of pool files to expected checksums ([`Generations::expected`]).

use crate::download::{status_of, Downloads, Job, Source, UpstreamNote};
use crate::mapping::Router;
use crate::metrics::{unix_secs, Metrics, Outcome};
use crate::upstream::UpstreamError;
use aptindex::checksum::{Checksums, HashKind};
use aptindex::path::PathKind;
use aptindex::release::Release;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// The Release-type file names, in the order they are fetched.
pub const RELEASE_FILES: [&str; 3] = ["InRelease", "Release", "Release.gpg"];
/// Largest Release file accepted.
const RELEASE_LIMIT: u64 = 64 << 20;
/// Largest decompressed index parsed for pool checksums.
const INDEX_LIMIT: u64 = 2 << 30;

/// Why a metadata request failed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// Upstream failed (and nothing usable is cached).
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Upstream's metadata is unusable.
    #[error("{0}")]
    Invalid(String),
    /// Local I/O.
    #[error("{0}")]
    Io(String),
    /// Nothing the client's generation lists (a PDiff patch its diff Index
    /// does not name, see [`crate::pdiff`]): nothing could verify it.
    #[error("{0}")]
    NotListed(String),
}

fn io_err(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> MetaError {
    move |e| MetaError::Io(format!("{what}: {e}"))
}

/// One generation of one suite.
#[derive(Debug)]
pub struct Gen {
    pub(crate) id: u64,
    /// Modification time of every file in it (`Last-Modified`): strictly
    /// later, in whole seconds, than the previous generation's, so that
    /// `If-Modified-Since` never mistakes a new generation for the old.
    stamp: SystemTime,
    pub(crate) dir: PathBuf,
    pub(crate) release: Release,
    /// Which Release-type files it has.
    release_files: Vec<String>,
    /// Indices present in `dir`, relative to the suite directory.
    files: RwLock<HashMap<String, Checksums>>,
    /// Pool file checksums per index (repository-relative paths).
    pool: RwLock<HashMap<String, Arc<HashMap<String, Checksums>>>>,
}

impl Gen {
    /// True when the generation holds `rel` (relative to the suite directory).
    pub(crate) fn has(&self, rel: &str) -> bool {
        self.files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(rel)
    }

    fn add_file(&self, rel: &str, cs: Checksums) {
        self.files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rel.to_string(), cs);
    }

    fn add_pool(&self, rel: &str, map: Arc<HashMap<String, Checksums>>) {
        self.pool
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rel.to_string(), map);
    }

    /// The entry (relative path) this Release lists with digest `hex` of `kind` in `subdir`.
    fn by_hash(&self, subdir: &str, kind: HashKind, hex: &str) -> Option<(String, Checksums)> {
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

/// The parent directory of a `/`-separated path (`""` at the top).
pub(crate) fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

#[derive(Debug, Default)]
struct SuiteState {
    loaded: bool,
    current: Option<Arc<Gen>>,
    previous: Vec<(Arc<Gen>, Instant)>,
    checked: Option<Instant>,
    next_id: u64,
}

/// One suite of one mapping.
#[derive(Debug)]
pub struct Suite {
    pub(crate) mapping: usize,
    pub(crate) dir: String,
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
    state: RwLock<SuiteState>,
}

impl Suite {
    fn state(&self) -> std::sync::RwLockReadGuard<'_, SuiteState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }
    fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, SuiteState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
    pub(crate) fn current(&self) -> Option<Arc<Gen>> {
        self.state().current.clone()
    }
}

/// A Release-type file to serve, and how it was obtained.
#[derive(Debug)]
pub struct ReleaseAnswer {
    /// The file in the generation.
    pub path: PathBuf,
    /// [`Outcome::Hit`] (current, not re-checked), [`Outcome::Revalidated`]
    /// (re-checked upstream, unchanged) or [`Outcome::Miss`] (a new Release).
    pub outcome: Outcome,
    /// What upstream did when it was asked.
    pub upstream: Option<UpstreamNote>,
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
}

/// A metadata file to serve.
#[derive(Debug)]
pub enum Meta {
    /// A complete file in a generation.
    File(PathBuf),
    /// A download in flight that lands in a generation when verified.
    Fetching(Arc<Source>, bool),
}

/// A client address, mapping and suite directory.
type ClientKey = (IpAddr, usize, String);

/// All suites' generations.
#[derive(Debug)]
pub struct Generations {
    meta_dir: PathBuf,
    tmp: PathBuf,
    check_interval: Duration,
    pub(crate) retry: Duration,
    grace: Duration,
    pub(crate) router: Router,
    pub(crate) downloads: Arc<Downloads>,
    pub(crate) metrics: Arc<Metrics>,
    suites: Mutex<HashMap<(usize, String), Arc<Suite>>>,
    clients: Mutex<HashMap<ClientKey, (u64, Instant)>>,
    /// Indices that failed to load on behalf of a pool file (see [`crate::pool_lookup`]).
    pub(crate) failed_lookups: crate::pool_lookup::FailedLookups,
}

/// Escapes a suite directory into one file name.
fn escape_dir(dir: &str) -> String {
    if dir.is_empty() {
        return "%".into();
    }
    dir.replace('%', "%25").replace('/', "%2F")
}

fn unescape_dir(name: &str) -> String {
    if name == "%" {
        return String::new();
    }
    name.replace("%2F", "/").replace("%25", "%")
}

fn sync_dir(dir: &Path) {
    // Durability only; failures here do not affect consistency.
    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
}

fn write_synced(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(p) = path.parent() {
        aptindex::fsmode::create_dir_all(p)?;
    }
    let mut f = aptindex::fsmode::create_file(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Parses the pool entries of the index at `file` (repository path `repo_path`).
fn parse_pool(repo_path: &str, file: &Path) -> Option<Arc<HashMap<String, Checksums>>> {
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
    /// The generations under `meta_dir` (created; temporary files removed).
    pub fn new(
        config: &crate::config::Config,
        router: Router,
        downloads: Arc<Downloads>,
    ) -> std::io::Result<Generations> {
        let tmp = config.meta_dir.join(".tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        Ok(Generations {
            meta_dir: config.meta_dir.clone(),
            tmp,
            check_interval: config.check_interval,
            retry: config.cache_period.max(Duration::from_secs(1)),
            grace: config.generation_grace,
            router,
            metrics: downloads.metrics().clone(),
            downloads,
            suites: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            failed_lookups: Default::default(),
        })
    }

    fn suite(&self, mapping: usize, dir: &str) -> Option<Arc<Suite>> {
        let prefix = &self.router.mappings().get(mapping)?.prefix;
        let mut suites = self.suites.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            suites
                .entry((mapping, dir.to_string()))
                .or_insert_with(|| {
                    Arc::new(Suite {
                        mapping,
                        dir: dir.to_string(),
                        path: self.meta_dir.join(prefix).join(escape_dir(dir)),
                        lock: tokio::sync::Mutex::new(()),
                        state: RwLock::new(SuiteState::default()),
                    })
                })
                .clone(),
        )
    }

    fn loaded_suites(&self) -> Vec<Arc<Suite>> {
        let suites = self.suites.lock().unwrap_or_else(|e| e.into_inner());
        suites
            .values()
            .filter(|s| s.state().loaded)
            .cloned()
            .collect()
    }

    /// Loads every suite found on disk (run once at start, in the background).
    pub async fn load_all(&self) {
        for (i, m) in self.router.mappings().iter().enumerate() {
            let Ok(rd) = std::fs::read_dir(self.meta_dir.join(&m.prefix)) else {
                continue;
            };
            for entry in rd.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(suite) = self.suite(i, &unescape_dir(&name)) {
                    let _guard = suite.lock.lock().await;
                    self.ensure_loaded(&suite).await;
                }
            }
        }
    }

    /// Loads a suite's current generation from disk, once. Call with the suite lock held.
    async fn ensure_loaded(&self, suite: &Arc<Suite>) {
        if suite.state().loaded {
            return;
        }
        let s = suite.clone();
        let result = tokio::task::spawn_blocking(move || load_suite(&s)).await;
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
        let mut st = suite.state_mut();
        st.current = current;
        st.next_id = next_id;
        st.loaded = true;
    }

    /// Remembers that `client` was served the Release of `gen`.
    fn record_client(&self, client: IpAddr, suite: &Suite, gen: &Gen) {
        let mut c = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if c.len() > 100_000 {
            c.retain(|_, (_, t)| now.duration_since(*t) < self.grace);
        }
        c.insert((client, suite.mapping, suite.dir.clone()), (gen.id, now));
    }

    /// The generation whose plain paths `client` should see in `suite`.
    pub(crate) fn gen_for_client(&self, client: IpAddr, suite: &Suite) -> Option<Arc<Gen>> {
        let st = suite.state();
        let current = st.current.clone()?;
        let c = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((id, t)) = c.get(&(client, suite.mapping, suite.dir.clone())) {
            if *id != current.id && t.elapsed() < self.grace {
                if let Some((g, _)) = st.previous.iter().find(|(g, _)| g.id == *id) {
                    return Some(g.clone());
                }
            }
        }
        Some(current)
    }

    fn is_stale(&self, st: &SuiteState) -> bool {
        let Some(checked) = st.checked else {
            return true;
        };
        let age = checked.elapsed();
        if age < self.retry.min(self.check_interval) {
            return false;
        }
        if age >= self.check_interval {
            return true;
        }
        // Renew before Valid-Until passes.
        st.current
            .as_ref()
            .and_then(|g| g.release.valid_until_time())
            .is_some_and(|t| {
                // Past, or due within check_interval (no overflowing sum).
                t.duration_since(SystemTime::now())
                    .map_or(true, |left| left <= self.check_interval)
            })
    }

    /// Serves a Release-type file `name` of the suite in `dir`.
    pub async fn release_file(
        &self,
        mapping: usize,
        dir: &str,
        name: &str,
        client: IpAddr,
    ) -> Result<ReleaseAnswer, MetaError> {
        let suite = self
            .suite(mapping, dir)
            .ok_or_else(|| MetaError::Invalid("no such mapping".into()))?;
        let started = Instant::now();
        let (gen, outcome) = {
            let _guard = suite.lock.lock().await;
            self.ensure_loaded(&suite).await;
            let (has_current, stale) = {
                let st = suite.state();
                (st.current.is_some(), self.is_stale(&st))
            };
            let mut outcome = Outcome::Hit;
            if !has_current {
                self.fetch_first(&suite, name).await?;
                outcome = Outcome::Miss;
            } else if stale {
                outcome = match self.refresh_retrying(&suite).await {
                    Some(true) => Outcome::Miss,
                    Some(false) => Outcome::Revalidated,
                    // Upstream failed: the current generation is served as is.
                    None => Outcome::Hit,
                };
            }
            let cur = suite
                .current()
                .ok_or_else(|| MetaError::Invalid("no generation".into()))?;
            if !cur.release_files.iter().any(|f| f == name) {
                self.refresh(&suite, Some(name)).await?;
                outcome = Outcome::Miss;
            }
            let gen = suite
                .current()
                .ok_or_else(|| MetaError::Invalid("no generation".into()))?;
            (gen, outcome)
        };
        if !gen.release_files.iter().any(|f| f == name) {
            return Err(MetaError::Invalid(format!("{name} not available")));
        }
        self.record_client(client, &suite, &gen);
        // Upstream answered when a Release was fetched or re-checked. The
        // status is 200 in practice: every Release file was fetched whole
        // (no conditional or range request is sent) and `Upstream::get`
        // turns any status but 2xx (206 included) into an error; the exact
        // 2xx code of each file is not carried up to here.
        let upstream = (outcome != Outcome::Hit).then(|| UpstreamNote {
            status: Some(200),
            ms: started.elapsed().as_millis() as u64,
            negative: false,
        });
        Ok(ReleaseAnswer {
            path: gen.dir.join(name),
            outcome,
            upstream,
        })
    }

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
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.mapping, &a.suite).cmp(&(&b.mapping, &b.suite)));
        out
    }

    pub(crate) fn prefix(&self, mapping: usize) -> &str {
        self.router
            .mappings()
            .get(mapping)
            .map_or("?", |m| m.prefix.as_str())
    }

    fn release_url(&self, suite: &Suite, name: &str) -> Result<reqwest::Url, MetaError> {
        let path = aptindex::path::join(&suite.dir, name);
        self.router
            .upstream_url(suite.mapping, &path)
            .ok_or_else(|| MetaError::Invalid(format!("bad path {path}")))
    }

    /// Fetches the Release-type files `names` (those after the first may be
    /// missing upstream, except `required`); checks that the parsed ones agree.
    async fn fetch_release_set(
        &self,
        suite: &Suite,
        names: &[String],
        required: &str,
    ) -> Result<(Release, Vec<(String, bytes::Bytes)>), MetaError> {
        let mut got = Vec::new();
        let mut release: Option<Release> = None;
        for name in names {
            let url = self.release_url(suite, name)?;
            let upstream = self.downloads.upstream();
            let negative = upstream.is_negative(&url);
            if !negative {
                self.metrics.upstream_request(&url);
            }
            let bytes = match upstream.get_bytes(&url, RELEASE_LIMIT).await {
                Ok((b, _)) => b,
                Err(UpstreamError::NotFound { .. })
                    if name != required && name == "Release.gpg" =>
                {
                    continue
                }
                Err(e) => {
                    if !negative {
                        self.metrics.upstream_error(&url);
                        // A 404 is counted but is no "recent failure" (see download.rs).
                        if matches!(e, UpstreamError::NotFound { .. }) {
                            tracing::info!(url = %url, status = status_of(&e), error = %e, "not found upstream");
                        } else {
                            self.metrics.failure(url.as_str(), &e.to_string());
                            tracing::warn!(url = %url, status = status_of(&e), error = %e, "upstream failed");
                        }
                    }
                    return Err(e.into());
                }
            };
            if name != "Release.gpg" {
                let parsed = Release::parse_any(&bytes).map_err(|e| {
                    let what = format!("{url}: cannot parse: {e}");
                    tracing::warn!(url = %url, error = %e, "upstream Release unusable");
                    self.metrics.failure(url.as_str(), &what);
                    MetaError::Invalid(what)
                })?;
                match &release {
                    Some(r) if *r != parsed => {
                        return Err(MetaError::Invalid(format!(
                            "{url} differs from the other Release file (upstream changing?)"
                        )))
                    }
                    _ => release = Some(parsed),
                }
            }
            got.push((name.clone(), bytes));
        }
        let release =
            release.ok_or_else(|| MetaError::Invalid("no Release or InRelease".into()))?;
        Ok((release, got))
    }

    /// Creates the first generation of `suite` from the file a client asked for.
    async fn fetch_first(&self, suite: &Arc<Suite>, name: &str) -> Result<(), MetaError> {
        let names: Vec<String> = match name {
            "InRelease" => vec!["InRelease".into()],
            _ => vec!["Release".into(), "Release.gpg".into()],
        };
        let required = if name == "InRelease" {
            "InRelease"
        } else {
            "Release"
        };
        let (release, files) = self.fetch_release_set(suite, &names, required).await?;
        if name == "Release.gpg" && !files.iter().any(|(n, _)| n == "Release.gpg") {
            return Err(UpstreamError::NotFound {
                url: self.release_url(suite, name)?.to_string(),
                status: 404,
            }
            .into());
        }
        self.publish(suite, release, files, Vec::new()).await?;
        suite.state_mut().checked = Some(Instant::now());
        Ok(())
    }

    /// [`Self::refresh`], tried again (up to 3 times) when upstream changed
    /// while it was being read; failures are logged and the current
    /// generation stays. `Some(swapped)` when upstream was read, `None` when
    /// the refresh failed.
    async fn refresh_retrying(&self, suite: &Arc<Suite>) -> Option<bool> {
        for attempt in 1..=3 {
            match self.refresh(suite, None).await {
                Ok(swapped) => return Some(swapped),
                Err(e @ MetaError::Invalid(_)) if attempt < 3 => {
                    tracing::info!(mapping = %self.prefix(suite.mapping), suite = %suite.dir, error = %e, "upstream inconsistent during refresh; retrying");
                }
                Err(e) => {
                    tracing::warn!(mapping = %self.prefix(suite.mapping), suite = %suite.dir, error = %e, "refresh failed; serving the current generation");
                    self.metrics.failure(
                        &format!("{}/{}", self.prefix(suite.mapping), suite.dir),
                        &format!("refresh failed: {e}"),
                    );
                    return None;
                }
            }
        }
        None
    }

    /// Re-checks the upstream Release of `suite` (adding `extra` to its
    /// Release files); builds and swaps in a new generation if it changed
    /// (or gained a Release file). True when a generation was swapped in.
    async fn refresh(&self, suite: &Arc<Suite>, extra: Option<&str>) -> Result<bool, MetaError> {
        let Some(cur) = suite.current() else {
            return Ok(false);
        };
        // Retry no sooner than `retry`, whatever happens.
        suite.state_mut().checked = Some(Instant::now());
        let mut names: Vec<String> = cur.release_files.clone();
        if let Some(e) = extra {
            names.push(e.to_string());
        }
        names.sort_by_key(|n| RELEASE_FILES.iter().position(|r| r == n));
        names.dedup();
        let required = extra
            .unwrap_or_else(|| names.first().map_or("InRelease", |s| s.as_str()))
            .to_string();
        let (release, files) = self.fetch_release_set(suite, &names, &required).await?;
        let unchanged = files.iter().all(|(n, b)| {
            !cur.release_files.contains(n)
                || std::fs::read(cur.dir.join(n)).is_ok_and(|old| old == b.as_ref())
        });
        if unchanged && release == cur.release {
            // Same generation: the extra file (if any) joins it as is.
            let _ = extra;
            if files.iter().any(|(n, _)| !cur.release_files.contains(n)) {
                // Release-file sets are fixed per generation; rebuild it under a new id with the same indices.
                let indices = cur.files.read().unwrap_or_else(|e| e.into_inner()).clone();
                let copies: Vec<_> = indices
                    .into_iter()
                    .map(|(rel, cs)| (rel, cs, None))
                    .collect();
                self.publish(suite, release, files, copies).await?;
                return Ok(true);
            }
            return Ok(false);
        }
        tracing::info!(mapping = %self.prefix(suite.mapping), suite = %suite.dir, "upstream Release changed; fetching the indices of the new generation");
        let mut carried = Vec::new();
        let indices = cur.files.read().unwrap_or_else(|e| e.into_inner()).clone();
        for (rel, old_cs) in indices {
            let Some(new_cs) = release.entries.get(&rel) else {
                continue;
            };
            if *new_cs == old_cs {
                carried.push((rel, old_cs, None));
                continue;
            }
            let temp = self.fetch_index(suite, &release, &rel, new_cs).await?;
            carried.push((rel, new_cs.clone(), Some(temp)));
        }
        self.publish(suite, release, files, carried).await?;
        Ok(true)
    }

    /// Downloads one index for `release` into a temporary file, verified.
    async fn fetch_index(
        &self,
        suite: &Suite,
        release: &Release,
        rel: &str,
        expected: &Checksums,
    ) -> Result<tempfile::TempPath, MetaError> {
        let (file, temp) = tempfile::Builder::new()
            .prefix("idx-")
            .tempfile_in(&self.tmp)
            .map_err(io_err("temporary file"))?
            .into_parts();
        let (kept_tx, kept_rx) = tokio::sync::oneshot::channel();
        let job = Job {
            key: format!("refresh/{}/{}/{rel}", suite.mapping, suite.dir),
            urls: self.index_urls(suite, release, rel, expected),
            expected: Some(expected.clone()),
            what: format!(
                "{}/{}",
                self.prefix(suite.mapping),
                aptindex::path::join(&suite.dir, rel)
            ),
            temp: (file, temp),
            commit_first: true,
            commit: Some(Box::new(move |temp, _| {
                Box::pin(async move {
                    let _ = kept_tx.send(temp);
                    Ok(())
                })
            })),
        };
        let (source, _) = self.downloads.start(job);
        source
            .finished()
            .await
            .map_err(|e| MetaError::Invalid(e.to_string()))?;
        kept_rx
            .await
            .map_err(|_| MetaError::Io(format!("{rel}: downloaded but not kept")))
    }

    /// Upstream URLs for an index: by-hash first when the Release allows it.
    fn index_urls(
        &self,
        suite: &Suite,
        release: &Release,
        rel: &str,
        cs: &Checksums,
    ) -> Vec<reqwest::Url> {
        let path = aptindex::path::join(&suite.dir, rel);
        let mut urls = Vec::new();
        if release.acquire_by_hash {
            if let Some(kind) = cs.strongest() {
                if let Some(hex) = cs.hex(kind) {
                    let bh = aptindex::path::by_hash_path(&path, kind, &hex);
                    urls.extend(self.router.upstream_url(suite.mapping, &bh));
                }
            }
        }
        urls.extend(self.router.upstream_url(suite.mapping, &path));
        urls
    }

    /// Writes a complete generation directory and swaps `current` to it.
    /// `indices`: (relative path, checksums, new file or `None` = link from the current generation).
    async fn publish(
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
        let dir = suite.dir.clone();
        let old_dir = old.as_ref().map(|g| g.dir.clone());
        let old_pool: HashMap<String, Arc<HashMap<String, Checksums>>> = old
            .as_ref()
            .map(|g| g.pool.read().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default();
        let release_names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
        let now = SystemTime::now();
        let stamp = match &old {
            Some(g) if g.stamp + Duration::from_secs(1) > now => g.stamp + Duration::from_secs(1),
            _ => now,
        };
        let built = tokio::task::spawn_blocking(move || -> Result<Gen, MetaError> {
            let _ = std::fs::remove_dir_all(&gen_dir);
            aptindex::fsmode::create_dir_all(&gen_dir).map_err(io_err(gen_dir.display()))?;
            for (name, data) in &files {
                write_synced(&gen_dir.join(name), data)
                    .map_err(io_err(gen_dir.join(name).display()))?;
            }
            let gen = Gen {
                id,
                stamp,
                dir: gen_dir.clone(),
                release,
                release_files: release_names,
                files: RwLock::new(HashMap::new()),
                pool: RwLock::new(HashMap::new()),
            };
            for (rel, cs, temp) in indices {
                let dest = gen_dir.join(&rel);
                if let Some(p) = dest.parent() {
                    aptindex::fsmode::create_dir_all(p).map_err(io_err(p.display()))?;
                }
                let carried = temp.is_none();
                match (temp, &old_dir) {
                    (Some(t), _) => t
                        .persist(&dest)
                        .map_err(|e| MetaError::Io(format!("{}: {}", dest.display(), e.error)))?,
                    (None, Some(od)) => {
                        let src = od.join(&rel);
                        if std::fs::hard_link(&src, &dest).is_err() {
                            std::fs::copy(&src, &dest).map_err(io_err(src.display()))?;
                        }
                        // Kept 0600 by an older version: given the cache's mode.
                        aptindex::fsmode::heal_path(&dest)
                            .map_err(|e| MetaError::Io(e.to_string()))?;
                    }
                    (None, None) => continue,
                }
                let pool = match old_pool.get(&rel) {
                    Some(p) if carried => Some(p.clone()),
                    _ => parse_pool(&aptindex::path::join(&dir, &rel), &dest),
                };
                if let Some(p) = pool {
                    gen.add_pool(&rel, p);
                }
                gen.add_file(&rel, cs);
            }
            set_mtimes(&gen_dir, stamp);
            sync_tree(&gen_dir);
            // Atomic pointer swap.
            let tmp_link = suite_path.join("current.tmp");
            let _ = std::fs::remove_file(&tmp_link);
            std::os::unix::fs::symlink(format!("gen-{id}"), &tmp_link)
                .map_err(io_err(tmp_link.display()))?;
            std::fs::rename(&tmp_link, suite_path.join("current"))
                .map_err(io_err(suite_path.display()))?;
            sync_dir(&suite_path);
            Ok(gen)
        })
        .await
        .map_err(|e| MetaError::Io(e.to_string()))??;
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

    /// Drops previous generations whose grace period is over (called by the ticker).
    fn expire(&self, suite: &Suite) {
        let dead = {
            let mut st = suite.state_mut();
            let grace = self.grace;
            let (dead, live): (Vec<_>, Vec<_>) = std::mem::take(&mut st.previous)
                .into_iter()
                .partition(|(_, t)| t.elapsed() >= grace);
            st.previous = live;
            dead
        };
        remove_gens(dead);
    }

    /// Finds the generation file for repository path `path` of `mapping`:
    /// an index listed by a suite's Release, or a by-hash path. `None` when
    /// no known suite lists it.
    pub async fn index_file(
        &self,
        mapping: usize,
        path: &str,
        client: IpAddr,
    ) -> Option<Result<Meta, MetaError>> {
        if let PathKind::ByHash { dir, kind, hex } = aptindex::path::classify(path) {
            return self.by_hash_file(mapping, &dir, kind, &hex).await;
        }
        let mut dir = parent(path);
        loop {
            if let Some(suite) = self.existing_suite(mapping, dir).await {
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
                        .map(|e| unescape_dir(&e.file_name().to_string_lossy())),
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

    /// The suite for `dir` if it has (or had on disk) a generation.
    pub(crate) async fn existing_suite(&self, mapping: usize, dir: &str) -> Option<Arc<Suite>> {
        let known = {
            let suites = self.suites.lock().unwrap_or_else(|e| e.into_inner());
            suites.get(&(mapping, dir.to_string())).cloned()
        };
        let suite = match known {
            Some(s) => s,
            None => {
                let prefix = &self.router.mappings().get(mapping)?.prefix;
                let on_disk = self
                    .meta_dir
                    .join(prefix)
                    .join(escape_dir(dir))
                    .join("current");
                std::fs::symlink_metadata(on_disk).ok()?;
                self.suite(mapping, dir)?
            }
        };
        if !suite.state().loaded {
            let _guard = suite.lock.lock().await;
            self.ensure_loaded(&suite).await;
        }
        suite.current().is_some().then_some(suite)
    }

    async fn by_hash_file(
        &self,
        mapping: usize,
        dir: &str,
        kind: HashKind,
        hex: &str,
    ) -> Option<Result<Meta, MetaError>> {
        let mut sdir = dir;
        loop {
            if let Some(suite) = self.existing_suite(mapping, sdir).await {
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

    /// Serves `rel` of `gen`, fetching and verifying it into the generation if needed.
    pub(crate) fn gen_file(
        &self,
        suite: &Arc<Suite>,
        gen: Arc<Gen>,
        rel: &str,
        cs: Checksums,
    ) -> Result<Meta, MetaError> {
        let urls = self.index_urls(suite, &gen.release, rel, &cs);
        self.gen_file_from(suite, gen, rel, cs, urls)
    }

    /// [`Self::gen_file`] from `urls` (tried in order, the next after a 404).
    pub(crate) fn gen_file_from(
        &self,
        suite: &Arc<Suite>,
        gen: Arc<Gen>,
        rel: &str,
        cs: Checksums,
        urls: Vec<reqwest::Url>,
    ) -> Result<Meta, MetaError> {
        if gen.has(rel) {
            return Ok(Meta::File(gen.dir.join(rel)));
        }
        let (file, temp) = tempfile::Builder::new()
            .prefix("idx-")
            .tempfile_in(&self.tmp)
            .map_err(io_err("temporary file"))?
            .into_parts();
        let repo_path = aptindex::path::join(&suite.dir, rel);
        let g = gen.clone();
        let rel_owned = rel.to_string();
        let expected = cs.clone();
        let job = Job {
            key: format!("meta/{}/{}/{}", suite.mapping, gen.id, repo_path),
            urls,
            expected: Some(cs),
            what: format!("{}/{}", self.prefix(suite.mapping), repo_path),
            temp: (file, temp),
            commit_first: true,
            commit: Some(Box::new(move |temp, _| {
                Box::pin(async move {
                    tokio::task::spawn_blocking(move || {
                        let dest = g.dir.join(&rel_owned);
                        if let Some(p) = dest.parent() {
                            aptindex::fsmode::create_dir_all(p)
                                .map_err(|e| format!("{}: {e}", p.display()))?;
                        }
                        temp.persist(&dest)
                            .map_err(|e| format!("{}: {}", dest.display(), e.error))?;
                        let _ = std::fs::File::options()
                            .write(true)
                            .open(&dest)
                            .and_then(|f| f.set_modified(g.stamp));
                        if let Some(p) = dest.parent() {
                            sync_dir(p);
                        }
                        if let Some(pool) = parse_pool(&repo_path, &dest) {
                            g.add_pool(&rel_owned, pool);
                        }
                        g.add_file(&rel_owned, expected);
                        Ok(())
                    })
                    .await
                    .map_err(|e| e.to_string())?
                })
            })),
        };
        let (source, joined) = self.downloads.start(job);
        Ok(Meta::Fetching(source, joined))
    }

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

    /// Background re-checks: every suite older than `check_interval` is refreshed,
    /// and expired generations are removed, until `shutdown`.
    pub async fn ticker(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let period =
            (self.check_interval / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            for suite in self.loaded_suites() {
                self.expire(&suite);
                let stale = {
                    let st = suite.state();
                    st.current.is_some() && self.is_stale(&st)
                };
                if !stale {
                    continue;
                }
                let Ok(_guard) = suite.lock.try_lock() else {
                    continue;
                };
                self.refresh_retrying(&suite).await;
            }
        }
    }
}

/// Sets the modification time of every file under `dir`.
fn set_mtimes(dir: &Path, t: SystemTime) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                set_mtimes(&p, t);
            } else {
                let _ = std::fs::File::options()
                    .write(true)
                    .open(&p)
                    .and_then(|f| f.set_modified(t));
            }
        }
    }
}

fn remove_gens(dead: Vec<(Arc<Gen>, Instant)>) {
    for (g, _) in dead {
        let dir = g.dir.clone();
        tracing::debug!(dir = %dir.display(), "removing expired generation");
        // Readers holding open files keep them; the directory goes now.
        std::thread::spawn(move || {
            let _ = std::fs::remove_dir_all(&dir);
        });
    }
}

/// fsyncs every file and directory under `dir`.
fn sync_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                sync_tree(&p);
            } else {
                let _ = std::fs::File::open(&p).and_then(|f| f.sync_all());
            }
        }
    }
    sync_dir(dir);
}

/// Reads a suite's current generation from disk; removes other generation
/// directories (left over from a crash or from before a restart).
fn load_suite(suite: &Suite) -> Result<(Option<Arc<Gen>>, u64), MetaError> {
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
    for (id, path) in &gens {
        if Some(*id) != current {
            let _ = std::fs::remove_dir_all(path);
        }
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
            release = Some(
                Release::parse_any(&data)
                    .map_err(|e| MetaError::Invalid(format!("{}: {e}", p.display())))?,
            );
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
    let gen = Gen {
        id,
        stamp,
        dir: dir.clone(),
        release,
        release_files,
        files: RwLock::new(HashMap::new()),
        pool: RwLock::new(HashMap::new()),
    };
    let entries: Vec<(String, Checksums)> = gen
        .release
        .entries
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (rel, cs) in entries {
        if !crate::mapping::safe_path(&rel) {
            continue;
        }
        let p = dir.join(&rel);
        // Files were verified before they were renamed in; a size check catches damage.
        if std::fs::metadata(&p).is_ok_and(|m| m.is_file() && m.len() == cs.size) {
            if let Some(pool) = parse_pool(&aptindex::path::join(&suite.dir, &rel), &p) {
                gen.add_pool(&rel, pool);
            }
            gen.add_file(&rel, cs);
        }
    }
    Ok((Some(Arc::new(gen)), max_id + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_dir_escaping_round_trips() {
        for d in ["", "dists/bookworm", "a%2Fb", "%", "x/y/z"] {
            let e = escape_dir(d);
            assert!(!e.contains('/'), "{e}");
            assert_eq!(unescape_dir(&e), d);
        }
    }

    #[test]
    fn parent_dirs() {
        assert_eq!(parent("dists/x/main/Packages"), "dists/x/main");
        assert_eq!(parent("Packages"), "");
    }
}
