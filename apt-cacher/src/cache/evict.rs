//! Least-recently-used accounting of the storage: each key's size and last
//! use, the total, and which keys to evict to fit a capacity. Memory only:
//! the storage rebuilds it from the files at start.

use std::collections::{BTreeMap, HashMap};

/// Sizes and use order of the stored files.
#[derive(Debug, Default)]
pub(super) struct Lru {
    entries: HashMap<String, Entry>,
    by_use: BTreeMap<u64, String>,
    clock: u64,
    total: u64,
    /// The last tick given by [`Self::insert_found`].
    found: u64,
}

/// Ticks below this are the start-up scan's ([`Lru::insert_found`]); more
/// files than this is not a cache on one disk.
pub(super) const BACKGROUND_BASE: u64 = 1 << 48;

#[derive(Debug, Clone, Copy)]
struct Entry {
    size: u64,
    tick: u64,
}

impl Lru {
    /// Marks `key` used; false when it is not stored.
    pub(super) fn touch(&mut self, key: &str) -> bool {
        let Some(e) = self.entries.get_mut(key) else {
            return false;
        };
        self.by_use.remove(&e.tick);
        self.clock += 1;
        e.tick = self.clock;
        self.by_use.insert(self.clock, key.to_string());
        true
    }

    /// Adds (or replaces) `key` of `size` bytes as the most recently used.
    pub(super) fn insert(&mut self, key: String, size: u64) {
        self.remove(&key);
        self.clock += 1;
        self.by_use.insert(self.clock, key.clone());
        self.entries.insert(
            key,
            Entry {
                size,
                tick: self.clock,
            },
        );
        self.total += size;
    }

    /// Adds `key` of `size` bytes as used before every key added with
    /// [`Self::insert`] (a file found on disk by the start-up scan, which may
    /// end after new downloads came in); nothing when `key` is known
    /// already. Calls come oldest first; [`BACKGROUND_BASE`] keeps their
    /// ticks below those of [`Self::insert`].
    pub(super) fn insert_found(&mut self, key: String, size: u64) {
        if self.entries.contains_key(&key) {
            return;
        }
        self.found += 1;
        let tick = self.found;
        self.by_use.insert(tick, key.clone());
        self.entries.insert(key, Entry { size, tick });
        self.total += size;
    }

    /// An empty LRU whose [`Self::insert`] ticks start above
    /// [`BACKGROUND_BASE`], so that a scan in the background can add the
    /// files already on disk below them ([`Self::insert_found`]).
    pub(super) fn for_background_scan() -> Lru {
        Lru {
            clock: BACKGROUND_BASE,
            ..Lru::default()
        }
    }

    /// Forgets `key`; false when it was not stored.
    pub(super) fn remove(&mut self, key: &str) -> bool {
        let Some(e) = self.entries.remove(key) else {
            return false;
        };
        self.by_use.remove(&e.tick);
        self.total -= e.size;
        true
    }

    /// Number of keys.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Total size in bytes.
    pub(super) fn total(&self) -> u64 {
        self.total
    }

    /// Forgets the least recently used key; it and its size.
    pub(super) fn pop_oldest(&mut self) -> Option<(String, u64)> {
        let (_, key) = self.by_use.pop_first()?;
        let e = self.entries.remove(&key)?;
        self.total -= e.size;
        Some((key, e.size))
    }

    /// Up to `n` keys used after tick `after`, oldest use first: (key, size,
    /// tick). A key used again meanwhile moves past the cursor, so a walk
    /// in chunks misses none.
    pub(super) fn after(&self, after: u64, n: usize) -> Vec<(String, u64, u64)> {
        self.by_use
            .range(after.saturating_add(1)..)
            .take(n)
            .filter_map(|(tick, key)| Some((key.clone(), self.entries.get(key)?.size, *tick)))
            .collect()
    }

    /// The size of `key`, if stored.
    pub(super) fn size_of(&self, key: &str) -> Option<u64> {
        self.entries.get(key).map(|e| e.size)
    }

    /// The tick of `key`'s last use, if stored.
    pub(super) fn tick_of(&self, key: &str) -> Option<u64> {
        self.entries.get(key).map(|e| e.tick)
    }

    /// Forgets least-recently-used keys until the total fits `capacity`;
    /// the keys forgotten (their files are to be removed).
    pub(super) fn over(&mut self, capacity: u64) -> Vec<String> {
        let mut victims = Vec::new();
        while self.total > capacity {
            let Some((_, key)) = self.by_use.pop_first() else {
                break;
            };
            if let Some(e) = self.entries.remove(&key) {
                self.total -= e.size;
            }
            victims.push(key);
        }
        victims
    }
}
