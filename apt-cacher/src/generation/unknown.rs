//! Suites the cacher does not know yet. A client may ask for the Release of
//! any name (`/<prefix>/dists/<anything>/InRelease`); a suite becomes
//! permanent state (in memory, on disk, on the status page, in the refresh
//! loop) only once upstream has served a valid Release for it. Until then
//! the name is held only while a request for it is in flight (so that
//! concurrent requests share one suite object and one upstream fetch), and
//! an upstream failure for it is remembered for `cache_period` in a small
//! table of its own (at most [`MAX_REMEMBERED`] names, the oldest dropped
//! first), not in the upstream client's negative cache. A name longer than
//! [`MAX_SUITE_DIR`] bytes, or with a character real suite names never have,
//! is refused before anything is asked upstream.

use super::*;
use std::sync::Weak;

/// Longest suite directory (`dists/<suite>`, or a flat repository's
/// directory) asked upstream, in bytes. Real ones are a few tens
/// (`dists/bookworm-updates`, `dists/stable/updates`, `` for `./`).
pub const MAX_SUITE_DIR: usize = 200;
/// At most this many upstream failures of unknown suites are remembered.
pub const MAX_REMEMBERED: usize = 1024;
/// At most this many unknown suites are asked upstream at once.
pub const MAX_PENDING: usize = 4096;

/// Why a request for an unknown suite is refused without asking upstream.
#[derive(Debug, thiserror::Error)]
pub enum SuiteRefused {
    /// The suite directory is longer than any real one.
    #[error("suite directory of {len} bytes: longer than the {max} a suite name may have")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// [`MAX_SUITE_DIR`].
        max: usize,
    },
    /// The suite directory has a character no suite name has.
    #[error("suite directory {dir:?}: {ch:?} is not a character of suite names")]
    BadChar {
        /// The directory.
        dir: String,
        /// The first offending character.
        ch: char,
    },
    /// Too many unknown suites are being asked upstream already.
    #[error("{pending} unknown suites are being asked upstream already; try again later")]
    Busy {
        /// How many.
        pending: usize,
    },
}

/// Checks that `dir` looks like a suite directory: at most
/// [`MAX_SUITE_DIR`] bytes of ASCII letters, digits and `-._+~/:@=,`.
pub fn check_suite_dir(dir: &str) -> Result<(), SuiteRefused> {
    if dir.len() > MAX_SUITE_DIR {
        return Err(SuiteRefused::TooLong {
            len: dir.len(),
            max: MAX_SUITE_DIR,
        });
    }
    match dir
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._+~/:@=,".contains(*c)))
    {
        Some(ch) => Err(SuiteRefused::BadChar {
            dir: dir.to_string(),
            ch,
        }),
        None => Ok(()),
    }
}

/// How many suites the cacher holds state for (the status snapshot and
/// tests read it: none of these grow with names clients make up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct SuiteCounts {
    /// Suites with a generation (upstream served a valid Release).
    pub known: usize,
    /// Unknown suites with a request in flight.
    pub pending: usize,
    /// Unknown suites whose upstream failure is remembered.
    pub remembered: usize,
}

type Name = (usize, String);

/// The unknown suites' state: in flight, and failures remembered.
#[derive(Debug, Default)]
pub(crate) struct UnknownSuites {
    pub(super) pending: Mutex<HashMap<Name, Weak<Suite>>>,
    failed: Mutex<HashMap<Name, (Instant, HttpError)>>,
}

impl UnknownSuites {
    /// The remembered failure of `dir` of `mapping`, if younger than `period`.
    pub(super) fn remembered(
        &self,
        mapping: usize,
        dir: &str,
        period: Duration,
    ) -> Option<HttpError> {
        let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        let key = (mapping, dir.to_string());
        match failed.get(&key) {
            Some((t, e)) if t.elapsed() < period => Some(e.clone()),
            Some(_) => {
                failed.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers that upstream failed for `dir` of `mapping`.
    pub(super) fn remember(&self, mapping: usize, dir: &str, e: &HttpError, period: Duration) {
        if period.is_zero() {
            return;
        }
        let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        if failed.len() >= MAX_REMEMBERED {
            failed.retain(|_, (t, _)| t.elapsed() < period);
        }
        while failed.len() >= MAX_REMEMBERED {
            let oldest = failed
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => failed.remove(&k),
                None => break,
            };
        }
        failed.insert((mapping, dir.to_string()), (Instant::now(), e.clone()));
    }

    /// Forgets the failure of `dir` (it has a generation now).
    fn forget(&self, mapping: usize, dir: &str) {
        let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        failed.remove(&(mapping, dir.to_string()));
    }

    pub(super) fn counts(&self) -> (usize, usize) {
        let pending = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.retain(|_, w| w.strong_count() > 0);
            p.len()
        };
        let remembered = self.failed.lock().unwrap_or_else(|e| e.into_inner()).len();
        (pending, remembered)
    }
}

/// A suite the cacher knows, or an unknown one held while a request for it
/// is in flight (dropped from the in-flight table with its last holder).
pub(super) struct SuiteRef<'a> {
    pub(super) suite: Arc<Suite>,
    pending: Option<&'a UnknownSuites>,
}

impl SuiteRef<'_> {
    pub(super) fn is_pending(&self) -> bool {
        self.pending.is_some()
    }
}

impl Drop for SuiteRef<'_> {
    fn drop(&mut self) {
        let Some(unknown) = self.pending else { return };
        let key = (self.suite.mapping, self.suite.dir.clone());
        let weak = Arc::downgrade(&self.suite);
        // The Arc in `self.suite` goes after this: one other holder at most means none.
        let mut p = unknown.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.get(&key).is_some_and(|w| w.ptr_eq(&weak)) && Arc::strong_count(&self.suite) <= 1 {
            p.remove(&key);
        }
    }
}

impl Generations {
    fn new_suite(&self, mapping: usize, dir: &str) -> Option<Arc<Suite>> {
        let prefix = &self.router.mappings().get(mapping)?.prefix;
        Some(Arc::new(Suite {
            mapping,
            dir: dir.to_string(),
            path: self.meta_dir.join(prefix).join(escape_dir(dir)),
            lock: tokio::sync::Mutex::new(()),
            state: RwLock::new(SuiteState::default()),
            last_asked: Mutex::new(Instant::now()),
        }))
    }

    /// The known suite of `dir`, if any (nothing is created).
    pub(super) fn known_suite(&self, mapping: usize, dir: &str) -> Option<Arc<Suite>> {
        let suites = self.suites.lock().unwrap_or_else(|e| e.into_inner());
        suites.get(&(mapping, dir.to_string())).cloned()
    }

    /// Makes the suite of `dir` known (it has a generation, or one on
    /// disk): the one in flight if any, else a new one.
    pub(super) fn adopt(&self, mapping: usize, dir: &str) -> Option<Arc<Suite>> {
        let key = (mapping, dir.to_string());
        let mut pending = self
            .unknown
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut suites = self.suites.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = suites.get(&key) {
            return Some(s.clone());
        }
        let suite = match pending.remove(&key).and_then(|w| w.upgrade()) {
            Some(s) => s,
            None => self.new_suite(mapping, dir)?,
        };
        suites.insert(key, suite.clone());
        drop(suites);
        drop(pending);
        self.unknown.forget(mapping, dir);
        Some(suite)
    }

    /// Drops `suite` from the known ones (it turned out to have no generation).
    pub(super) fn drop_empty(&self, suite: &Arc<Suite>) {
        let mut suites = self.suites.lock().unwrap_or_else(|e| e.into_inner());
        let key = (suite.mapping, suite.dir.clone());
        if suites.get(&key).is_some_and(|s| Arc::ptr_eq(s, suite)) && suite.current().is_none() {
            suites.remove(&key);
        }
    }

    /// The suite a Release request for `dir` is served from: a known one,
    /// or an unknown one held while in flight (see the module documentation).
    pub(super) async fn release_suite(
        &self,
        mapping: usize,
        dir: &str,
    ) -> Result<SuiteRef<'_>, MetaError> {
        if let Some(suite) = self.known_suite(mapping, dir) {
            return Ok(SuiteRef {
                suite,
                pending: None,
            });
        }
        check_suite_dir(dir)?;
        if let Some(suite) = self.existing_suite(mapping, dir).await {
            return Ok(SuiteRef {
                suite,
                pending: None,
            });
        }
        if let Some(e) = self.unknown.remembered(mapping, dir, self.retry) {
            return Err(e.into());
        }
        let key = (mapping, dir.to_string());
        let mut pending = self
            .unknown
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(suite) = self
            .suites
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(SuiteRef {
                suite: suite.clone(),
                pending: None,
            });
        }
        if let Some(suite) = pending.get(&key).and_then(|w| w.upgrade()) {
            return Ok(SuiteRef {
                suite,
                pending: Some(&self.unknown),
            });
        }
        if pending.len() >= MAX_PENDING {
            pending.retain(|_, w| w.strong_count() > 0);
            if pending.len() >= MAX_PENDING {
                return Err(SuiteRefused::Busy {
                    pending: pending.len(),
                }
                .into());
            }
        }
        let suite = self.new_suite(mapping, dir).ok_or(Invalid::NoMapping)?;
        pending.insert(key, Arc::downgrade(&suite));
        Ok(SuiteRef {
            suite,
            pending: Some(&self.unknown),
        })
    }

    /// True when a failure of the unknown suite `dir` is remembered.
    pub fn unknown_remembered(&self, mapping: usize, dir: &str) -> bool {
        self.unknown.remembered(mapping, dir, self.retry).is_some()
    }

    /// How many suites the cacher holds state for.
    pub fn suite_counts(&self) -> SuiteCounts {
        let known = self.suites.lock().unwrap_or_else(|e| e.into_inner()).len();
        let (pending, remembered) = self.unknown.counts();
        SuiteCounts {
            known,
            pending,
            remembered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_suite_dirs_pass() {
        for d in [
            "",
            "dists/bookworm",
            "dists/bookworm-updates",
            "dists/jammy-security",
            "dists/stable/updates",
            "dists/bookworm-security/updates",
            "Debian_12",
            "dists/focal-pgdg",
            "sub/dir",
        ] {
            assert!(check_suite_dir(d).is_ok(), "{d:?}");
        }
    }

    #[test]
    fn made_up_dirs_are_refused() {
        let long = format!("dists/{}", "a".repeat(MAX_SUITE_DIR));
        assert!(matches!(
            check_suite_dir(&long),
            Err(SuiteRefused::TooLong { .. })
        ));
        for d in [
            "dists/a b",
            "dists/a%2Fb",
            "dists/\u{e9}",
            "dists/a\u{0}",
            "a?b",
        ] {
            assert!(
                matches!(check_suite_dir(d), Err(SuiteRefused::BadChar { .. })),
                "{d:?}"
            );
        }
    }

    #[test]
    fn remembered_failures_are_bounded() {
        let u = UnknownSuites::default();
        let e = HttpError::status(&"http://deb.example.org/x".parse().unwrap(), 404);
        let period = Duration::from_secs(600);
        for i in 0..MAX_REMEMBERED * 3 {
            u.remember(0, &format!("dists/n{i}"), &e, period);
        }
        assert_eq!(u.counts().1, MAX_REMEMBERED);
        // The newest are kept.
        let last = format!("dists/n{}", MAX_REMEMBERED * 3 - 1);
        assert!(u.remembered(0, &last, period).is_some());
        assert!(u.remembered(0, "dists/n0", period).is_none());
    }
}
