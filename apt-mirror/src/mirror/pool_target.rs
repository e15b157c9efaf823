//! Where a run puts the shared pool files ([`crate::pool`]): the current
//! snapshot's generation, extended, or a fresh one; which files it already
//! holds; and the pool files dropped upstream that stay one more snapshot.

use super::update::Update;
use super::{MirrorError, Task};
use crate::plan;
use crate::pool;
use crate::snapshot::{FileInfo, Info, Snapshot, SnapshotError};
use aptindex::checksum::Checksums;
use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

impl Update<'_> {
    /// Where this run puts the files of the `shared` directories: the
    /// current snapshot's pool generation, extended, or a new generation
    /// (first run, a snapshot made by an older version, or a shared path
    /// whose bytes change while a kept snapshot still names the old ones).
    /// `None` when nothing is shared. Marks the files of `wanted` and
    /// `carried` the generation already holds.
    pub(super) fn pool_target(
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
}

/// The pool generation a run puts shared files into.
#[derive(Debug)]
pub(super) struct PoolTarget {
    /// `.<ID>.pool-<stamp>`.
    pub(super) name: String,
    /// `<dir>/.<ID>.pool-<stamp>`.
    pub(super) dir: PathBuf,
    /// Which files of the wanted and carried lists it already holds for a
    /// kept snapshot (none when fresh).
    pub(super) wanted_present: Vec<bool>,
    pub(super) carried_present: Vec<bool>,
    /// Made by this run.
    pub(super) fresh: bool,
}

/// Of the files `held` (path, entry) that the generation directory `dir`
/// should hold, those it does not (missing, or of another size), on a
/// blocking thread: returns (those present, those missing). Those present
/// get the published mode if they lack it (published by an older version).
pub(super) async fn check_held(
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
    .map_err(|source| MirrorError::Task {
        task: Task::Checking,
        path: error_path,
        source,
    })?
}

/// The pool files of the current snapshot (`info`) that `wanted` no longer
/// names: kept one more generation for clients of the previous indices
/// (not those it carried itself, nor metadata, nor unsafe paths).
pub(super) fn carried_files(
    info: Option<&Info>,
    wanted: &[(String, Checksums)],
) -> Vec<(String, Checksums)> {
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
