//! Snapshots of one mirror on disk, in go-apt-mirror's layout:
//!
//! ```text
//! <dir>/.lock
//! <dir>/<ID>                          symlink -> .<ID>.<timestamp>/<ID>
//! <dir>/.<ID>.<timestamp>/<ID>/...    the tree that clients see
//! <dir>/.<ID>.<timestamp>/info.json   size and hashes of every file in it
//! <dir>/.<ID>.pool-<stamp>/pool/...   pool files shared by snapshots (see [`crate::pool`])
//! ```
//!
//! A new snapshot is built in a fresh `.<ID>.<timestamp>/` next to the
//! current one, flushed to disk (`syncfs`), and published by replacing the
//! `<ID>` symlink atomically (a temporary symlink renamed over it, then the
//! directory fsynced). Clients therefore see either the old tree or the new
//! one, never a mix. Clean-up keeps the `keep` newest previous complete
//! snapshots and removes everything else whose name starts with `.<ID>.`
//! (failed or killed runs, with the pool files only they referenced), and
//! nothing else in `<dir>`.

use crate::pool;
use aptindex::checksum::Checksums;
use aptindex::fsmode;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Name of the checksum list inside a snapshot directory.
pub const INFO_JSON: &str = "info.json";
/// `info.json` of a snapshot being removed (no longer complete).
const DROPPED_JSON: &str = "dropped.json";

/// A snapshot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A published file or directory could not be given its mode.
    #[error(transparent)]
    Mode(#[from] aptindex::fsmode::ModeError),
    /// `<dir>/<ID>` is not what apt-mirror creates; it is left alone.
    #[error("{path}: {reason}; refusing to touch it")]
    Foreign {
        /// The path.
        path: PathBuf,
        /// What is unexpected.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A digest of `N` bytes, written as lowercase hex in `info.json` (read
/// without an intermediate string: `info.json` of a large mirror is read
/// on every run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hex<const N: usize>(pub [u8; N]);

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 128];
        let out = buf
            .get_mut(..2 * N)
            .ok_or_else(|| serde::ser::Error::custom("digest too long"))?;
        hex::encode_to_slice(self.0, out).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(std::str::from_utf8(out).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de, const N: usize> Deserialize<'de> for Hex<N> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<const N: usize>;
        impl<const N: usize> serde::de::Visitor<'_> for Visitor<N> {
            type Value = Hex<N>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "{} hex digits", 2 * N)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Hex<N>, E> {
                let mut out = [0u8; N];
                hex::decode_to_slice(v, &mut out).map_err(E::custom)?;
                Ok(Hex(out))
            }
        }
        deserializer.deserialize_str(Visitor::<N>)
    }
}

/// Size and hashes of one file, as stored in `info.json` (hex digests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Size in bytes.
    pub size: u64,
    /// MD5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<Hex<16>>,
    /// SHA-1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<Hex<20>>,
    /// SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Hex<32>>,
    /// SHA-512.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha512: Option<Hex<64>>,
}

impl FileInfo {
    /// From checksums.
    pub fn from_checksums(c: &Checksums) -> FileInfo {
        FileInfo {
            size: c.size,
            md5: c.md5.map(Hex),
            sha1: c.sha1.map(Hex),
            sha256: c.sha256.map(Hex),
            sha512: c.sha512.map(Hex),
        }
    }

    /// True when this entry describes a file with the `expected` size and
    /// hashes (see [`same_content`]).
    pub fn describes(&self, expected: &Checksums) -> bool {
        matches(expected, &self.to_checksums())
    }

    /// To checksums.
    pub fn to_checksums(&self) -> Checksums {
        Checksums {
            size: self.size,
            md5: self.md5.map(|h| h.0),
            sha1: self.sha1.map(|h| h.0),
            sha256: self.sha256.map(|h| h.0),
            sha512: self.sha512.map(|h| h.0),
        }
    }

    /// The digest files are indexed by: the strongest of SHA-256, SHA-1, MD5.
    fn key(&self) -> Option<&[u8]> {
        if let Some(d) = &self.sha256 {
            Some(&d.0)
        } else if let Some(d) = &self.sha1 {
            Some(&d.0)
        } else {
            self.md5.as_ref().map(|d| &d.0[..])
        }
    }
}

/// `info.json`: what a snapshot holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Info {
    /// Format version (1).
    pub format: u32,
    /// The mirror ID.
    pub id: String,
    /// When the snapshot was made (RFC 3339).
    pub created: String,
    /// Fingerprint of the configuration that shaped the snapshot.
    #[serde(default)]
    pub config: String,
    /// Every regular file of the tree, by path relative to the tree.
    pub files: BTreeMap<String, FileInfo>,
    /// The `by-hash/` paths made for this snapshot's own Release files (the
    /// next snapshot carries them over so clients mid-update find them).
    #[serde(default)]
    pub by_hash: Vec<String>,
    /// Pool files the previous snapshot had and this one's indices no longer
    /// name, kept for one more generation so that clients in the middle of
    /// an update still find them.
    #[serde(default)]
    pub carried: Vec<String>,
    /// Release files fetched but not published (e.g. a `Release.gpg` that
    /// does not verify next to a good `InRelease`), by path: what they
    /// were, so that the next run sees an upstream still serving the same
    /// bytes as unchanged, and why they were left out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub withheld: BTreeMap<String, Withheld>,
}

/// A Release file left out of a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Withheld {
    /// Its size and hashes, as fetched.
    #[serde(flatten)]
    pub file: FileInfo,
    /// Why it was left out.
    pub reason: String,
}

/// One snapshot directory.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `.<ID>.<timestamp>`.
    pub name: String,
    /// `<dir>/.<ID>.<timestamp>`.
    pub dir: PathBuf,
    /// `<dir>/.<ID>.<timestamp>/<ID>`: the tree clients see.
    pub tree: PathBuf,
}

impl Snapshot {
    /// Reads `info.json`; `None` if it is missing or unreadable (then
    /// nothing is reused from this snapshot).
    pub fn read_info(&self) -> Option<Info> {
        let data = std::fs::read(self.dir.join(INFO_JSON)).ok()?;
        match serde_json::from_slice::<Info>(&data) {
            Ok(info) => Some(info),
            Err(e) => {
                tracing::warn!(path = %self.dir.join(INFO_JSON).display(), error = %e, "unreadable info.json; nothing will be reused from this snapshot");
                None
            }
        }
    }
}

/// The snapshots of mirror `id` under root `dir`.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    id: String,
}

impl Store {
    /// The store of mirror `id` in `root`.
    pub fn new(root: &Path, id: &str) -> Store {
        Store {
            root: root.to_path_buf(),
            id: id.to_string(),
        }
    }

    fn prefix(&self) -> String {
        format!(".{}.", self.id)
    }

    fn snapshot(&self, name: &str) -> Snapshot {
        let dir = self.root.join(name);
        Snapshot {
            name: name.to_string(),
            tree: dir.join(&self.id),
            dir,
        }
    }

    /// The published `<dir>/<ID>` symlink path.
    pub fn link_path(&self) -> PathBuf {
        self.root.join(&self.id)
    }

    /// The snapshot `<dir>/<ID>` points to, if any.
    pub fn current(&self) -> Result<Option<Snapshot>, SnapshotError> {
        let link = self.link_path();
        let meta = match std::fs::symlink_metadata(&link) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&link)(e)),
            Ok(m) => m,
        };
        if !meta.file_type().is_symlink() {
            return Err(SnapshotError::Foreign {
                path: link,
                reason: "exists and is not a symlink".into(),
            });
        }
        let target = std::fs::read_link(&link).map_err(io_err(&link))?;
        let target_str = target.to_string_lossy();
        let mut parts = target_str.split('/');
        let (Some(name), Some(leaf), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SnapshotError::Foreign {
                path: link,
                reason: format!(
                    "points to {target_str:?}, not .{id}.<timestamp>/{id}",
                    id = self.id
                ),
            });
        };
        if !name.starts_with(&self.prefix()) || name.len() == self.prefix().len() || leaf != self.id
        {
            return Err(SnapshotError::Foreign {
                path: link,
                reason: format!(
                    "points to {target_str:?}, not .{id}.<timestamp>/{id}",
                    id = self.id
                ),
            });
        }
        Ok(Some(self.snapshot(name)))
    }

    /// Creates a fresh, empty snapshot directory (with its tree directory).
    pub fn begin(&self) -> Result<Snapshot, SnapshotError> {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ").to_string();
        let mut n = 0;
        loop {
            let name = if n == 0 {
                format!("{}{stamp}", self.prefix())
            } else {
                format!("{}{stamp}-{n}", self.prefix())
            };
            let snap = self.snapshot(&name);
            match fsmode::create_dir(&snap.dir) {
                Ok(()) => {
                    fsmode::create_dir(&snap.tree).map_err(io_err(&snap.tree))?;
                    return Ok(snap);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
                Err(e) => return Err(io_err(&snap.dir)(e)),
            }
        }
    }

    /// Writes `info`, flushes the whole new tree to disk, and swaps the
    /// `<dir>/<ID>` symlink to `snap` atomically.
    pub fn publish(&self, snap: &Snapshot, info: &Info) -> Result<(), SnapshotError> {
        let info_path = snap.dir.join(INFO_JSON);
        let data = serde_json::to_vec(info).map_err(|e| io_err(&info_path)(e.into()))?;
        write_atomic(&info_path, &data)?;
        sync_filesystem(&snap.dir)?;

        let target = PathBuf::from(&snap.name).join(&self.id);
        let tmp = self.root.join(format!("{}symlink-tmp", self.prefix()));
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&tmp)(e)),
            _ => {}
        }
        std::os::unix::fs::symlink(&target, &tmp).map_err(io_err(&tmp))?;
        let link = self.link_path();
        std::fs::rename(&tmp, &link).map_err(io_err(&link))?;
        fsync_dir(&self.root)
    }

    /// Gives the snapshot `snap` (its tree, the pool generations it links
    /// to, its directory and `info.json`) the published modes ([`fsmode`])
    /// when its `info.json` does not have them: a snapshot published by an
    /// older version (files `0600`), or under another umask. `info.json` is
    /// done last, so an interrupted pass is done again by the next run.
    /// Returns how many modes were changed.
    pub fn heal_modes(&self, snap: &Snapshot) -> Result<u64, SnapshotError> {
        let info = snap.dir.join(INFO_JSON);
        if !info.is_file() || fsmode::is_published(&info) {
            return Ok(0);
        }
        let heal_tree = |dir: &Path| {
            fsmode::heal_tree(dir).map_err(|e| match e {
                fsmode::HealError::Io { path, source } => SnapshotError::Io { path, source },
                fsmode::HealError::Mode(m) => SnapshotError::Mode(m),
            })
        };
        let generations: HashSet<String> = pool::links_of(&snap.tree, &self.id)?
            .into_values()
            .collect();
        let mut changed = 0;
        for generation in &generations {
            // (A missing generation is the run's to replace, see pool_target.)
            let dir = self.root.join(generation);
            if dir.is_dir() {
                changed += heal_tree(&dir)?;
            }
        }
        changed += heal_tree(&snap.tree)?;
        for path in [&snap.dir, &info] {
            if fsmode::heal_path(path)? == fsmode::Healed::Changed {
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// The `.<ID>.*` entries of the root, by role, for `keep`.
    fn entries(&self, keep: usize) -> Result<Entries, SnapshotError> {
        let current = self.current()?.map(|s| s.name);
        let prefix = self.prefix();
        let (mut others, mut generations) = (Vec::new(), Vec::new());
        for entry in std::fs::read_dir(&self.root).map_err(io_err(&self.root))? {
            let entry = entry.map_err(io_err(&self.root))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if pool::is_generation_name(&self.id, &name) {
                generations.push(name);
            } else if name.starts_with(&prefix) && Some(&name) != current.as_ref() {
                others.push(name);
            }
        }
        others.sort();
        generations.sort();
        let mut kept: Vec<Snapshot> = current.iter().map(|c| self.snapshot(c)).collect();
        let mut previous = 0;
        let mut doomed = Vec::new();
        for name in others.iter().rev() {
            let path = self.root.join(name);
            let is_previous = current.as_deref().is_some_and(|c| name.as_str() < c)
                && path.join(INFO_JSON).is_file()
                && path.join(&self.id).is_dir();
            if is_previous && previous < keep {
                previous += 1;
                kept.push(self.snapshot(name));
            } else {
                doomed.push(name.clone());
            }
        }
        Ok(Entries {
            kept,
            doomed,
            generations,
        })
    }

    /// The snapshots clients may still be using, newest first: the current
    /// one and the `keep` newest complete ones before it.
    pub fn kept(&self, keep: usize) -> Result<Vec<Snapshot>, SnapshotError> {
        Ok(self.entries(keep)?.kept)
    }

    /// Keeps the current snapshot and the `keep` newest complete ones
    /// before it; removes every other `.<ID>.*` entry of the root: older
    /// snapshots, leftovers of failed or killed runs, the pool files only
    /// they referenced (their `info.json` and journal say which), and pool
    /// generations no kept snapshot links to. `known` are `info.json`s the
    /// caller holds in memory, by snapshot name (not read again). Returns the
    /// names removed.
    pub fn cleanup(
        &self,
        keep: usize,
        known: &[(&str, &Info)],
    ) -> Result<Vec<String>, SnapshotError> {
        let Entries {
            kept,
            doomed,
            generations,
        } = self.entries(keep)?;
        let links = kept
            .iter()
            .map(|s| pool::links_of(&s.tree, &self.id))
            .collect::<Result<Vec<_>, _>>()?;
        let in_use: HashSet<&str> = links
            .iter()
            .flat_map(|l| l.values().map(String::as_str))
            .collect();
        let unused: Vec<&String> = generations
            .iter()
            .filter(|g| !in_use.contains(g.as_str()))
            .collect();
        if doomed.is_empty() && unused.is_empty() {
            return Ok(Vec::new());
        }
        // What the kept snapshots reference in the generations they use.
        let in_memory = |s: &Snapshot| known.iter().find(|(n, _)| *n == s.name).map(|(_, i)| *i);
        let read: Vec<Option<Info>> = kept
            .iter()
            .zip(&links)
            .map(|(s, l)| {
                if l.is_empty() || in_memory(s).is_some() {
                    None
                } else {
                    s.read_info()
                }
            })
            .collect();
        let infos: Vec<Option<&Info>> = kept
            .iter()
            .zip(&read)
            .map(|(s, r)| in_memory(s).or(r.as_ref()))
            .collect();
        let refs = pool::references(links.iter().zip(infos));
        let mut removed = Vec::new();
        for name in &doomed {
            let path = self.root.join(name);
            let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
            if meta.is_dir() {
                self.release_pool_files(&path, &refs)?;
                std::fs::remove_dir_all(&path).map_err(io_err(&path))?;
            } else {
                std::fs::remove_file(&path).map_err(io_err(&path))?;
            }
            removed.push(name.clone());
        }
        for generation in unused {
            let path = self.root.join(generation);
            std::fs::remove_dir_all(&path).map_err(io_err(&path))?;
            removed.push(generation.clone());
        }
        Ok(removed)
    }

    /// Before the snapshot directory `dir` is removed: removes the pool
    /// files it referenced or its run added (`info.json`, journal) that no
    /// kept snapshot references (`refs`, by generation in use).
    fn release_pool_files(
        &self,
        dir: &Path,
        refs: &HashMap<&str, pool::References>,
    ) -> Result<(), SnapshotError> {
        // First make sure it can never count as a complete snapshot again
        // (an interrupted removal is finished by the next clean-up).
        let info = dir.join(INFO_JSON);
        let dropped = dir.join(DROPPED_JSON);
        if info.is_file() {
            std::fs::rename(&info, &dropped).map_err(io_err(&info))?;
        }
        let mut candidates: HashMap<String, Vec<String>> = HashMap::new();
        let links = pool::links_of(&dir.join(&self.id), &self.id)?;
        if !links.is_empty() {
            if let Some(info) = read_json::<Info>(&dropped) {
                for (generation, path) in pool::files_in_generations(&links, &info) {
                    candidates
                        .entry(generation.to_string())
                        .or_default()
                        .push(path.to_string());
                }
            }
        }
        if let Some(journal) = read_json::<pool::Journal>(&dir.join(pool::JOURNAL)) {
            if pool::is_generation_name(&self.id, &journal.pool) {
                candidates
                    .entry(journal.pool)
                    .or_default()
                    .extend(journal.paths);
            }
        }
        for (generation, paths) in candidates {
            // Not in use: the whole generation goes. Unknown: keep all.
            let Some(Some(referenced)) = refs.get(generation.as_str()) else {
                continue;
            };
            let n = pool::remove_files(
                &self.root.join(&generation),
                paths
                    .iter()
                    .map(String::as_str)
                    .filter(|p| !referenced.contains_key(*p)),
            );
            if n > 0 {
                tracing::debug!(generation = %generation, files = n, "unreferenced pool files removed");
            }
        }
        Ok(())
    }
}

/// The `.<ID>.*` entries of a mirror root, by role.
struct Entries {
    /// The current snapshot and the `keep` newest complete ones before it,
    /// newest first.
    kept: Vec<Snapshot>,
    /// Every other entry but pool generations: older snapshots, leftovers.
    doomed: Vec<String>,
    /// Pool generations.
    generations: Vec<String>,
}

/// Reads a JSON file; `None` if it is missing or unreadable.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let data = std::fs::read(path).ok()?;
    match serde_json::from_slice(&data) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "unreadable file ignored");
            None
        }
    }
}

/// Writes `data` to `path` through a temporary file and a rename; the file
/// gets the published mode ([`fsmode`]).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), SnapshotError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    fsmode::create_dir_all(dir).map_err(io_err(dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".part-")
        .tempfile_in(dir)
        .map_err(io_err(path))?;
    tmp.write_all(data).map_err(io_err(path))?;
    fsmode::publish_file(tmp.as_file(), path)?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    Ok(())
}

/// Flushes every file and directory of the file system holding `path`.
fn sync_filesystem(path: &Path) -> Result<(), SnapshotError> {
    let dir = std::fs::File::open(path).map_err(io_err(path))?;
    rustix::fs::syncfs(&dir).map_err(|e| io_err(path)(e.into()))
}

fn fsync_dir(path: &Path) -> Result<(), SnapshotError> {
    std::fs::File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(io_err(path))
}

/// A file of an earlier snapshot that may replace a download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reuse {
    /// Its size and hashes, recorded in `info.json`, match.
    Known(PathBuf),
    /// The earlier snapshot has no `info.json` (e.g. made by go-apt-mirror):
    /// a file at the same path with the same size, to be hashed before use.
    Unverified(PathBuf),
}

/// Finds files of an earlier snapshot that can be hard-linked instead of
/// downloaded: same path or same content, with size and hashes matching.
/// It borrows the snapshot's `info.json`; the index by content is built on
/// the first look-up that needs it.
#[derive(Debug, Default)]
pub struct ReuseIndex<'a> {
    tree: PathBuf,
    unverified: bool,
    files: Option<&'a BTreeMap<String, FileInfo>>,
    by_digest: std::sync::OnceLock<HashMap<&'a [u8], &'a str>>,
}

impl<'a> ReuseIndex<'a> {
    /// An index of `info`'s files in the tree `tree`.
    pub fn new(tree: &Path, info: &'a Info) -> ReuseIndex<'a> {
        ReuseIndex {
            tree: tree.to_path_buf(),
            files: Some(&info.files),
            ..Default::default()
        }
    }

    /// An index of a tree without `info.json`: files at the same path and of
    /// the same size are offered as [`Reuse::Unverified`].
    pub fn unverified(tree: &Path) -> ReuseIndex<'a> {
        ReuseIndex {
            tree: tree.to_path_buf(),
            unverified: true,
            ..Default::default()
        }
    }

    /// Number of files known.
    pub fn len(&self) -> usize {
        self.files.map_or(0, BTreeMap::len)
    }

    /// True when nothing is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A file of an earlier snapshot whose size and hashes match `expected`.
    pub fn find(&self, path: &str, expected: &Checksums) -> Option<Reuse> {
        if self.unverified {
            let candidate = self.tree.join(path);
            let meta = std::fs::symlink_metadata(&candidate).ok()?;
            return (meta.is_file() && meta.len() == expected.size)
                .then_some(Reuse::Unverified(candidate));
        }
        let files = self.files?;
        if let Some(old) = files.get(path) {
            if old.describes(expected) {
                return Some(Reuse::Known(self.tree.join(path)));
            }
        }
        let by_digest = self.by_digest.get_or_init(|| {
            files
                .iter()
                .filter_map(|(p, fi)| Some((fi.key()?, p.as_str())))
                .collect()
        });
        let key = FileInfo::from_checksums(expected);
        let other = by_digest.get(key.key()?)?;
        let old = files.get(*other)?;
        old.describes(expected)
            .then(|| Reuse::Known(self.tree.join(other)))
    }
}

/// True when `a` and `b` describe the same bytes as far as can be told
/// without reading them (see [`matches`]).
pub fn same_content(a: &Checksums, b: &Checksums) -> bool {
    matches(a, b)
}

/// Same size, and every hash both know equal, with at least one in common.
fn matches(expected: &Checksums, old: &Checksums) -> bool {
    if expected.size != old.size {
        return false;
    }
    let mut common = 0;
    macro_rules! cmp {
        ($f:ident) => {
            if let (Some(a), Some(b)) = (&expected.$f, &old.$f) {
                if a != b {
                    return false;
                }
                common += 1;
            }
        };
    }
    cmp!(md5);
    cmp!(sha1);
    cmp!(sha256);
    cmp!(sha512);
    // The strongest hash the expectation has must be known to the old file.
    let strongest_known = if expected.sha512.is_some() {
        old.sha512.is_some()
    } else if expected.sha256.is_some() {
        old.sha256.is_some()
    } else if expected.sha1.is_some() {
        old.sha1.is_some()
    } else {
        true
    };
    common > 0 && strongest_known
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(size: u64, b: u8) -> Checksums {
        Checksums {
            size,
            md5: Some([b; 16]),
            sha256: Some([b; 32]),
            ..Default::default()
        }
    }

    #[test]
    fn withheld_release_files_round_trip_and_are_optional() {
        let mut info = Info {
            format: 1,
            id: "deb".into(),
            ..Default::default()
        };
        let plain = serde_json::to_string(&info).unwrap();
        assert!(!plain.contains("withheld"), "{plain}");
        info.withheld.insert(
            "dists/s/Release.gpg".into(),
            Withheld {
                file: FileInfo::from_checksums(&sums(7, 3)),
                reason: "BAD signature".into(),
            },
        );
        let back: Info = serde_json::from_str(&serde_json::to_string(&info).unwrap()).unwrap();
        let w = &back.withheld["dists/s/Release.gpg"];
        assert_eq!(w.reason, "BAD signature");
        assert!(w.file.describes(&sums(7, 3)));
        // An info.json written before the field existed still reads.
        let old: Info = serde_json::from_str(&plain).unwrap();
        assert!(old.withheld.is_empty());
    }

    #[test]
    fn publish_swaps_symlink_and_cleanup_keeps_previous() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("unrelated"), b"x").unwrap();
        std::fs::create_dir(root.path().join(".other.2020")).unwrap();
        let store = Store::new(root.path(), "deb");
        assert!(store.current().unwrap().is_none());

        let mut names = Vec::new();
        for i in 0..4u8 {
            let s = store.begin().unwrap();
            std::fs::write(s.tree.join("f"), [i]).unwrap();
            let mut info = Info {
                format: 1,
                id: "deb".into(),
                ..Default::default()
            };
            info.files
                .insert("f".into(), FileInfo::from_checksums(&sums(1, i)));
            store.publish(&s, &info).unwrap();
            assert_eq!(std::fs::read(root.path().join("deb/f")).unwrap(), [i]);
            assert_eq!(store.current().unwrap().unwrap().name, s.name);
            let back = s.read_info().unwrap();
            assert_eq!(back.files["f"].to_checksums(), sums(1, i));
            names.push(s.name);
        }
        let link = std::fs::read_link(root.path().join("deb")).unwrap();
        assert_eq!(link, PathBuf::from(&names[3]).join("deb"));

        // A failed run's leftovers: an unfinished snapshot, a stray temp symlink.
        let failed = store.begin().unwrap();
        std::fs::write(failed.tree.join(".part-x"), b"partial").unwrap();
        std::os::unix::fs::symlink("nowhere", root.path().join(".deb.symlink-tmp")).unwrap();

        let removed = store.cleanup(1, &[]).unwrap();
        assert_eq!(removed.len(), 4, "{removed:?}");
        assert!(root.path().join(&names[3]).is_dir());
        assert!(root.path().join(&names[2]).is_dir());
        assert!(!root.path().join(&names[1]).exists());
        assert!(!root.path().join(&names[0]).exists());
        assert!(!failed.dir.exists());
        assert!(root.path().join("unrelated").exists());
        assert!(root.path().join(".other.2020").exists());

        assert_eq!(store.cleanup(0, &[]).unwrap(), vec![names[2].clone()]);
        assert!(root.path().join("deb/f").exists());
    }

    /// Publishes a snapshot whose `pool` links into `generation` and whose
    /// info.json names `files` (written into the generation).
    fn publish_pooled(store: &Store, root: &Path, generation: &str, files: &[&str]) -> Snapshot {
        let s = store.begin().unwrap();
        let shared: std::collections::BTreeSet<String> = ["pool".to_string()].into();
        pool::link_shared(&s.tree, &root.join(generation), generation, &shared).unwrap();
        let mut info = Info::default();
        for f in files {
            let path = root.join(generation).join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, f.as_bytes()).unwrap();
            let sums = Checksums::of_bytes(f.as_bytes());
            info.files
                .insert(f.to_string(), FileInfo::from_checksums(&sums));
        }
        store.publish(&s, &info).unwrap();
        s
    }

    #[test]
    fn cleanup_removes_only_pool_files_no_kept_snapshot_names() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::new(root.path(), "deb");
        let g = ".deb.pool-1";
        let first = publish_pooled(&store, root.path(), g, &["pool/a/1", "pool/b/1"]);
        let second = publish_pooled(&store, root.path(), g, &["pool/a/1", "pool/c/1"]);
        // A killed run: it journaled and added pool/d/1 and pool/a/1 (already named).
        let killed = store.begin().unwrap();
        std::fs::create_dir_all(root.path().join(g).join("pool/d")).unwrap();
        std::fs::write(root.path().join(g).join("pool/d/1"), b"partial run").unwrap();
        let journal = pool::Journal {
            pool: g.into(),
            paths: vec!["pool/d/1".into(), "pool/a/1".into()],
        };
        write_atomic(
            &killed.dir.join(pool::JOURNAL),
            &serde_json::to_vec(&journal).unwrap(),
        )
        .unwrap();
        // keep = 1: both published snapshots stay; the killed run's file goes.
        assert_eq!(store.cleanup(1, &[]).unwrap(), vec![killed.name.clone()]);
        let gen = root.path().join(g);
        assert!(!gen.join("pool/d").exists());
        for f in ["pool/a/1", "pool/b/1", "pool/c/1"] {
            assert!(gen.join(f).is_file(), "{f}");
        }
        // keep = 0: the first snapshot goes, with pool/b/1 that only it named.
        assert_eq!(store.cleanup(0, &[]).unwrap(), vec![first.name.clone()]);
        assert!(!gen.join("pool/b").exists());
        assert!(gen.join("pool/a/1").is_file() && gen.join("pool/c/1").is_file());
        assert_eq!(
            std::fs::read(root.path().join("deb/pool/c/1")).unwrap(),
            b"pool/c/1"
        );

        // A kept snapshot whose info.json is unreadable protects its generation.
        let third = publish_pooled(&store, root.path(), g, &["pool/e/1"]);
        std::fs::write(second.dir.join(INFO_JSON), b"not json").unwrap();
        std::fs::write(third.dir.join(INFO_JSON), b"not json").unwrap();
        let fourth = publish_pooled(&store, root.path(), ".deb.pool-2", &["pool/f/1"]);
        // keep = 1: `third` (unreadable) is kept, `second` goes; nothing is
        // removed from `g`, which `third` links to.
        assert_eq!(store.cleanup(1, &[]).unwrap(), vec![second.name.clone()]);
        for f in ["pool/a/1", "pool/c/1", "pool/e/1"] {
            assert!(gen.join(f).is_file(), "{f}");
        }
        // keep = 0: `g` is no longer linked to by any kept snapshot: removed whole.
        let removed = store.cleanup(0, &[]).unwrap();
        assert_eq!(removed, vec![third.name.clone(), g.to_string()]);
        assert!(!gen.exists());
        assert_eq!(store.current().unwrap().unwrap().name, fourth.name);
        assert_eq!(
            std::fs::read(root.path().join("deb/pool/f/1")).unwrap(),
            b"pool/f/1"
        );
    }

    #[test]
    fn foreign_link_is_left_alone() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("deb")).unwrap();
        let store = Store::new(root.path(), "deb");
        assert!(matches!(
            store.current(),
            Err(SnapshotError::Foreign { .. })
        ));
        std::fs::remove_dir(root.path().join("deb")).unwrap();
        std::os::unix::fs::symlink("/etc", root.path().join("deb")).unwrap();
        assert!(matches!(
            store.current(),
            Err(SnapshotError::Foreign { .. })
        ));
        assert!(matches!(
            store.cleanup(1, &[]),
            Err(SnapshotError::Foreign { .. })
        ));
    }

    #[test]
    fn reuse_by_path_and_by_content() {
        let mut info = Info::default();
        info.files
            .insert("pool/a.deb".into(), FileInfo::from_checksums(&sums(10, 1)));
        let idx = ReuseIndex::new(Path::new("/t"), &info);
        assert_eq!(
            idx.find("pool/a.deb", &sums(10, 1)),
            Some(Reuse::Known(PathBuf::from("/t/pool/a.deb")))
        );
        assert_eq!(
            idx.find("pool/b.deb", &sums(10, 1)),
            Some(Reuse::Known(PathBuf::from("/t/pool/a.deb")))
        );
        assert_eq!(idx.find("pool/a.deb", &sums(10, 2)), None);
        assert_eq!(idx.find("pool/a.deb", &sums(11, 1)), None);
        let mut only_md5 = sums(10, 1);
        only_md5.sha256 = None;
        assert!(idx.find("pool/a.deb", &only_md5).is_some());
        let mut with_512 = sums(10, 1);
        with_512.sha512 = Some([1; 64]);
        assert!(idx.find("pool/a.deb", &with_512).is_none());
        let mut sha1_only = Checksums {
            size: 10,
            sha1: Some([1; 20]),
            ..Default::default()
        };
        assert!(idx.find("pool/a.deb", &sha1_only).is_none());
        sha1_only.md5 = Some([1; 16]);
        assert!(idx.find("pool/a.deb", &sha1_only).is_none());
    }
}
