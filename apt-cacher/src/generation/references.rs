//! What the retention sweeper ([`crate::cache::retention`]) asks of the
//! metadata: is a cached file (mapping prefix, repository path, content
//! tag) still referenced by a kept generation, the current one of a suite
//! or one in its grace period? One lookup in the [`PoolIndex`], which holds
//! exactly the pool maps of the generations alive. And is the metadata
//! ready to say so: not before [`Generations::load_all`] has loaded every
//! suite on disk, nor while a suite is being loaded.

use super::*;
use crate::cache::retention::References;

impl References for Generations {
    fn ready(&self) -> bool {
        if !self.startup_loaded() {
            return false;
        }
        let suites = self.suites.lock().unwrap_or_else(|e| e.into_inner());
        suites.values().all(|s| s.state().loaded)
    }

    fn references(&self, prefix: &str, path: &str, tag: &str) -> bool {
        let Some(mapping) = self
            .router
            .mappings()
            .iter()
            .position(|m| m.prefix == prefix)
        else {
            // A mapping no longer configured: nothing references its files.
            return false;
        };
        self.pool_index.lists(mapping, path, tag)
    }
}

#[cfg(test)]
mod tests {
    use super::super::pool_entry::PoolEntry;
    use super::*;
    use crate::cache::retention::Sweeper;
    use crate::cache::Storage;
    use std::io::Write;

    /// The pool index of mapping `m` (prefix "m"), always ready.
    #[derive(Debug, Default)]
    struct Refs(PoolIndex);

    impl References for Refs {
        fn ready(&self) -> bool {
            true
        }
        fn references(&self, prefix: &str, path: &str, tag: &str) -> bool {
            prefix == "m" && self.0.lists(0, path, tag)
        }
    }

    fn cs(data: &[u8]) -> Checksums {
        Checksums::of_bytes(data)
    }

    fn map(files: &[(&str, &[u8])]) -> PoolMap {
        Arc::new(
            files
                .iter()
                .map(|(p, d)| (Box::<str>::from(*p), PoolEntry::new(&cs(d)).unwrap()))
                .collect(),
        )
    }

    fn put(store: &Storage, path: &str, data: &[u8]) -> String {
        let key = format!("m/{path}#{}", crate::cache::key::tag(&cs(data)));
        let (mut f, tp) = store.temp_file().unwrap();
        f.write_all(data).unwrap();
        store.insert(&key, tp, data.len() as u64).unwrap();
        key
    }

    /// Three generations' pool maps, the first dropped: what only it lists
    /// goes after the retention (not before), what a kept one lists (same
    /// path and digest) stays, a file of the same path with other bytes
    /// goes, as do files of a mapping no longer configured; unverified
    /// files keep their own lifetime.
    #[test]
    fn sweeper_removes_only_what_no_kept_generation_lists() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        let store = Arc::new(Storage::open(dir.path(), 1 << 20, metrics.clone()).unwrap());
        let refs = Arc::new(Refs::default());
        let (v1, v2, v3) = (
            b"hello 1".as_slice(),
            b"hello 22".as_slice(),
            b"hello 333".as_slice(),
        );
        let same = b"data-all".as_slice();
        let g1 = map(&[("pool/h_1.deb", v1), ("pool/d.deb", same)]);
        let g2 = map(&[("pool/h_2.deb", v2), ("pool/d.deb", same)]);
        let g3 = map(&[("pool/h_3.deb", v3), ("pool/d.deb", same)]);
        let (u1, u2, u3) = (refs.0.uid(), refs.0.uid(), refs.0.uid());
        refs.0.register(u1, 0, &g1);
        refs.0.register(u2, 0, &g2);
        refs.0.register(u3, 0, &g3);
        let k1 = put(&store, "pool/h_1.deb", v1);
        let k2 = put(&store, "pool/h_2.deb", v2);
        let k3 = put(&store, "pool/h_3.deb", v3);
        let kd = put(&store, "pool/d.deb", same);
        // Same path as a listed file, other bytes: not what any index lists.
        let odd = put(&store, "pool/h_3.deb", b"forged");
        let other = "n/pool/x.deb#s1";
        let unverified = "m/pool/u.deb#u";
        for k in [other, unverified] {
            let (mut f, tp) = store.temp_file().unwrap();
            f.write_all(b"x").unwrap();
            store.insert(k, tp, 1).unwrap();
        }
        let retention = Duration::from_secs(60);
        let sweeper = Sweeper::new(store.clone(), refs.clone(), metrics.clone(), retention);
        let t0 = Instant::now();
        sweeper.sweep(t0);
        // Generation 1 leaves (grace over): only h_1 is now unreferenced.
        refs.0.unregister(u1, 0, &g1);
        sweeper.sweep(t0 + Duration::from_secs(1));
        let g = metrics.reclaimable();
        let odd_size = b"forged".len() as u64;
        assert_eq!(g, (3, v1.len() as u64 + odd_size + 1), "h_1, forged, other");
        // Not yet: the retention counts from the first pass that saw it.
        sweeper.sweep(t0 + Duration::from_secs(60));
        assert!(store.get(&k1).is_some());
        // The forged one and the other mapping's were unreferenced since t0.
        assert!(!dir.path().join(&odd).exists() && !dir.path().join(other).exists());
        sweeper.sweep(t0 + Duration::from_secs(61));
        assert!(
            !dir.path().join(&k1).exists(),
            "removed after its retention"
        );
        for k in [&k2, &k3, &kd] {
            assert!(store.get(k).is_some(), "{k} is referenced");
        }
        assert!(store.get(unverified).is_some(), "unverified: own ttl");
        let c = metrics.counters();
        assert_eq!(c.retention_reclaimed_files, 3);
        assert_eq!(c.retention_reclaimed_bytes, v1.len() as u64 + odd_size + 1);
        assert_eq!(metrics.reclaimable(), (0, 0));
    }
}
