//! The pool shared between snapshots, so that a run costs what changed
//! rather than the size of the mirror.
//!
//! ```text
//! <dir>/.<ID>.pool-<stamp>/pool/...           a pool generation
//! <dir>/.<ID>.<timestamp>/<ID>/pool           -> ../../.<ID>.pool-<stamp>/pool
//! <dir>/.<ID>.<timestamp>/pool-journal.json   what that run added to the generation
//! ```
//!
//! The top-level directories of a snapshot tree that hold only files named
//! by the indices (normally just `pool/`: no Release file, index or by-hash
//! file below them) are not built anew for every snapshot: they live in a
//! pool *generation* that snapshots share, and each tree reaches them through
//! a relative symlink. A run adds the new files to the current snapshot's
//! generation before the swap (each downloaded to a temporary file and
//! renamed into place once verified, or hard-linked), after recording their
//! paths in its journal. A file that a kept snapshot references is never
//! modified: when the upstream changes the bytes of such a path (a package
//! rebuilt under the same file name), the run starts a new generation, made
//! of hard links to the unchanged files, like a full snapshot.
//!
//! After the swap, files that no kept snapshot references any more are
//! removed: those named by the `info.json` of snapshots that fell out of
//! `keep`, and those in the journals of failed or killed runs; a generation
//! that no kept snapshot links to is removed whole (see
//! [`crate::snapshot::Store::cleanup`]).

use crate::info::{FileInfo, Info};
use aptindex::tree::TreeError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Name of the journal inside a snapshot directory.
pub const JOURNAL: &str = "pool-journal.json";

/// What a run is about to add to a pool generation, written (and flushed)
/// before the first file is added, so that a killed run's files can be
/// removed by the next one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Journal {
    /// The generation (`.<ID>.pool-<stamp>`).
    pub pool: String,
    /// Paths relative to the generation directory.
    pub paths: Vec<String>,
}

/// The name of the generation a snapshot named `.<ID>.<stamp>` starts.
pub fn generation_name(id: &str, snapshot_name: &str) -> String {
    let stamp = snapshot_name
        .strip_prefix(&format!(".{id}."))
        .unwrap_or(snapshot_name);
    format!(".{id}.pool-{stamp}")
}

/// True when `name` is a pool generation of mirror `id`.
pub fn is_generation_name(id: &str, name: &str) -> bool {
    name.strip_prefix(&format!(".{id}.pool-"))
        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
}

/// The first path component, when the path has more than one.
fn top(path: &str) -> Option<&str> {
    path.split_once('/').map(|(first, _)| first)
}

/// The top-level directories that can be shared: those holding files of
/// `pool_paths` and no file of `metadata_paths` (Release files, indices,
/// by-hash files, which belong to one snapshot).
pub fn shared_dirs<'a>(
    pool_paths: impl IntoIterator<Item = &'a str>,
    metadata_paths: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = pool_paths
        .into_iter()
        .filter_map(top)
        .filter(|t| aptindex::path::is_safe_relative(t))
        .map(str::to_string)
        .collect();
    for m in metadata_paths {
        out.remove(top(m).unwrap_or(m));
    }
    out
}

/// True when `path` lies under one of the `shared` directories.
pub fn is_shared(shared: &BTreeSet<String>, path: &str) -> bool {
    top(path).is_some_and(|t| shared.contains(t))
}

/// The shared directories of the tree `tree` (symlinks at its top level
/// that point to `../../.<ID>.pool-<stamp>/<name>`), by name, with the
/// generation each points into. Other entries are ignored.
pub fn links_of(tree: &Path, id: &str) -> Result<BTreeMap<String, String>, TreeError> {
    let io = |source| TreeError::Io {
        path: tree.to_path_buf(),
        source,
    };
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(tree) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        r => r.map_err(io)?,
    };
    for entry in entries {
        let entry = entry.map_err(io)?;
        if !entry.file_type().map_err(io)?.is_symlink() {
            continue;
        }
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        let mut parts = target.split('/');
        if let (Some(".."), Some(".."), Some(generation), Some(leaf), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) {
            if leaf == name && is_generation_name(id, generation) {
                out.insert(name, generation.to_string());
            }
        }
    }
    Ok(out)
}

/// Makes `<generation>/<name>` for each shared name and links
/// `<tree>/<name> -> ../../<generation>/<name>`.
pub fn link_shared(
    tree: &Path,
    generation_dir: &Path,
    generation: &str,
    shared: &BTreeSet<String>,
) -> Result<(), TreeError> {
    for name in shared {
        let dir = generation_dir.join(name);
        aptindex::fsmode::create_dir_all(&dir).map_err(TreeError::io(&dir))?;
        let link = tree.join(name);
        let target = PathBuf::from("../..").join(generation).join(name);
        std::os::unix::fs::symlink(&target, &link).map_err(TreeError::io(&link))?;
    }
    Ok(())
}

/// What the snapshots of a set reference in one generation: path (relative
/// to the generation) and its entry in their `info.json`, or `None` when a
/// snapshot linking to it has no readable `info.json` (then nothing may be
/// removed from it, nor replaced in it).
pub type References<'a> = Option<HashMap<&'a str, &'a FileInfo>>;

/// The references of `snapshots` (tree links and `info.json`), per
/// generation.
pub fn references<'a>(
    snapshots: impl IntoIterator<Item = (&'a BTreeMap<String, String>, Option<&'a Info>)>,
) -> HashMap<&'a str, References<'a>> {
    let mut out: HashMap<&'a str, References<'a>> = HashMap::new();
    for (links, info) in snapshots {
        for generation in links.values() {
            out.entry(generation.as_str())
                .or_insert_with(|| Some(HashMap::new()));
        }
        let Some(info) = info else {
            for generation in links.values() {
                out.insert(generation.as_str(), None);
            }
            continue;
        };
        for (path, fi) in &info.files {
            let Some(generation) = top(path).and_then(|t| links.get(t)) else {
                continue;
            };
            if let Some(Some(map)) = out.get_mut(generation.as_str()) {
                map.insert(path.as_str(), fi);
            }
        }
    }
    out
}

/// The files of `info` (a snapshot with tree links `links`) that lie in a
/// generation, as (generation, path).
pub fn files_in_generations<'a>(
    links: &'a BTreeMap<String, String>,
    info: &'a Info,
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    info.files.keys().filter_map(move |path| {
        let generation = links.get(top(path)?)?;
        Some((generation.as_str(), path.as_str()))
    })
}

/// Threads that remove files at the same time: an unlink mostly waits for
/// the file system (journal, discard), so a few in parallel go much faster
/// than one after the other.
const REMOVERS: usize = 16;

/// Calls `f` on every item, on up to [`REMOVERS`] threads.
fn in_parallel<T: Sync>(items: &[T], f: impl Fn(&T) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match items.get(i) {
            Some(item) => f(item),
            None => break,
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..REMOVERS.min(items.len()) {
            scope.spawn(work);
        }
        work();
    });
}

/// Removes the files `paths` (relative to `generation_dir`) and the
/// directories they leave empty (not the shared directories themselves,
/// which snapshots link to); returns how many files were removed. A path
/// that is not safe is skipped.
pub fn remove_files<'a>(generation_dir: &Path, paths: impl IntoIterator<Item = &'a str>) -> usize {
    let files: Vec<PathBuf> = paths
        .into_iter()
        .filter(|p| aptindex::path::is_safe_relative(p))
        .map(|p| generation_dir.join(p))
        .collect();
    let removed = std::sync::atomic::AtomicUsize::new(0);
    in_parallel(&files, |file| match std::fs::remove_file(file) {
        Ok(()) => {
            removed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %file.display(), error = %e, "cannot remove unreferenced pool file");
        }
    });
    // Parents left empty, deepest first, one level at a time.
    let below_shared = |d: &Path| {
        d.starts_with(generation_dir) && d.parent() != Some(generation_dir) && d != generation_dir
    };
    let mut level: BTreeSet<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent())
        .filter(|d| below_shared(d))
        .map(Path::to_path_buf)
        .collect();
    while !level.is_empty() {
        let dirs: Vec<PathBuf> = level.into_iter().collect();
        let gone = std::sync::Mutex::new(Vec::new());
        in_parallel(&dirs, |d| {
            if std::fs::remove_dir(d).is_ok() {
                gone.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(d.clone());
            }
        });
        level = gone
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|d| d.parent())
            .filter(|d| below_shared(d))
            .map(Path::to_path_buf)
            .collect();
    }
    removed.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aptindex::checksum::Checksums;

    #[test]
    fn names() {
        assert_eq!(
            generation_name("deb", ".deb.20260101T000000Z"),
            ".deb.pool-20260101T000000Z"
        );
        assert!(is_generation_name("deb", ".deb.pool-x"));
        assert!(!is_generation_name("deb", ".deb.pool-"));
        assert!(!is_generation_name("deb", ".deb.2026"));
        assert!(!is_generation_name("deb", ".debx.pool-1"));
    }

    #[test]
    fn shared_directories_hold_no_metadata() {
        let shared = shared_dirs(
            [
                "pool/main/a.deb",
                "flat/b.deb",
                "root.deb",
                "dists/s/main/i18n/Translation-de",
            ],
            ["dists/s/InRelease", "flat/Packages.gz", "Release"],
        );
        assert_eq!(shared.into_iter().collect::<Vec<_>>(), ["pool"]);
        let s: BTreeSet<String> = ["pool".to_string()].into();
        assert!(is_shared(&s, "pool/a"));
        assert!(!is_shared(&s, "pool"));
        assert!(!is_shared(&s, "poolx/a"));
    }

    #[test]
    fn links_references_and_removal() {
        let root = tempfile::tempdir().unwrap();
        let tree = root.path().join(".m.1/m");
        std::fs::create_dir_all(&tree).unwrap();
        let generation = root.path().join(".m.pool-1");
        let shared: BTreeSet<String> = ["pool".to_string()].into();
        link_shared(&tree, &generation, ".m.pool-1", &shared).unwrap();
        std::fs::create_dir_all(generation.join("pool/a/b")).unwrap();
        std::fs::write(generation.join("pool/a/b/x.deb"), b"x").unwrap();
        std::fs::write(generation.join("pool/a/y.deb"), b"y").unwrap();
        assert_eq!(std::fs::read(tree.join("pool/a/b/x.deb")).unwrap(), b"x");
        // A foreign symlink is not a shared directory.
        std::os::unix::fs::symlink("/etc", tree.join("etc")).unwrap();
        let links = links_of(&tree, "m").unwrap();
        assert_eq!(links.len(), 1);
        assert_eq!(links["pool"], ".m.pool-1");

        let mut info = Info::default();
        let sums = Checksums::of_bytes(b"x");
        info.files
            .insert("pool/a/b/x.deb".into(), FileInfo::from_checksums(&sums));
        info.files
            .insert("dists/s/Release".into(), FileInfo::from_checksums(&sums));
        let refs = references([(&links, Some(&info))]);
        let map = refs[".m.pool-1"].as_ref().unwrap();
        assert_eq!(map.len(), 1);
        assert!(map["pool/a/b/x.deb"].describes(&sums));
        let in_gen: Vec<_> = files_in_generations(&links, &info).collect();
        assert_eq!(in_gen, [(".m.pool-1", "pool/a/b/x.deb")]);
        assert!(references([(&links, None)])[".m.pool-1"].is_none());

        assert_eq!(
            remove_files(&generation, ["pool/a/b/x.deb", "pool/nope", "../.m.1"]),
            1
        );
        assert!(!generation.join("pool/a/b").exists());
        assert!(generation.join("pool/a/y.deb").exists());
        assert!(root.path().join(".m.1").exists());
        // The shared directory itself stays, even when empty.
        assert_eq!(remove_files(&generation, ["pool/a/y.deb"]), 1);
        assert!(!generation.join("pool/a").exists());
        assert!(generation.join("pool").is_dir());
    }
}
