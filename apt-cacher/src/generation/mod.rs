//! Consistent metadata generations. For each (mapping, suite directory)
//! the cacher serves one *generation* at a time: the Release files
//! (`InRelease`, `Release`, `Release.gpg`) plus the indices that clients
//! asked for, each verified against that Release.
//!
//! On disk a suite lives in `meta_dir/<prefix>/<suite dir, escaped>/`, with
//! one directory per generation (`gen-<id>`) and a `current` symlink that is
//! swapped atomically (new symlink, rename, fsync) once a new generation is
//! complete. When the upstream Release changes, every index of the current
//! generation is fetched again (by-hash when the Release allows it) and
//! verified against the new Release before the swap; if anything fails, the
//! old generation stays and the refresh is retried later.
//!
//! The previous generations stay available for a grace period: by their
//! by-hash paths to anyone, and by their plain paths to a client (address)
//! that was served their Release shortly before. Indices also feed the map
//! of pool files to expected checksums ([`Generations::expected`]).
//!
//! One concept per file: [`layout`] (on disk), [`gen`] and [`suite`]
//! (state), [`refresh`] (policy), [`fetch`] (a Release tree from upstream),
//! [`publish`] (the atomic swap), [`lookup`] (indices and by-hash),
//! [`revalidate`] (a client's re-check: conditional, shared),
//! [`grace`] (client grace), [`pool_map`] (pool checksums read from the
//! indices, [`pool_entry`] their compact form, [`pool_store`] persisted beside each
//! index for a fast restart, [`pool_index`] one lookup
//! over every generation), [`unknown`] (suites not known yet: no permanent
//! state before a valid Release), [`recovery`] (start and crash recovery),
//! [`references`] (what the retention sweeper asks: is a cached file still
//! referenced), [`idle`] (suites no client asks for are dropped),
//! [`keyrings`] and [`signed`] (a mapping's keyring: only Release files
//! that verify become a generation), [`current`] (the current
//! generations' pool entries, read-only, for `apt-cacher import`),
//! [`startup`] (pool requests wait for the start-up load),
//! [`error`].

pub mod current;
mod error;
mod fetch;
mod gen;
mod grace;
mod idle;
pub mod keyrings;
mod layout;
mod lookup;
pub mod pdiff;
mod pool_entry;
mod pool_index;
pub mod pool_lookup;
mod pool_map;
mod pool_store;
mod publish;
mod recovery;
mod references;
mod refresh;
mod revalidate;
pub mod signed;
mod startup;
mod suite;
mod unknown;

pub use crate::cache::Found as Meta;
pub use error::{Invalid, LocalIo, MetaError};
pub use gen::{Gen, GenInfo};
pub use keyrings::{KeyringError, Keyrings};
pub use refresh::ReleaseAnswer;
pub use startup::{LoadStats, STARTUP_WAIT};
pub use suite::Suite;
pub use unknown::{
    check_suite_dir, SuiteCounts, SuiteRefused, MAX_PENDING, MAX_REMEMBERED, MAX_SUITE_DIR,
};

use crate::cache::{InFlight, UpstreamNote};
use crate::mapping::Router;
use crate::metrics::{unix_secs, Metrics, Outcome};
use aptindex::checksum::{Checksums, HashKind};
use aptindex::path::PathKind;
use aptindex::release::Release;
use error::io_err;
use grace::remove_gens;
use layout::*;
use pool_entry::{PoolEntry, PoolMap};
use pool_index::PoolIndex;
use pool_map::PoolParser;
use runtime::http::HttpError;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
use suite::SuiteState;

/// The Release-type file names, in the order they are fetched.
pub use aptindex::tree::RELEASE_FILES;
use aptindex::tree::RELEASE_LIMIT;
/// Largest decompressed index parsed for pool checksums.
pub const INDEX_LIMIT: u64 = 2 << 30;

/// A client (its connection, or its address), mapping and suite directory.
type ClientKey = (grace::Client, usize, String);

/// All suites' generations.
#[derive(Debug)]
pub struct Generations {
    pub(crate) meta_dir: PathBuf,
    pub(crate) tmp: PathBuf,
    pub(crate) check_interval: Duration,
    /// A client's request re-checks a suite whose last check is older.
    pub(crate) revalidate_interval: Duration,
    pub(crate) retry: Duration,
    pub(crate) grace: Duration,
    /// Suites no client asked for during this long are dropped ([`idle`]).
    pub(crate) retention: Duration,
    pub(crate) router: Router,
    pub(crate) downloads: Arc<InFlight>,
    pub(crate) metrics: Arc<Metrics>,
    /// The suites upstream served a valid Release for (see [`unknown`]).
    pub(crate) suites: Mutex<HashMap<(usize, String), Arc<Suite>>>,
    /// Suites not known yet: in flight, or their failure remembered.
    pub(crate) unknown: unknown::UnknownSuites,
    /// Pool path → checksums, over every generation served ([`pool_index`]).
    pub(crate) pool_index: Arc<PoolIndex>,
    pub(crate) clients: Mutex<HashMap<ClientKey, (u64, Instant)>>,
    /// Indices that failed to load on behalf of a pool file (see [`pool_lookup`]).
    pub(crate) failed_lookups: pool_lookup::FailedLookups,
    /// Reads indices for their pool entries, within caps (see [`pool_map`]).
    pub(crate) pool_parser: PoolParser,
    /// Each mapping's keyring, if any (see [`signed`]).
    pub(crate) keyrings: Keyrings,
    /// Whether the start-up load is done ([`startup`]).
    pub(crate) startup: startup::Startup,
}

/// The parent directory of a `/`-separated path (`""` at the top).
pub(crate) fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

impl Generations {
    /// The generations under `meta_dir` (created; temporary files removed).
    pub fn new(
        config: &crate::config::Config,
        router: Router,
        downloads: Arc<InFlight>,
    ) -> std::io::Result<Generations> {
        let tmp = config.meta_dir.join(".tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        Ok(Generations {
            meta_dir: config.meta_dir.clone(),
            tmp,
            check_interval: config.check_interval,
            revalidate_interval: config.revalidate_interval,
            retry: config.cache_period.max(Duration::from_secs(1)),
            grace: config.generation_grace,
            retention: config.retention,
            router,
            metrics: downloads.metrics().clone(),
            pool_parser: PoolParser {
                bounds: aptindex::index::bounded::Bounds {
                    decompressed: INDEX_LIMIT,
                    max_entries: config.max_index_entries,
                },
                metrics: downloads.metrics().clone(),
            },
            downloads,
            suites: Mutex::new(HashMap::new()),
            unknown: Default::default(),
            pool_index: Default::default(),
            clients: Mutex::new(HashMap::new()),
            failed_lookups: Default::default(),
            keyrings: Keyrings::default(),
            startup: Default::default(),
        })
    }

    /// These generations, checking Release signatures with `keyrings`
    /// (see [`signed`]).
    pub fn with_keyrings(mut self, keyrings: Keyrings) -> Generations {
        self.keyrings = keyrings;
        self
    }

    pub(super) fn loaded_suites(&self) -> Vec<Arc<Suite>> {
        let suites = self.suites.lock().unwrap_or_else(|e| e.into_inner());
        suites
            .values()
            .filter(|s| s.state().loaded)
            .cloned()
            .collect()
    }

    pub(crate) fn prefix(&self, mapping: usize) -> &str {
        self.router
            .mappings()
            .get(mapping)
            .map_or("?", |m| m.prefix.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_dirs() {
        assert_eq!(parent("dists/x/main/Packages"), "dists/x/main");
        assert_eq!(parent("Packages"), "");
    }
}
