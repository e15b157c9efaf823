//! The update of one mirror, from the upstream's Release files to a
//! published snapshot:
//!
//! 1. fetch `InRelease`, `Release` and `Release.gpg` of every suite; if they
//!    are byte-identical to the current snapshot's (and the configuration
//!    did not change), stop: nothing else is downloaded;
//! 2. verify signatures (when a keyring is configured) and check that
//!    `Release` and `InRelease` agree;
//! 3. fetch the selected indices (by-hash first), verified against Release;
//! 4. read the pool files they name, hard-link those the current snapshot
//!    already has, download the rest in parallel, each verified;
//! 5. add `by-hash/` links, fetch the Release files again to make sure the
//!    upstream did not change meanwhile, write `info.json`, and swap the
//!    `<dir>/<ID>` symlink.
//!
//! Any failure leaves the current snapshot untouched and removes the
//! unfinished one.

use crate::config::MirrorConfig;
use crate::fetch::{url_for, FetchError, Fetcher};
use crate::plan::{self, IndexFile, PlanError, PoolSet};
use crate::pool;
use crate::progress::{Progress, Reporter};
use crate::snapshot::{FileInfo, Info, Reuse, ReuseIndex, Snapshot, SnapshotError, Store};
use aptindex::checksum::Checksums;
use aptindex::release::Release;
use aptindex::signature::{Keyring, SignatureError};
use futures_util::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest Release / InRelease / Release.gpg accepted.
const RELEASE_LIMIT: u64 = 64 << 20;
/// Largest decompressed index read.
const INDEX_LIMIT: u64 = aptindex::compress::DEFAULT_LIMIT;
/// Temporary files of a run, inside its snapshot directory (so that a
/// killed run's are removed with it).
const TMP_DIR: &str = ".tmp";
/// The three Release files of a suite, in the order they are stored.
const RELEASE_FILES: [&str; 3] = ["InRelease", "Release", "Release.gpg"];

/// Why a mirror was not updated.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// A download failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A snapshot operation failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A path or checksum from upstream was rejected.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The keyring could not be read.
    #[error("keyring: {0}")]
    Keyring(#[source] SignatureError),
    /// A signature did not verify.
    #[error("{url}: {source}")]
    Signature {
        /// The signed file.
        url: String,
        /// Why.
        #[source]
        source: SignatureError,
    },
    /// A Release file is unusable or inconsistent.
    #[error("{url}: {message}")]
    Release {
        /// The file.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// An index could not be read.
    #[error("{path}: {message}")]
    Index {
        /// The index.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A required file is missing upstream.
    #[error("{url}: not found upstream (404)")]
    Missing {
        /// The URL.
        url: String,
    },
    /// The upstream changed while the mirror was being updated.
    #[error(
        "{url}: changed upstream during the update; the current snapshot is kept, retry later"
    )]
    Changed {
        /// The Release file that changed.
        url: String,
    },
    /// A reused file could not be given its published mode.
    #[error(transparent)]
    Mode(#[from] aptindex::fsmode::ModeError),
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The run was interrupted.
    #[error("interrupted")]
    Cancelled,
}

/// How a mirror's update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A new snapshot was published.
    Updated,
    /// Upstream had not changed; nothing was downloaded.
    Unchanged,
    /// The update failed; the current snapshot is untouched.
    Failed,
}

/// The result of one mirror's update.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MirrorReport {
    /// The mirror ID.
    pub id: String,
    /// How it ended.
    pub result: Outcome,
    /// The error, when it failed.
    pub error: Option<String>,
    /// Files downloaded (the Release files, fetched every run, not counted).
    pub files_downloaded: u64,
    /// Files hard-linked from the previous snapshot.
    pub files_reused: u64,
    /// Bytes downloaded.
    pub bytes_downloaded: u64,
    /// Wall time, in seconds.
    pub duration_secs: f64,
    /// The published snapshot directory (current one when unchanged or failed).
    pub snapshot: Option<String>,
}

impl MirrorReport {
    /// One human-readable summary line.
    pub fn line(&self) -> String {
        let result = match (&self.result, &self.error) {
            (Outcome::Failed, Some(e)) => format!("FAILED: {e}"),
            (Outcome::Failed, None) => "FAILED".to_string(),
            (Outcome::Updated, _) => "updated".to_string(),
            (Outcome::Unchanged, _) => "unchanged".to_string(),
        };
        format!(
            "mirror {}: {} files downloaded, {} reused, {} bytes, {:.2} s: {}",
            self.id,
            self.files_downloaded,
            self.files_reused,
            self.bytes_downloaded,
            self.duration_secs,
            result
        )
    }
}

/// What a mirror update needs from the run.
#[derive(Debug, Clone)]
pub struct Context {
    /// The mirror root (`dir`).
    pub root: PathBuf,
    /// The shared HTTP client.
    pub fetcher: Arc<Fetcher>,
    /// Parallel downloads per mirror.
    pub parallel: usize,
    /// Progress log interval without a terminal.
    pub progress_interval: Duration,
    /// Cancelled on SIGINT/SIGTERM.
    pub cancel: tokio_util::sync::CancellationToken,
}

#[derive(Debug, Default)]
struct Counters {
    downloaded: AtomicU64,
    reused: AtomicU64,
    bytes: AtomicU64,
}

/// Updates mirror `cfg`; never panics, always reports.
pub async fn update(ctx: &Context, cfg: &MirrorConfig) -> MirrorReport {
    let start = Instant::now();
    let counters = Counters::default();
    let result = Update {
        ctx,
        cfg,
        counters: &counters,
        store: Store::new(&ctx.root, &cfg.id),
    }
    .run()
    .await;
    let (result, error, snapshot) = match result {
        Ok((o, s)) => (o, None, s),
        Err(e) => {
            let current = Store::new(&ctx.root, &cfg.id)
                .current()
                .ok()
                .flatten()
                .map(|s| s.name);
            (Outcome::Failed, Some(e.to_string()), current)
        }
    };
    MirrorReport {
        id: cfg.id.clone(),
        result,
        error,
        files_downloaded: counters.downloaded.load(Ordering::Relaxed),
        files_reused: counters.reused.load(Ordering::Relaxed),
        bytes_downloaded: counters.bytes.load(Ordering::Relaxed),
        duration_secs: start.elapsed().as_secs_f64(),
        snapshot,
    }
}

/// The Release files of one suite as fetched (`None` = 404).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SuiteReleases {
    suite: String,
    dir: String,
    files: [Option<Vec<u8>>; 3],
}

/// A fingerprint of the configuration keys that shape a snapshot.
fn config_fingerprint(cfg: &MirrorConfig) -> String {
    serde_json::json!({
        "url": cfg.url.as_str(),
        "suites": cfg.suites,
        "sections": cfg.sections,
        "architectures": cfg.architectures,
        "mirror_source": cfg.mirror_source,
        "languages": cfg.languages,
        "contents": cfg.contents,
    })
    .to_string()
}

struct Update<'a> {
    ctx: &'a Context,
    cfg: &'a MirrorConfig,
    counters: &'a Counters,
    store: Store,
}

impl Update<'_> {
    async fn run(&self) -> Result<(Outcome, Option<String>), MirrorError> {
        let keyring = if self.cfg.keyring.is_empty() {
            None
        } else {
            Some(Keyring::from_files(&self.cfg.keyring).map_err(MirrorError::Keyring)?)
        };
        let current = self.store.current()?;
        if let Some(cur) = &current {
            // A snapshot published by an older version (files 0600, which a
            // web server running as another user cannot read) is fixed
            // before anything else, unchanged upstream or not (a walk of
            // the whole tree, once: on a blocking thread).
            let (store, snap) = (self.store.clone(), cur.clone());
            let changed = tokio::task::spawn_blocking(move || store.heal_modes(&snap))
                .await
                .map_err(|e| MirrorError::Io {
                    path: cur.dir.clone(),
                    source: std::io::Error::other(format!("mode task failed: {e}")),
                })??;
            if changed > 0 {
                tracing::info!(mirror = %self.cfg.id, snapshot = %cur.name, changed, "published modes restored (0644 files, 0755 directories, minus the umask)");
            }
        }
        let current_info = current.as_ref().and_then(Snapshot::read_info);
        let fingerprint = config_fingerprint(self.cfg);

        let releases = self.fetch_releases().await?;
        if let (Some(cur), Some(info)) = (&current, &current_info) {
            if info.config == fingerprint && same_as_snapshot(cur, &releases) {
                tracing::info!(mirror = %self.cfg.id, "upstream unchanged");
                self.cleanup(&[(&cur.name, info)]);
                return Ok((Outcome::Unchanged, Some(cur.name.clone())));
            }
        }
        let parsed = releases
            .iter()
            .map(|r| self.verify_release(keyring.as_ref(), r))
            .collect::<Result<Vec<(Release, Option<Release>)>, MirrorError>>()?;

        let new = self.store.begin()?;
        let result = self
            .build(
                &new,
                &releases,
                &parsed,
                current.as_ref(),
                current_info.as_ref(),
                fingerprint,
            )
            .await;
        match result {
            Ok(info) => {
                let t = Instant::now();
                self.store.publish(&new, &info)?;
                tracing::debug!(mirror = %self.cfg.id, elapsed_ms = t.elapsed().as_millis() as u64, "info.json written, synced, symlink swapped");
                tracing::info!(mirror = %self.cfg.id, snapshot = %new.name, files = info.files.len(), "published");
                let mut known = vec![(new.name.as_str(), &info)];
                if let (Some(cur), Some(cur_info)) = (&current, &current_info) {
                    known.push((cur.name.as_str(), cur_info));
                }
                self.cleanup(&known);
                Ok((Outcome::Updated, Some(new.name)))
            }
            Err(e) => {
                // The unfinished snapshot and what it added to the pool go.
                let known: Vec<(&str, &Info)> = match (&current, &current_info) {
                    (Some(cur), Some(cur_info)) => vec![(cur.name.as_str(), cur_info)],
                    _ => Vec::new(),
                };
                self.cleanup(&known);
                Err(e)
            }
        }
    }

    /// Removes old snapshots and leftovers (see [`Store::cleanup`]); `known`
    /// are the `info.json`s in memory.
    fn cleanup(&self, known: &[(&str, &Info)]) {
        let t = Instant::now();
        let result = self.store.cleanup(self.cfg.keep, known);
        tracing::debug!(mirror = %self.cfg.id, elapsed_ms = t.elapsed().as_millis() as u64, "clean-up done");
        match result {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(mirror = %self.cfg.id, removed = ?removed, "removed old snapshots and leftovers")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(mirror = %self.cfg.id, error = %e, "cleanup failed"),
        }
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, MirrorError> {
        Ok(url_for(&self.cfg.url, path)?)
    }

    async fn fetch_releases(&self) -> Result<Vec<SuiteReleases>, MirrorError> {
        let mut out = Vec::new();
        for suite in &self.cfg.suites {
            let dir = aptindex::release::suite_dir(suite);
            let mut urls = Vec::new();
            for name in RELEASE_FILES {
                urls.push(self.url(&aptindex::path::join(&dir, name))?);
            }
            let fetcher = &self.ctx.fetcher;
            let (a, b, c) = tokio::join!(
                fetcher.get(&urls[0], RELEASE_LIMIT),
                fetcher.get(&urls[1], RELEASE_LIMIT),
                fetcher.get(&urls[2], RELEASE_LIMIT),
            );
            let files = [a?, b?, c?];
            if files[0].is_none() && files[1].is_none() {
                return Err(MirrorError::Missing {
                    url: urls[0]
                        .to_string()
                        .replace("/InRelease", "/{InRelease,Release}"),
                });
            }
            out.push(SuiteReleases {
                suite: suite.clone(),
                dir,
                files,
            });
        }
        Ok(out)
    }

    /// Checks signatures and consistency; returns the parsed Release, and
    /// the other version when Release and InRelease disagree but both use
    /// by-hash (then both versions' indices are kept, the other one only
    /// under `by-hash/`).
    fn verify_release(
        &self,
        keyring: Option<&Keyring>,
        r: &SuiteReleases,
    ) -> Result<(Release, Option<Release>), MirrorError> {
        let url_of = |name: &str| {
            self.url(&aptindex::path::join(&r.dir, name))
                .map(|u| u.to_string())
                .unwrap_or_else(|_| name.to_string())
        };
        let [in_release, release, release_gpg] = &r.files;
        let parse = |name: &str, text: &[u8]| {
            Release::parse(text).map_err(|e| MirrorError::Release {
                url: url_of(name),
                message: e.to_string(),
            })
        };
        // The signed text of InRelease.
        let in_text = match in_release {
            None => None,
            Some(data) => Some(match keyring {
                Some(k) => {
                    let (text, signer) =
                        k.verify_clearsigned(data)
                            .map_err(|source| MirrorError::Signature {
                                url: url_of("InRelease"),
                                source,
                            })?;
                    tracing::debug!(mirror = %self.cfg.id, suite = %r.suite, signer = %signer.fingerprint, "InRelease signature good");
                    text
                }
                None => {
                    aptindex::release::split_clearsigned(data)
                        .map_err(|e| MirrorError::Release {
                            url: url_of("InRelease"),
                            message: e.to_string(),
                        })?
                        .text
                }
            }),
        };
        if let (Some(k), Some(data)) = (keyring, release) {
            match release_gpg {
                Some(sig) => {
                    k.verify_detached(data, sig)
                        .map_err(|source| MirrorError::Signature {
                            url: url_of("Release.gpg"),
                            source,
                        })?;
                }
                None if in_text.as_deref() == Some(data.as_slice()) => {}
                None => {
                    return Err(MirrorError::Release {
                        url: url_of("Release"),
                        message: "no Release.gpg, and Release differs from the signed InRelease"
                            .into(),
                    })
                }
            }
        }
        let from_in = in_text
            .as_deref()
            .map(|t| parse("InRelease", t))
            .transpose()?;
        let from_plain = release
            .as_deref()
            .map(|t| parse("Release", t))
            .transpose()?;
        match (from_in, from_plain) {
            (Some(a), Some(b)) => {
                if a.entries == b.entries && a.acquire_by_hash == b.acquire_by_hash {
                    Ok((a, None))
                } else if a.acquire_by_hash && b.acquire_by_hash {
                    tracing::warn!(mirror = %self.cfg.id, url = %url_of("Release"), "Release and InRelease disagree; keeping both versions' indices through by-hash");
                    Ok((a, Some(b)))
                } else {
                    Err(MirrorError::Release {
                        url: url_of("Release"),
                        message: "Release and InRelease disagree (different files or checksums) and the upstream does not use by-hash".into(),
                    })
                }
            }
            (Some(a), None) | (None, Some(a)) => Ok((a, None)),
            (None, None) => Err(MirrorError::Missing {
                url: url_of("Release"),
            }),
        }
    }

    async fn build(
        &self,
        new: &Snapshot,
        releases: &[SuiteReleases],
        parsed: &[(Release, Option<Release>)],
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

        // Release files, as fetched.
        for r in releases {
            for (name, data) in RELEASE_FILES.iter().zip(&r.files) {
                if let Some(data) = data {
                    let path = aptindex::path::join(&r.dir, name);
                    let dest = new.tree.join(&path);
                    crate::snapshot::write_atomic(&dest, data)?;
                    if let Some(cur) = current {
                        newer_than(&dest, &cur.tree.join(&path));
                    }
                    record(&path, &Checksums::of_bytes(data));
                }
            }
        }

        // Indices.
        let mut indices: Vec<IndexFile> = Vec::new();
        for (r, (rel, other)) in releases.iter().zip(parsed) {
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
            crate::snapshot::write_atomic(&new.dir.join(pool::JOURNAL), &data)?;
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
        })
    }

    /// Places pool files (reused or downloaded, in parallel) and records
    /// them in `files`; a file missing upstream is an error.
    async fn place_all(
        &self,
        tmp: &Path,
        jobs: &[Job],
        progress: &Progress,
        files: &Mutex<BTreeMap<String, FileInfo>>,
    ) -> Result<(), MirrorError> {
        futures_util::stream::iter(jobs.iter())
            .map(|job| async move {
                self.place(
                    &job.dest,
                    job.staged.then_some(tmp),
                    &job.path,
                    &job.sums,
                    job.old.clone(),
                    std::slice::from_ref(&job.path),
                    progress,
                )
                .await?
                .ok_or_else(|| MirrorError::Missing {
                    url: self
                        .url(&job.path)
                        .map(|u| u.to_string())
                        .unwrap_or_else(|_| job.path.clone()),
                })?;
                files
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(job.path.clone(), FileInfo::from_checksums(&job.sums));
                Ok::<(), MirrorError>(())
            })
            .buffer_unordered(self.ctx.parallel)
            .try_collect::<()>()
            .await
    }

    /// Places one variant of an index; `None` if the upstream lacks it.
    async fn fetch_index(
        &self,
        new: &Snapshot,
        idx: &IndexFile,
        reuse: &ReuseIndex<'_>,
        progress: &Progress,
    ) -> Result<Option<IndexFile>, MirrorError> {
        let stored = idx.stored_path();
        let old = reuse.find(&stored, &idx.checksums);
        let found = self
            .place(
                &new.tree.join(&stored),
                None,
                &stored,
                &idx.checksums,
                old,
                &plan::candidates(idx),
                progress,
            )
            .await?;
        Ok(found.map(|_| idx.clone()))
    }

    /// Puts `path` at `dest`: a hard link to `old` when given and usable
    /// (`old` may be `dest` itself, a leftover of a failed run, kept when it
    /// verifies), otherwise a download (through `tmp`, else `dest`'s
    /// directory) from the first of
    /// `candidates` the upstream has. `None` when none of them exists
    /// upstream.
    #[allow(clippy::too_many_arguments)]
    async fn place(
        &self,
        dest: &Path,
        tmp: Option<&Path>,
        path: &str,
        sums: &Checksums,
        old: Option<Reuse>,
        candidates: &[String],
        progress: &Progress,
    ) -> Result<Option<()>, MirrorError> {
        if self.ctx.cancel.is_cancelled() {
            return Err(MirrorError::Cancelled);
        }
        let old = match old {
            Some(Reuse::Known(p)) => Some(p),
            Some(Reuse::Unverified(p)) => {
                let (file, expected) = (p.clone(), sums.clone());
                let good = tokio::task::spawn_blocking(move || verify_local(&file, &expected))
                    .await
                    .unwrap_or(false);
                good.then_some(p)
            }
            None => None,
        };
        if let Some(old) = old {
            if old == dest {
                aptindex::fsmode::heal_path(dest)?;
                self.counters.reused.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(()));
            }
            if link_file(&old, dest).is_ok() && file_size(dest) == Some(sums.size) {
                self.counters.reused.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(()));
            }
            let _ = std::fs::remove_file(dest);
        }
        for candidate in candidates {
            let url = self.url(candidate)?;
            match self
                .ctx
                .fetcher
                .download(&url, dest, tmp, sums, progress)
                .await
            {
                Ok(Some(n)) => {
                    self.counters.downloaded.fetch_add(1, Ordering::Relaxed);
                    self.counters.bytes.fetch_add(n, Ordering::Relaxed);
                    progress.file_done();
                    return Ok(Some(()));
                }
                Ok(None) => continue,
                Err(FetchError::Cancelled) => return Err(MirrorError::Cancelled),
                // A broken by-hash copy: fall back to the next candidate.
                Err(FetchError::Verify { url, source }) if candidate != path => {
                    tracing::warn!(url = %url, error = %source, "by-hash file failed verification; trying the next location");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// Where this run puts the files of the `shared` directories: the
    /// current snapshot's pool generation, extended, or a new generation
    /// (first run, a snapshot made by an older version, or a shared path
    /// whose bytes change while a kept snapshot still names the old ones).
    /// `None` when nothing is shared. Marks the files of `wanted` and
    /// `carried` the generation already holds.
    fn pool_target(
        &self,
        new: &Snapshot,
        current: Option<&Snapshot>,
        current_info: Option<&Info>,
        shared: &BTreeSet<String>,
        wanted: &[(String, Checksums)],
        carried: &[(String, Checksums)],
    ) -> Result<Option<PoolTarget>, MirrorError> {
        if shared.is_empty() {
            return Ok(None);
        }
        let id = &self.cfg.id;
        let fresh = |why: Option<String>| -> Result<Option<PoolTarget>, MirrorError> {
            let name = pool::generation_name(id, &new.name);
            let dir = self.ctx.root.join(&name);
            aptindex::fsmode::create_dir(&dir).map_err(|source| MirrorError::Io {
                path: dir.clone(),
                source,
            })?;
            if let Some(why) = why {
                tracing::info!(mirror = %id, generation = %name, reason = %why, "new pool generation: unchanged files are hard-linked into it");
            }
            Ok(Some(PoolTarget {
                name,
                dir,
                wanted_present: vec![false; wanted.len()],
                carried_present: vec![false; carried.len()],
                fresh: true,
            }))
        };
        let Some(cur) = current else {
            return fresh(None);
        };
        let links = pool::links_of(&cur.tree, id)?;
        let generations: BTreeSet<&String> = links.values().collect();
        let generation = match generations.into_iter().collect::<Vec<_>>().as_slice() {
            [] => {
                return fresh(Some(
                    "the current snapshot has no shared pool (made by an older version)".into(),
                ))
            }
            [g] if self.ctx.root.join(g).is_dir() => (*g).clone(),
            _ => {
                return fresh(Some(
                    "the current snapshot's pool generation is missing or not unique".into(),
                ))
            }
        };
        // What the snapshots clients may still use reference in it.
        let others = self
            .store
            .kept(self.cfg.keep)?
            .into_iter()
            .filter(|s| s.name != cur.name)
            .map(|s| {
                let l = pool::links_of(&s.tree, id)?;
                let info = if l.values().any(|g| *g == generation) {
                    s.read_info()
                } else {
                    None
                };
                Ok((l, info))
            })
            .collect::<Result<Vec<_>, SnapshotError>>()?;
        let mut refs = pool::references(
            std::iter::once((&links, current_info))
                .chain(others.iter().map(|(l, i)| (l, i.as_ref()))),
        );
        let Some(Some(present)) = refs.remove(generation.as_str()) else {
            return fresh(Some(format!(
                "a kept snapshot using {generation} has no readable info.json"
            )));
        };
        // Bytes a kept snapshot still serves are never replaced in place.
        let mut changed = None;
        let mut held = |(path, sums): &(String, Checksums)| {
            if !pool::is_shared(shared, path) {
                return false;
            }
            match present.get(path.as_str()) {
                None => false,
                Some(old) if old.describes(sums) => true,
                Some(_) => {
                    changed.get_or_insert_with(|| path.clone());
                    false
                }
            }
        };
        let wanted_present: Vec<bool> = wanted.iter().map(&mut held).collect();
        let carried_present: Vec<bool> = carried.iter().map(&mut held).collect();
        if let Some(path) = changed {
            return fresh(Some(format!(
                "{path} changed content under the same name while a kept snapshot still has the old one"
            )));
        }
        Ok(Some(PoolTarget {
            dir: self.ctx.root.join(&generation),
            name: generation,
            wanted_present,
            carried_present,
            fresh: false,
        }))
    }

    /// Reads the downloaded indices (one variant per group) and collects the
    /// files they name.
    async fn read_indices(
        &self,
        new: &Snapshot,
        present: &[IndexFile],
    ) -> Result<PoolSet, MirrorError> {
        let mut chosen: HashMap<&str, &IndexFile> = HashMap::new();
        for idx in present.iter().filter(|i| i.kind.is_some()) {
            let better = match chosen.get(idx.group.as_str()) {
                None => true,
                // Prefer the cheapest to decompress: plain, then gzip, then others.
                Some(prev) => rank(&idx.path) < rank(&prev.path),
            };
            if better {
                chosen.insert(&idx.group, idx);
            }
        }
        let mut work: Vec<(String, PathBuf, aptindex::IndexKind)> = chosen
            .values()
            .filter_map(|i| Some((i.path.clone(), new.tree.join(i.stored_path()), i.kind?)))
            .collect();
        work.sort_by(|a, b| a.0.cmp(&b.0));
        let cfg = self.cfg.clone();
        tokio::task::spawn_blocking(move || {
            let mut pool = PoolSet::default();
            for (path, file, kind) in work {
                read_index(&cfg, &path, &file, kind, &mut pool)?;
            }
            Ok(pool)
        })
        .await
        .map_err(|e| MirrorError::Index {
            path: "indices".into(),
            message: format!("reader task failed: {e}"),
        })?
    }
}

fn rank(path: &str) -> u8 {
    match aptindex::Compression::from_path(path) {
        aptindex::Compression::None => 0,
        aptindex::Compression::Gzip => 1,
        aptindex::Compression::Zstd => 2,
        aptindex::Compression::Xz => 3,
        _ => 4,
    }
}

/// Streams one index from disk into `pool`.
fn read_index(
    cfg: &MirrorConfig,
    path: &str,
    file: &Path,
    kind: aptindex::IndexKind,
    pool: &mut PoolSet,
) -> Result<(), MirrorError> {
    let f = std::fs::File::open(file).map_err(|source| MirrorError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let reader = std::io::BufReader::with_capacity(256 * 1024, f);
    let decoded =
        aptindex::compress::decoder(aptindex::Compression::from_path(path), reader, INDEX_LIMIT);
    let decoded = std::io::BufReader::with_capacity(256 * 1024, decoded);
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let mut first_error: Option<PlanError> = None;
    aptindex::index::for_each_entry(kind, dir, decoded, |entry| {
        if first_error.is_some() {
            return;
        }
        if kind == aptindex::IndexKind::I18nIndex {
            // Translation files listed by i18n/Index: filtered by language.
            let name = entry.path.rsplit('/').next().unwrap_or("");
            let lang = name
                .strip_prefix("Translation-")
                .map(|l| aptindex::Compression::from_path(l).strip(l));
            if !lang.is_some_and(|l| plan::language_wanted(cfg, l)) {
                return;
            }
        }
        if let Err(e) = pool.add(path, &entry.path, entry.checksums) {
            first_error = Some(e);
        }
    })
    .map_err(|e| MirrorError::Index {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// True when every suite's Release files equal the snapshot's copies.
fn same_as_snapshot(cur: &Snapshot, releases: &[SuiteReleases]) -> bool {
    releases.iter().all(|r| {
        RELEASE_FILES.iter().zip(&r.files).all(|(name, data)| {
            let on_disk = std::fs::read(cur.tree.join(aptindex::path::join(&r.dir, name))).ok();
            on_disk.as_ref() == data.as_ref()
        })
    })
}

/// Hard-links the files of `jobs` (with a [`Reuse::Known`] source) to their
/// destinations, on one blocking thread (more threads only contend for the
/// same directory locks). Returns the jobs linked and those that could not
/// be (to be downloaded instead).
async fn link_all(tree: &Path, mut jobs: Vec<Job>) -> Result<(Vec<Job>, Vec<Job>), MirrorError> {
    jobs.sort_by(|a, b| a.path.cmp(&b.path));
    tokio::task::spawn_blocking(move || {
        let mut linked = Vec::new();
        let mut failed = Vec::new();
        for mut job in jobs {
            let ok = match &job.old {
                Some(Reuse::Known(src)) => {
                    link_file(src, &job.dest).is_ok() && file_size(&job.dest) == Some(job.sums.size)
                }
                _ => false,
            };
            if ok {
                linked.push(job);
            } else {
                let _ = std::fs::remove_file(&job.dest);
                job.old = None;
                failed.push(job);
            }
        }
        (linked, failed)
    })
    .await
    .map_err(|e| MirrorError::Io {
        path: tree.to_path_buf(),
        source: std::io::Error::other(format!("linking task failed: {e}")),
    })
}

/// Of the files `held` (path, entry) that the generation directory `dir`
/// should hold, those it does not (missing, or of another size), on a
/// blocking thread: returns (those present, those missing). Those present
/// get the published mode if they lack it (published by an older version).
async fn check_held(
    dir: Option<PathBuf>,
    held: Vec<(String, FileInfo)>,
) -> Result<(Vec<(String, FileInfo)>, Vec<(String, FileInfo)>), MirrorError> {
    let Some(dir) = dir else {
        return Ok((held, Vec::new()));
    };
    let error_path = dir.clone();
    tokio::task::spawn_blocking(move || {
        let (mut present, mut missing) = (Vec::new(), Vec::new());
        for (path, fi) in held {
            let file = dir.join(&path);
            match std::fs::metadata(&file) {
                Ok(meta) if meta.len() == fi.size => {
                    aptindex::fsmode::heal(&file, &meta)?;
                    present.push((path, fi));
                }
                _ => missing.push((path, fi)),
            }
        }
        Ok((present, missing))
    })
    .await
    .map_err(|e| MirrorError::Io {
        path: error_path,
        source: std::io::Error::other(format!("checking task failed: {e}")),
    })?
}

/// The pool files of the current snapshot (`info`) that `wanted` no longer
/// names: kept one more generation for clients of the previous indices
/// (not those it carried itself, nor metadata, nor unsafe paths).
fn carried_files(info: Option<&Info>, wanted: &[(String, Checksums)]) -> Vec<(String, Checksums)> {
    let Some(info) = info else {
        return Vec::new();
    };
    let wanted: HashSet<&str> = wanted.iter().map(|(p, _)| p.as_str()).collect();
    let skip: HashSet<&str> = info
        .carried
        .iter()
        .chain(&info.by_hash)
        .map(String::as_str)
        .collect();
    info.files
        .iter()
        .filter(|(path, _)| {
            !wanted.contains(path.as_str())
                && !skip.contains(path.as_str())
                && aptindex::path::classify(path) == aptindex::PathKind::Other
                && plan::safe_path("info.json", path).is_ok()
        })
        .map(|(path, fi)| (path.clone(), fi.to_checksums()))
        .collect()
}

/// One pool file to put into the new snapshot.
#[derive(Debug)]
struct Job {
    /// Path relative to the repository root.
    path: String,
    /// Expected size and hashes.
    sums: Checksums,
    /// Where it goes: the new tree, or the shared pool generation.
    dest: PathBuf,
    /// A local copy that may replace the download.
    old: Option<Reuse>,
    /// Downloaded through the snapshot's temporary directory: `dest` is in
    /// a generation that published snapshots share, where a killed run
    /// must leave no temporary file (elsewhere: next to `dest`, cheaper).
    staged: bool,
}

/// The pool generation a run puts shared files into.
#[derive(Debug)]
struct PoolTarget {
    /// `.<ID>.pool-<stamp>`.
    name: String,
    /// `<dir>/.<ID>.pool-<stamp>`.
    dir: PathBuf,
    /// Which files of the wanted and carried lists it already holds for a
    /// kept snapshot (none when fresh).
    wanted_present: Vec<bool>,
    carried_present: Vec<bool>,
    /// Made by this run.
    fresh: bool,
}

/// True when the local file `path` has the `expected` size and hashes.
fn verify_local(path: &Path, expected: &Checksums) -> bool {
    let (Some(kind), Ok(file)) = (expected.strongest(), std::fs::File::open(path)) else {
        return false;
    };
    let mut reader = aptindex::checksum::HashingReader::new(
        std::io::BufReader::with_capacity(256 * 1024, file),
        aptindex::checksum::Hasher::new(&[kind]),
    );
    if std::io::copy(&mut reader, &mut std::io::sink()).is_err() {
        return false;
    }
    let (_, actual) = reader.finish();
    expected.verify(&path.to_string_lossy(), &actual).is_ok()
}

/// Makes `file`'s modification time at least one second later than
/// `previous`'s (when that exists): web servers compare `If-Modified-Since`
/// to the second, and a client must never be told "not modified" about a
/// Release file that changed within the same second.
fn newer_than(file: &Path, previous: &Path) {
    let (Ok(old), Ok(new)) = (std::fs::metadata(previous), std::fs::metadata(file)) else {
        return;
    };
    let (Ok(old_m), Ok(new_m)) = (old.modified(), new.modified()) else {
        return;
    };
    let secs = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    if secs(new_m) <= secs(old_m) {
        let bumped = std::time::UNIX_EPOCH + Duration::from_secs(secs(old_m) + 1);
        let result = std::fs::File::options()
            .write(true)
            .open(file)
            .and_then(|f| f.set_modified(bumped));
        if let Err(e) = result {
            tracing::warn!(path = %file.display(), error = %e, "cannot adjust modification time");
        }
    }
}

fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// Hard-links `from` to `to`, creating parent directories, and gives the
/// file the published mode if it lacks it (a file an older version
/// published `0600`: the link shares its mode).
fn link_file(from: &Path, to: &Path) -> Result<(), MirrorError> {
    let io = |source| MirrorError::Io {
        path: to.to_path_buf(),
        source,
    };
    if let Some(parent) = to.parent() {
        aptindex::fsmode::create_dir_all(parent).map_err(io)?;
    }
    match std::fs::hard_link(from, to) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    aptindex::fsmode::heal_path(to)?;
    Ok(())
}
