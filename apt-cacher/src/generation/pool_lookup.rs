//! Which index should list this pool file? A client that keeps its indices
//! up to date with PDiffs (or that fetched them before the cacher had any)
//! asks for pool files whose index the cacher never loaded. Rather than
//! caching such a file unverified, the cacher loads, from each served
//! suite's current generation, the indices that would list the file
//! (verified against the Release, exactly as a client's request for them
//! would be, into the same generation) and then looks again.
//!
//! The candidates come from the path: `pool/<component>/…/<name>_<ver>_<arch>.deb`
//! (or `.udeb`) → `<component>/binary-<arch>/Packages` (for `_all`,
//! `binary-all` when listed, else any one `binary-*`, which all list it;
//! `debian-installer/binary-<arch>` for `.udeb`);
//! `.dsc`, `.tar.*`, `.diff.gz` → `<component>/source/Sources`; a flat
//! repository's top-level `Packages` / `Sources` for anything. Only indices
//! the Release lists are candidates (bounded by what it lists for that
//! component), one compression each (the best one listed, or the one the
//! generation already holds, in which case there is nothing to load),
//! loaded one after the other until one lists the file, at most
//! [`MAX_LOADS`] for one file.
//! Concurrent lookups share one download per index (the downloads table
//! coalesces by key), and an index that failed is not tried again for a
//! while ([`FailedLookups`]).
//!
//! When such an index cannot be loaded (upstream failing, bytes that do not
//! verify), whether the file is listed is unknown ([`Lookup::Undecided`]):
//! it is then passed through without being cached, so that nothing
//! unverified lands in the cache on account of an upstream hiccup (apt
//! still checks the bytes against its own index).

use super::{Gen, Generations, Meta};
pub use crate::cache::key::Lookup;
use aptindex::checksum::Checksums;
use aptindex::compress::Compression;
use aptindex::release::Release;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Compression suffixes in order of preference for a lookup's download
/// (smallest first; plain last).
const PREFERENCE: [&str; 6] = [".xz", ".zst", ".gz", ".bz2", ".lzma", ""];
/// At most this many failures are remembered (older ones are dropped first).
const MAX_FAILED: usize = 10_000;
/// At most this many indices are loaded on behalf of one pool file (over
/// all suites of its mapping): one request cannot make the cacher fetch
/// every index of every suite.
const MAX_LOADS: usize = 4;

/// Indices that failed to load on behalf of a pool file, by
/// `mapping/suite/generation/index`, with when: not retried before the
/// cacher's `cache_period` has passed.
#[derive(Debug, Default)]
pub struct FailedLookups(Mutex<HashMap<String, Instant>>);

impl FailedLookups {
    fn recent(&self, key: &str, period: std::time::Duration) -> bool {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key).is_some_and(|t| t.elapsed() < period)
    }

    fn remember(&self, key: String, period: std::time::Duration) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_FAILED {
            map.retain(|_, t| t.elapsed() < period);
            if map.len() >= MAX_FAILED {
                map.clear();
            }
        }
        map.insert(key, Instant::now());
    }
}

/// What a pool path says about the index that lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Wanted {
    /// A binary package of `arch` (`all`: any), `.udeb` when `installer`.
    Binary { arch: String, installer: bool },
    /// A source package file.
    Source,
}

/// Classifies a file name (the last path component).
fn wanted(name: &str) -> Option<Wanted> {
    for (ext, installer) in [(".deb", false), (".udeb", true)] {
        if let Some(stem) = name.strip_suffix(ext) {
            let arch = stem.rsplit_once('_')?.1;
            if arch.is_empty() {
                return None;
            }
            return Some(Wanted::Binary {
                arch: arch.to_string(),
                installer,
            });
        }
    }
    let source = name.ends_with(".dsc")
        || name.ends_with(".diff.gz")
        || name.rsplit_once(".tar").is_some_and(|(stem, rest)| {
            !stem.is_empty() && (rest.is_empty() || rest.starts_with('.'))
        });
    source.then_some(Wanted::Source)
}

/// True when the Release component `comp` may hold `path`
/// (`pool/<comp>/…`, or `pool/<last part of comp>/…` for `updates/main`).
fn in_component(path: &str, comp: &str) -> bool {
    let last = comp.rsplit('/').next().unwrap_or(comp);
    [comp, last].iter().any(|c| {
        !c.is_empty()
            && path
                .strip_prefix("pool/")
                .and_then(|p| p.strip_prefix(*c))
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The index (base name, compression removed, relative to the suite
/// directory) that Release entry `rel` is, if it could list `want` at `path`.
fn candidate_base<'a>(rel: &'a str, path: &str, want: &Wanted) -> Option<&'a str> {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let base = Compression::from_path(name).strip(rel);
    let dir = base.rsplit_once('/').map_or("", |(d, _)| d);
    let file = base.rsplit('/').next().unwrap_or(base);
    let fits = match want {
        Wanted::Source => {
            file == "Sources"
                && (dir.is_empty()
                    || dir
                        .strip_suffix("/source")
                        .is_some_and(|comp| in_component(path, comp)))
        }
        Wanted::Binary { arch, installer } => {
            file == "Packages"
                && (dir.is_empty() || {
                    let (comp_dir, binary) = dir.rsplit_once('/').unwrap_or(("", dir));
                    let comp = if *installer {
                        comp_dir.strip_suffix("/debian-installer")
                    } else {
                        Some(comp_dir).filter(|c| !c.ends_with("/debian-installer"))
                    };
                    let arch_ok = binary
                        .strip_prefix("binary-")
                        .is_some_and(|a| arch == "all" || a == arch);
                    arch_ok && comp.is_some_and(|c| in_component(path, c))
                })
        }
    };
    fits.then_some(base)
}

/// The indices of `release` that should list `path`: for each, the entry to
/// load (the best compression listed) and its checksums, unless `has` says
/// the generation already holds one of its compressions (then it was parsed
/// and does not list `path`).
fn candidates(
    release: &Release,
    path: &str,
    has: impl Fn(&str) -> bool,
) -> Vec<(String, Checksums)> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some(want) = wanted(name) else {
        return Vec::new();
    };
    // base → the listed compressions of it.
    let mut bases: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for rel in release.entries.keys() {
        if let Some(base) = candidate_base(rel, path, &want) {
            bases.entry(base).or_default().push(rel.as_str());
        }
    }
    // An `_all` package is listed by `binary-all` when the Release has it,
    // otherwise by every `binary-*` alike: one index decides, never all of
    // them (a made-up `_all` name must not load every architecture).
    if matches!(&want, Wanted::Binary { arch, .. } if arch == "all") {
        let all = bases
            .keys()
            .find(|b| b.ends_with("binary-all/Packages"))
            .copied();
        let decided = match all {
            Some(all) => bases.get(all).is_some_and(|r| r.iter().any(|r| has(r))),
            None => bases.values().flatten().any(|r| has(r)),
        };
        let keep = if decided {
            None
        } else {
            all.or_else(|| bases.keys().next().copied())
        };
        bases.retain(|b, _| Some(*b) == keep);
    }
    let mut out = Vec::new();
    for (base, rels) in bases {
        if rels.iter().any(|r| has(r)) {
            continue;
        }
        let best = PREFERENCE.iter().find_map(|ext| {
            let rel = format!("{base}{ext}");
            rels.contains(&rel.as_str()).then_some(rel)
        });
        if let Some(rel) = best {
            if let Some(cs) = release.entries.get(&rel) {
                if crate::mapping::safe_path(&rel) {
                    out.push((rel, cs.clone()));
                }
            }
        }
    }
    out
}

impl Generations {
    /// What the indices of `mapping` say about `path`, loading those that
    /// should list it when no loaded one does (see the module documentation).
    pub async fn lookup(&self, mapping: usize, path: &str) -> Lookup {
        // Right after a start: no miss because a suite is not loaded yet.
        if !self.wait_startup(super::STARTUP_WAIT).await {
            tracing::warn!(pool_file = %path, "the cached metadata is still loading; looking up without it");
        }
        if let Some(cs) = self.expected(mapping, path) {
            return Lookup::Listed(cs);
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        if wanted(name).is_none() {
            return Lookup::Unlisted;
        }
        let mut loaded_any = false;
        let mut failed_any = false;
        let mut budget = MAX_LOADS;
        let suites = self.served_suites(mapping).await;
        // Right after a start, loading the suites from disk (which this
        // waited for) may have brought the index that lists it.
        if let Some(cs) = self.expected(mapping, path) {
            return Lookup::Listed(cs);
        }
        for suite in suites {
            let Some(gen) = suite.current() else { continue };
            for (rel, cs) in candidates(&gen.release, path, |r| gen.has(r)) {
                if budget == 0 {
                    // Not decided within the bound: like a failed load.
                    failed_any = true;
                    break;
                }
                budget -= 1;
                let key = format!("{mapping}/{}/{}/{rel}", suite.dir, gen.id);
                if self.failed_lookups.recent(&key, self.retry) {
                    failed_any = true;
                    continue;
                }
                if self.load_for(&suite, &gen, &rel, cs, path).await {
                    // One at a time, stopping at the first that lists it
                    // (an `_all` package is usually in every `binary-*`).
                    if let Some(cs) = self.expected(mapping, path) {
                        return Lookup::Listed(cs);
                    }
                    loaded_any = true;
                } else {
                    failed_any = true;
                    self.failed_lookups.remember(key, self.retry);
                }
            }
        }
        match loaded_any.then(|| self.expected(mapping, path)).flatten() {
            Some(cs) => Lookup::Listed(cs),
            None if failed_any => Lookup::Undecided,
            None => Lookup::Unlisted,
        }
    }

    /// Loads index `rel` into `gen` on behalf of pool file `path`; true when it is there.
    async fn load_for(
        &self,
        suite: &Arc<super::Suite>,
        gen: &Arc<Gen>,
        rel: &str,
        cs: Checksums,
        path: &str,
    ) -> bool {
        let prefix = self.prefix(suite.mapping).to_string();
        let index = aptindex::path::join(&suite.dir, rel);
        match self.gen_file(suite, gen.clone(), rel, cs) {
            Ok(Meta::File(_)) => true,
            Ok(Meta::Fetching { source, joined }) => {
                if !joined {
                    tracing::info!(mapping = %prefix, index = %index, generation = gen.id, pool_file = %path, "loading an index on behalf of a pool file no loaded index lists");
                }
                match source.finished().await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(mapping = %prefix, index = %index, pool_file = %path, error = %e, "cannot load the index that should list a pool file");
                        false
                    }
                }
            }
            Err(e) => {
                tracing::warn!(mapping = %prefix, index = %index, pool_file = %path, error = %e, "cannot load the index that should list a pool file");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(entries: &[&str]) -> Release {
        let mut r = Release::default();
        for (i, e) in entries.iter().enumerate() {
            r.entries.insert(
                e.to_string(),
                Checksums {
                    size: i as u64 + 1,
                    ..Default::default()
                },
            );
        }
        r
    }

    fn names(v: Vec<(String, Checksums)>) -> Vec<String> {
        v.into_iter().map(|(r, _)| r).collect()
    }

    #[test]
    fn file_names() {
        assert_eq!(
            wanted("hello_2.10-3_amd64.deb"),
            Some(Wanted::Binary {
                arch: "amd64".into(),
                installer: false
            })
        );
        assert_eq!(
            wanted("di_1_arm64.udeb"),
            Some(Wanted::Binary {
                arch: "arm64".into(),
                installer: true
            })
        );
        for s in [
            "hello_2.10-3.dsc",
            "hello_2.10.orig.tar.gz",
            "hello_2.10-3.debian.tar.xz",
            "hello_1.0-1.diff.gz",
            "x_1.tar",
        ] {
            assert_eq!(wanted(s), Some(Wanted::Source), "{s}");
        }
        for s in [
            "README",
            "x.deb",
            "_.deb",
            "hello_1_.deb",
            ".tar.gz",
            "a.tarball",
        ] {
            assert_eq!(wanted(s), None, "{s}");
        }
    }

    #[test]
    fn binary_candidates() {
        let r = release(&[
            "main/binary-amd64/Packages",
            "main/binary-amd64/Packages.gz",
            "main/binary-amd64/Packages.xz",
            "main/binary-arm64/Packages.gz",
            "main/binary-all/Packages.gz",
            "main/debian-installer/binary-amd64/Packages.gz",
            "main/source/Sources.xz",
            "contrib/binary-amd64/Packages.gz",
            "main/i18n/Translation-en.bz2",
            "main/Contents-amd64.gz",
        ]);
        let none = |_: &str| false;
        assert_eq!(
            names(candidates(&r, "pool/main/h/hello/hello_1_amd64.deb", none)),
            ["main/binary-amd64/Packages.xz"]
        );
        // `_all`: `binary-all` decides when the Release lists it, never
        // every architecture; without it, any one `binary-*` (all list it).
        assert_eq!(
            names(candidates(&r, "pool/main/d/data/data_1_all.deb", none)),
            ["main/binary-all/Packages.gz"]
        );
        let held_all = |rel: &str| rel == "main/binary-all/Packages.gz";
        assert!(candidates(&r, "pool/main/d/data/data_1_all.deb", held_all).is_empty());
        let no_all = release(&[
            "main/binary-amd64/Packages.xz",
            "main/binary-arm64/Packages.gz",
        ]);
        assert_eq!(
            names(candidates(&no_all, "pool/main/d/data/data_1_all.deb", none)),
            ["main/binary-amd64/Packages.xz"]
        );
        let held_arm = |rel: &str| rel == "main/binary-arm64/Packages.gz";
        assert!(candidates(&no_all, "pool/main/d/data/data_1_all.deb", held_arm).is_empty());
        assert_eq!(
            names(candidates(&r, "pool/main/d/di/di_1_amd64.udeb", none)),
            ["main/debian-installer/binary-amd64/Packages.gz"]
        );
        assert_eq!(
            names(candidates(&r, "pool/main/h/hello/hello_1.dsc", none)),
            ["main/source/Sources.xz"]
        );
        assert_eq!(
            names(candidates(&r, "pool/contrib/x/x/x_1_amd64.deb", none)),
            ["contrib/binary-amd64/Packages.gz"]
        );
        // Not listed: another component, another architecture, not a package.
        assert!(candidates(&r, "pool/non-free/x/x/x_1_amd64.deb", none).is_empty());
        assert!(candidates(&r, "pool/main/x/x/x_1_i386.deb", none).is_empty());
        assert!(candidates(&r, "pool/main/x/x/README", none).is_empty());
        // Already held (any compression): nothing to load.
        let has = |rel: &str| rel == "main/binary-amd64/Packages.gz";
        assert!(candidates(&r, "pool/main/h/hello/hello_1_amd64.deb", has).is_empty());
    }

    #[test]
    fn flat_and_nested_components() {
        let flat = release(&["Packages", "Packages.gz", "Sources.gz"]);
        let none = |_: &str| false;
        assert_eq!(
            names(candidates(
                &flat,
                "pool/main/r/rootpkg/rootpkg_1.0_amd64.deb",
                none
            )),
            ["Packages.gz"]
        );
        assert_eq!(
            names(candidates(&flat, "rootpkg_1.0.dsc", none)),
            ["Sources.gz"]
        );
        let sec = release(&["updates/main/binary-amd64/Packages.xz"]);
        assert_eq!(
            names(candidates(
                &sec,
                "pool/updates/main/o/o/o_1_amd64.deb",
                none
            )),
            ["updates/main/binary-amd64/Packages.xz"]
        );
        // An unsafe entry is never a candidate.
        let bad = release(&["../binary-amd64/Packages"]);
        assert!(candidates(&bad, "pool/../o_1_amd64.deb", none).is_empty());
    }
}
