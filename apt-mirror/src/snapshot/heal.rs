//! Restoring the published modes of a snapshot made by an older version
//! (files `0600`) or under another umask, before anything else of a run.

use super::{Snapshot, SnapshotError, Store, INFO_JSON};
use crate::pool;
use aptindex::fsmode;
use std::collections::HashSet;
use std::path::Path;

impl Store {
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
}
