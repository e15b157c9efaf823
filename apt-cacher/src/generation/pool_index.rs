//! Finding a pool file's checksums with one hash lookup, whatever the
//! number of suites and generations: the index of every generation's pool
//! maps ([`super::pool_map`] reads them from the indices).
//!
//! [`PoolIndex`] keys each pool path (with its mapping) by a keyed hash
//! and keeps, per key, which generations' index maps list it (each map
//! is shared, not copied: the index adds a few words per path, not the
//! paths again). A generation registers an index's map when it gains it
//! and unregisters all of its maps when it is dropped (replaced and out of
//! its grace period, or never published). When several generations list a
//! path, the newest wins: a suite's current generation before those still
//! in their grace period.

use super::pool_entry::PoolMap;
use super::*;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// One index's pool entries, as held by one generation.
#[derive(Debug, Clone)]
struct Slot {
    /// The generation's [`PoolIndex::next_uid`] number (newer: larger).
    uid: u64,
    mapping: usize,
    map: PoolMap,
}

/// The slots under one key: nearly always one.
#[derive(Debug)]
enum Slots {
    One(Slot),
    Many(Vec<Slot>),
}

impl Slots {
    fn iter(&self) -> std::slice::Iter<'_, Slot> {
        match self {
            Slots::One(s) => std::slice::from_ref(s).iter(),
            Slots::Many(v) => v.iter(),
        }
    }

    fn push(&mut self, slot: Slot) {
        match self {
            Slots::One(s) => *self = Slots::Many(vec![s.clone(), slot]),
            Slots::Many(v) => v.push(slot),
        }
    }

    /// Drops the slots of `uid` holding `map`; true when none is left.
    fn remove(&mut self, uid: u64, map: &PoolMap) -> bool {
        let gone = |s: &Slot| s.uid == uid && Arc::ptr_eq(&s.map, map);
        match self {
            Slots::One(s) => gone(s),
            Slots::Many(v) => {
                v.retain(|s| !gone(s));
                match v.len() {
                    0 => true,
                    1 => {
                        let last = v.remove(0);
                        *self = Slots::One(last);
                        false
                    }
                    _ => false,
                }
            }
        }
    }
}

/// Pool path → the generations' index maps that list it (see the module
/// documentation).
#[derive(Debug, Default)]
pub(crate) struct PoolIndex {
    hasher: std::collections::hash_map::RandomState,
    next_uid: AtomicU64,
    slots: RwLock<HashMap<u64, Slots>>,
}

impl PoolIndex {
    /// A number for a new generation (newer generations get larger ones).
    pub(super) fn uid(&self) -> u64 {
        self.next_uid.fetch_add(1, Ordering::Relaxed)
    }

    fn key(&self, mapping: usize, path: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        mapping.hash(&mut h);
        path.hash(&mut h);
        h.finish()
    }

    /// Registers the map of one index of generation `uid` of `mapping`.
    pub(super) fn register(&self, uid: u64, mapping: usize, map: &PoolMap) {
        let keys: Vec<u64> = map.keys().map(|p| self.key(mapping, p.as_ref())).collect();
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            let slot = Slot {
                uid,
                mapping,
                map: map.clone(),
            };
            match slots.get_mut(&k) {
                Some(s) => s.push(slot),
                None => {
                    slots.insert(k, Slots::One(slot));
                }
            }
        }
    }

    /// Unregisters a map [`Self::register`] registered.
    pub(super) fn unregister(&self, uid: u64, mapping: usize, map: &PoolMap) {
        let keys: Vec<u64> = map.keys().map(|p| self.key(mapping, p.as_ref())).collect();
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            if slots.get_mut(&k).is_some_and(|s| s.remove(uid, map)) {
                slots.remove(&k);
            }
        }
    }

    /// The checksums the newest generation of `mapping` listing `path` gives.
    pub(super) fn get(&self, mapping: usize, path: &str) -> Option<Checksums> {
        let k = self.key(mapping, path);
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        slots
            .get(&k)?
            .iter()
            .filter(|s| s.mapping == mapping)
            .filter_map(|s| Some((s.uid, s.map.get(path)?)))
            .max_by_key(|(uid, _)| *uid)
            .map(|(_, e)| e.checksums())
    }

    /// True when any generation of `mapping` lists `path` with content
    /// tag `tag` (a storage key's last part, [`crate::cache::key::tag`]):
    /// the newest and those still in their grace period alike.
    pub(super) fn lists(&self, mapping: usize, path: &str, tag: &str) -> bool {
        let k = self.key(mapping, path);
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        slots.get(&k).is_some_and(|s| {
            s.iter()
                .filter(|s| s.mapping == mapping)
                .filter_map(|s| s.map.get(path))
                .any(|e| crate::cache::key::tag(&e.checksums()) == tag)
        })
    }

    /// How many index maps a lookup of `path` looks into (tests: one per
    /// generation that lists it, whatever else is registered).
    #[cfg(test)]
    fn probes(&self, mapping: usize, path: &str) -> usize {
        let k = self.key(mapping, path);
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        slots.get(&k).map_or(0, |s| s.iter().count())
    }

    /// How many pool paths are registered (over all mappings).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(paths: &[(&str, u64)]) -> PoolMap {
        Arc::new(
            paths
                .iter()
                .map(|(p, size)| {
                    let cs = Checksums {
                        size: *size,
                        sha256: Some([1; 32]),
                        ..Default::default()
                    };
                    let entry = super::super::pool_entry::PoolEntry::new(&cs).unwrap();
                    (Box::<str>::from(*p), entry)
                })
                .collect(),
        )
    }

    /// Thousands of generations registered (as many suites would bring):
    /// a lookup still looks into only the maps that list the path.
    #[test]
    fn lookups_do_not_walk_generations() {
        let index = PoolIndex::default();
        let mut held = Vec::new();
        for i in 0..5_000u64 {
            let m = map(&[(&format!("pool/main/x/x{i}_1_amd64.deb"), i)]);
            index.register(index.uid(), 0, &m);
            held.push(m);
        }
        let target = map(&[("pool/main/a/a_1_amd64.deb", 7)]);
        let uid = index.uid();
        index.register(uid, 0, &target);
        assert_eq!(index.probes(0, "pool/main/a/a_1_amd64.deb"), 1);
        assert_eq!(index.get(0, "pool/main/a/a_1_amd64.deb").unwrap().size, 7);
        assert_eq!(index.get(1, "pool/main/a/a_1_amd64.deb"), None);
        assert_eq!(index.get(0, "pool/main/b/b_1_amd64.deb"), None);
        index.unregister(uid, 0, &target);
        assert_eq!(index.get(0, "pool/main/a/a_1_amd64.deb"), None);
        assert_eq!(index.len(), 5_000);
    }

    #[test]
    fn newest_generation_wins_and_sharing_is_counted() {
        let index = PoolIndex::default();
        let old = map(&[("pool/p.deb", 1), ("pool/q.deb", 1)]);
        let new = map(&[("pool/p.deb", 2)]);
        let (u1, u2, u3) = (index.uid(), index.uid(), index.uid());
        index.register(u1, 0, &old);
        index.register(u2, 0, &new);
        // A map carried into a third generation (shared, not copied).
        index.register(u3, 0, &old);
        assert_eq!(index.get(0, "pool/p.deb").unwrap().size, 1);
        index.unregister(u3, 0, &old);
        assert_eq!(index.get(0, "pool/p.deb").unwrap().size, 2);
        assert_eq!(index.get(0, "pool/q.deb").unwrap().size, 1);
        index.unregister(u1, 0, &old);
        assert_eq!(index.get(0, "pool/q.deb"), None);
        index.unregister(u2, 0, &new);
        assert_eq!(index.len(), 0);
    }
}
