//! The start-up gate: until [`Generations::load_all`] has read every
//! suite's current generation back from disk, a request for a pool file
//! waits for it (at most [`STARTUP_WAIT`]) instead of missing a cached,
//! listed file because its suite is not loaded yet (it would then be
//! fetched unverified, or get a 502 with the upstream down). After the
//! wait, a request goes on as before (loading what it needs itself).

use super::Generations;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The longest a request waits for the start-up load.
pub const STARTUP_WAIT: Duration = Duration::from_secs(10);

/// Whether the start-up load is done (set once, never unset), and how
/// the cached generations were read.
#[derive(Debug)]
pub(crate) struct Startup(watch::Sender<bool>, pub(crate) Arc<LoadCounts>);

impl Default for Startup {
    fn default() -> Startup {
        Startup(watch::Sender::new(false), Arc::default())
    }
}

/// How loading cached generations got each index's pool map.
#[derive(Debug, Default)]
pub(crate) struct LoadCounts {
    maps_read: AtomicU64,
    parsed: AtomicU64,
}

impl LoadCounts {
    pub(crate) fn map_read(&self) {
        self.maps_read.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn parsed(&self) {
        self.parsed.fetch_add(1, Ordering::Relaxed);
    }
}

/// How loading the cached generations (at start, or a suite on demand)
/// got the pool maps of their indices, since the cacher started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadStats {
    /// Read from the sidecar stored with the index (pool_store.rs).
    pub pool_maps_read: u64,
    /// Parsed from the index itself (no usable sidecar).
    pub indices_parsed: u64,
}

/// Marks the start-up load done when dropped (also if it ends early).
pub(crate) struct Done<'a>(&'a Startup);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0 .0.send_replace(true);
    }
}

impl Startup {
    pub(crate) fn guard(&self) -> Done<'_> {
        Done(self)
    }
}

impl Generations {
    /// True once every suite on disk was loaded at start.
    pub fn startup_loaded(&self) -> bool {
        *self.startup.0.borrow()
    }

    /// How the cached generations' pool maps were read so far.
    pub fn load_stats(&self) -> LoadStats {
        let c = &self.startup.1;
        LoadStats {
            pool_maps_read: c.maps_read.load(Ordering::Relaxed),
            indices_parsed: c.parsed.load(Ordering::Relaxed),
        }
    }

    /// Waits until the start-up load is done, at most `limit`; true when it is.
    pub async fn wait_startup(&self, limit: Duration) -> bool {
        if self.startup_loaded() {
            return true;
        }
        let mut rx = self.startup.0.subscribe();
        let done = tokio::time::timeout(limit, rx.wait_for(|done| *done))
            .await
            .is_ok_and(|r| r.is_ok());
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_the_load_bounded() {
        let s = Startup::default();
        let mut rx = s.0.subscribe();
        assert!(!*rx.borrow());
        let waiter = tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|d| *d))
                .await
                .is_ok()
        });
        drop(s.guard());
        assert!(waiter.await.unwrap());
        assert!(*s.0.borrow());
    }
}
