//! One mirror's update from start to end: heal the current snapshot's
//! modes, stop early when upstream is unchanged, build the new snapshot
//! ([`super::build`]), publish it, and collect garbage (also after a
//! failure: the unfinished snapshot goes).

use super::release::{config_fingerprint, same_as_snapshot};
use super::update::Update;
use super::{MirrorError, Outcome, Task};
use crate::snapshot::{Info, Snapshot};
use aptindex::signature::Keyring;
use aptindex::trust::Decision;
use std::time::Instant;

impl Update<'_> {
    pub(super) async fn run(&self) -> Result<(Outcome, Option<String>), MirrorError> {
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
                .map_err(|source| MirrorError::Task {
                    task: Task::Mode,
                    path: cur.dir.clone(),
                    source,
                })??;
            if changed > 0 {
                tracing::info!(mirror = %self.cfg.id, snapshot = %cur.name, changed, "published modes restored (0644 files, 0755 directories, minus the umask)");
            }
        }
        let current_info = current.as_ref().and_then(Snapshot::read_info);
        let fingerprint = config_fingerprint(self.cfg);

        let releases = self.fetch_releases().await?;
        if let (Some(cur), Some(info)) = (&current, &current_info) {
            if info.config == fingerprint && same_as_snapshot(cur, info, &releases) {
                tracing::info!(mirror = %self.cfg.id, "upstream unchanged");
                for (path, w) in &info.withheld {
                    let url = self
                        .url(path)
                        .map(|u| u.to_string())
                        .unwrap_or_else(|_| path.clone());
                    tracing::warn!(mirror = %self.cfg.id, url = %url, reason = %w.reason, "still not published (unchanged upstream)");
                    self.counters
                        .warn(format!("{url}: {}; still not published", w.reason));
                }
                self.cleanup(&[(&cur.name, info)]);
                return Ok((Outcome::Unchanged, Some(cur.name.clone())));
            }
        }
        let parsed = releases
            .iter()
            .map(|r| self.verify_release(keyring.as_ref(), r))
            .collect::<Result<Vec<Decision>, MirrorError>>()?;

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
}
