//! Keeping `meta_dir` bounded: a suite no client asked for (its Release or
//! one of its indices, by-hash included; a pool file does not count) during
//! `retention` (at least `generation_grace`) and whose generations no
//! request holds is dropped by the ticker: forgotten, its directory moved
//! aside (under `meta_dir/.tmp`, so a suite of the same name made right
//! after never shares it) and removed, its
//! generations' pool maps unregistered (when the last request holding one
//! ends), so that the retention sweeper sees its cached files as
//! unreferenced. A client asking again later finds an unknown suite and
//! fetches it anew, like any other.
//!
//! The clock starts when the suite is made or loaded (a restart starts it
//! again: a suite is only ever kept longer). A request that found the suite
//! just before it was dropped and waited for its lock gets
//! [`Invalid::Dropped`] (a 502; the next request fetches it anew).

use super::*;

impl Generations {
    /// How long a suite may go without a client before it is dropped.
    fn idle_limit(&self) -> Duration {
        self.retention.max(self.grace)
    }

    /// Drops the suites no client asked for during [`Self::idle_limit`]
    /// (those busy right now are left for the next tick).
    pub(super) async fn drop_idle(&self) {
        let limit = self.idle_limit();
        let idle: Vec<Arc<Suite>> = {
            let suites = self.suites.lock().unwrap_or_else(|e| e.into_inner());
            suites
                .values()
                .filter(|s| s.idle_for() >= limit)
                .cloned()
                .collect()
        };
        for suite in idle {
            let Ok(_guard) = suite.lock.try_lock() else {
                continue;
            };
            if suite.idle_for() < limit {
                continue;
            }
            // A generation some request still holds (a file being read or
            // fetched into it): left for a later tick.
            let busy = {
                let st = suite.state();
                st.current
                    .iter()
                    .chain(st.previous.iter().map(|(g, _)| g))
                    .any(|g| Arc::strong_count(g) > 1)
            };
            if busy {
                continue;
            }
            // Moved aside while the table is locked, so that a suite of the
            // same name made right after never shares its directory.
            let trash = self.tmp.join(format!(
                "dropped-{}-{}-{}",
                suite.mapping,
                suite.path.file_name().unwrap_or_default().to_string_lossy(),
                unix_secs(SystemTime::now())
            ));
            {
                let mut suites = self.suites.lock().unwrap_or_else(|e| e.into_inner());
                let key = (suite.mapping, suite.dir.clone());
                if !suites.get(&key).is_some_and(|s| Arc::ptr_eq(s, &suite)) {
                    continue;
                }
                suites.remove(&key);
                if let Err(e) = std::fs::rename(&suite.path, &trash) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(dir = %suite.path.display(), error = %e, "cannot move a dropped suite's directory aside");
                    }
                }
            }
            let (current, previous) = {
                let mut st = suite.state_mut();
                st.dropped = true;
                (st.current.take(), std::mem::take(&mut st.previous))
            };
            // Their pool maps are unregistered as the last holder lets go.
            drop(current);
            drop(previous);
            let path = trash;
            let removed =
                tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                })
                .await;
            let prefix = self.prefix(suite.mapping);
            match removed {
                Ok(Ok(())) => {
                    tracing::info!(mapping = %prefix, suite = %suite.dir, idle_secs = limit.as_secs(), "no client asked for this suite during retention; dropped");
                }
                Ok(Err(e)) => {
                    tracing::warn!(mapping = %prefix, suite = %suite.dir, dir = %suite.path.display(), error = %e, "suite dropped; its directory could not be removed");
                }
                Err(e) => {
                    tracing::warn!(mapping = %prefix, suite = %suite.dir, error = %e, "removing a dropped suite's directory failed");
                }
            }
            self.metrics.suite_dropped();
        }
    }
}
