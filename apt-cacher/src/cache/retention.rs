//! The retention sweeper: a cache that cleans itself. A verified file in
//! `cache_dir` that no kept generation references (the current one of each
//! suite and those still in their grace period) is removed once it has been
//! unreferenced for `retention`: superseded pool versions, and whatever a
//! suite that no longer lists it (or that was dropped) left behind.
//! `cache_capacity` stays the hard LRU bound; unverified (`#u`) files keep
//! their own `unverified_ttl` and are not looked at here.
//!
//! The sweeper walks the storage's in-memory index (never the disk) in
//! chunks of [`CHUNK`] keys, in use order, each chunk on a blocking thread,
//! one pass every [`Sweeper::period`]; nothing of it is on the request path.
//! For each key it asks the metadata ([`References`]) whether a kept
//! generation lists that (mapping, path, digest).
//!
//! *Unreferenced since* is the time of the first pass that found the key
//! unreferenced, when every later pass found it unreferenced too (a pass
//! that finds it referenced forgets it). It is kept in memory only: a
//! restart starts every clock again, so a restart only ever keeps files
//! longer, never removes one early. A file is removed by unlinking it, and
//! only if it was not used since the chunk read it (a request that was
//! served it keeps it); clients reading it keep their open descriptor.
//!
//! The sweeper starts only once the metadata says every suite on disk is
//! loaded ([`References::ready`]): before that, nothing is known to be
//! unreferenced.

use super::key::split_key;
use super::storage::Storage;
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Keys looked at per chunk (one short hold of the storage's lock each).
pub const CHUNK: usize = 512;

/// What the sweeper asks of the metadata.
pub trait References: Send + Sync + std::fmt::Debug {
    /// True once every suite on disk is loaded: until then no file is
    /// known to be unreferenced, and the sweeper waits.
    fn ready(&self) -> bool;
    /// True when a kept generation of the mapping with `prefix` lists
    /// repository path `path` with content tag `tag` (see
    /// [`super::key::tag`]).
    fn references(&self, prefix: &str, path: &str, tag: &str) -> bool;
}

/// An unreferenced file waiting for its retention to pass.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    since: Instant,
    size: u64,
    /// The last pass that saw it.
    pass: u64,
}

#[derive(Debug, Default)]
struct State {
    waiting: HashMap<String, Waiting>,
    pass: u64,
    /// The use tick the next chunk starts after.
    cursor: u64,
}

/// The retention sweeper of one cacher (see the module documentation).
#[derive(Debug)]
pub struct Sweeper {
    store: Arc<Storage>,
    refs: Arc<dyn References>,
    metrics: Arc<Metrics>,
    retention: Duration,
    state: Mutex<State>,
}

impl Sweeper {
    /// A sweeper removing from `store` what `refs` no longer references,
    /// after `retention`; figures go to `metrics`.
    pub fn new(
        store: Arc<Storage>,
        refs: Arc<dyn References>,
        metrics: Arc<Metrics>,
        retention: Duration,
    ) -> Sweeper {
        Sweeper {
            store,
            refs,
            metrics,
            retention,
            state: Mutex::new(State::default()),
        }
    }

    /// The time between passes: an eighth of `retention`, between 100 ms
    /// and 10 minutes (a file is removed at most that much after its
    /// retention passed).
    pub fn period(retention: Duration) -> Duration {
        (retention / 8).clamp(Duration::from_millis(100), Duration::from_secs(600))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin_pass(&self) {
        let mut st = self.lock();
        st.pass += 1;
        st.cursor = 0;
    }

    /// Sweeps the next chunk of the pass at time `now`; false when the pass
    /// is over (the reclaimable figures are then published). Blocking.
    fn chunk(&self, now: Instant) -> bool {
        let mut st = self.lock();
        let keys = self.store.verified_after(st.cursor, CHUNK);
        let Some(last) = keys.last().map(|(_, _, tick)| *tick) else {
            let pass = st.pass;
            st.waiting.retain(|_, w| w.pass == pass);
            let (files, bytes) = st
                .waiting
                .values()
                .fold((0u64, 0u64), |(f, b), w| (f + 1, b.saturating_add(w.size)));
            self.metrics.retention_reclaimable(files, bytes);
            return false;
        };
        st.cursor = last;
        let pass = st.pass;
        let (mut files, mut bytes) = (0u64, 0u64);
        for (key, size, tick) in keys {
            let referenced = split_key(&key)
                .is_some_and(|(prefix, path, tag)| self.refs.references(prefix, path, tag));
            if referenced {
                st.waiting.remove(&key);
                continue;
            }
            let w = st.waiting.entry(key.clone()).or_insert(Waiting {
                since: now,
                size,
                pass,
            });
            w.pass = pass;
            w.size = size;
            if now.saturating_duration_since(w.since) < self.retention {
                continue;
            }
            if let Some(freed) = self.store.remove_unused(&key, tick) {
                tracing::debug!(key = %key, bytes = freed, "retention: unreferenced file removed");
                st.waiting.remove(&key);
                files += 1;
                bytes = bytes.saturating_add(freed);
            }
        }
        if files > 0 {
            tracing::info!(
                files,
                bytes,
                retention_secs = self.retention.as_secs(),
                "retention: removed files no kept generation references"
            );
            self.metrics.retention_removed(files, bytes);
        }
        true
    }

    /// One whole pass at time `now`, chunk after chunk. Blocking.
    pub fn sweep(&self, now: Instant) {
        self.begin_pass();
        while self.chunk(now) {}
    }

    /// Sweeps every [`Sweeper::period`] until `shutdown`, once the
    /// metadata is ready.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        while !self.refs.ready() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        let mut tick = tokio::time::interval(Self::period(self.retention));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            // A suite being loaded (new, or again): nothing is decided now.
            if !self.refs.ready() {
                continue;
            }
            self.begin_pass();
            while self.refs.ready() {
                let me = self.clone();
                let more = tokio::task::spawn_blocking(move || me.chunk(Instant::now()))
                    .await
                    .unwrap_or(false);
                if !more || shutdown.is_cancelled() {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Metadata that references nothing, ready when told.
    #[derive(Debug, Default)]
    struct Nothing(AtomicBool);

    impl References for Nothing {
        fn ready(&self) -> bool {
            self.0.load(Ordering::Relaxed)
        }
        fn references(&self, _: &str, _: &str, _: &str) -> bool {
            false
        }
    }

    /// Before the generations are loaded nothing is known to be
    /// unreferenced: even with a retention of 0 no file goes until the
    /// metadata is ready; then it goes, and the sweeper stops on shutdown.
    #[tokio::test]
    async fn nothing_is_removed_before_the_metadata_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        let store = Arc::new(Storage::open(dir.path(), 1 << 20, metrics.clone()).unwrap());
        let (mut f, tp) = store.temp_file().unwrap();
        f.write_all(b"1234").unwrap();
        store.insert("m/pool/a.deb#s4", tp, 4).unwrap();
        let refs = Arc::new(Nothing::default());
        let sweeper = Arc::new(Sweeper::new(
            store.clone(),
            refs.clone(),
            metrics.clone(),
            Duration::ZERO,
        ));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(sweeper.run(shutdown.clone()));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(store.usage(), (1, 4), "removed before the load");
        refs.0.store(true, Ordering::Relaxed);
        for _ in 0..50 {
            if store.usage().0 == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(store.usage(), (0, 0));
        assert!(!dir.path().join("m/pool/a.deb#s4").exists());
        assert_eq!(metrics.counters().retention_reclaimed_bytes, 4);
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the sweeper stops on shutdown")
            .unwrap();
    }
}
