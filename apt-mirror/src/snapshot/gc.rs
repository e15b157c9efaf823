//! Garbage collection of a mirror root: the current snapshot and the `keep`
//! newest complete ones before it stay (chosen by
//! [`aptindex::tree::generations`]); every other `.<ID>.*` entry goes:
//! older snapshots, leftovers of failed or killed runs, the pool files only
//! they referenced, and pool generations no kept snapshot links to.

use super::{io_err, Snapshot, SnapshotError, Store, DROPPED_JSON, INFO_JSON};
use crate::info::{read_json, Info};
use crate::pool;
use aptindex::tree;
use std::collections::{HashMap, HashSet};
use std::path::Path;

impl Store {
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
        generations.sort();
        let is_complete = |name: &str| {
            let path = self.root.join(name);
            path.join(INFO_JSON).is_file() && path.join(&self.id).is_dir()
        };
        let selection = tree::generations::select(others, current.as_deref(), keep, is_complete);
        let kept = selection.kept.iter().map(|n| self.snapshot(n)).collect();
        let doomed = selection.doomed;
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
            }
            tree::generations::remove(&path)?;
            removed.push(name.clone());
        }
        for generation in unused {
            tree::generations::remove(&self.root.join(generation))?;
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
