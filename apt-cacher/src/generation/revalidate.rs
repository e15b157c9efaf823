//! Freshness like a direct client's: a client's request for a Release file
//! re-checks upstream when the suite's last check is older than
//! `revalidate_interval` (a failed check: `cache_period`, unless
//! `check_interval = 0`), and every
//! request that arrived before a check began is answered by it, so all
//! clients share one upstream request per suite per interval. The re-check
//! is a conditional GET of the first Release file with the validators
//! (`ETag`, `Last-Modified`) kept with the current generation: a 304 means
//! unchanged, and nothing else is fetched. The background ticker keeps
//! `check_interval` (refresh.rs).

use super::*;
use crate::upstream::{Conditional, Validators};

/// How the last check of a suite's upstream ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum LastCheck {
    /// Upstream answered (changed or not), or nothing was checked yet.
    #[default]
    Succeeded,
    /// It failed: the next check waits `cache_period` (at least 1 s).
    Failed,
}

/// The validators of one Release file of one generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeptValidators {
    /// The generation whose file they describe.
    pub(crate) gen: u64,
    /// The Release-type file (`InRelease`, `Release`).
    pub(crate) name: String,
    pub(crate) validators: Validators,
}

/// What the conditional GET of a suite's first Release file found.
#[derive(Debug)]
pub(super) enum FirstFile {
    /// 304: the current generation is upstream's.
    NotModified,
    /// The file as upstream has it now, and its validators.
    Fetched {
        body: bytes::Bytes,
        validators: Option<Validators>,
    },
}

impl Generations {
    /// True when a client's request for a Release file, arrived at `asked`,
    /// must re-check upstream first. A check begun since `asked` answers it
    /// (requests waiting on the suite's lock share the check before them).
    pub(super) fn needs_check(&self, st: &SuiteState, asked: Instant) -> bool {
        let Some(checked) = st.checked else {
            return true;
        };
        if checked >= asked {
            return false;
        }
        let age = asked.duration_since(checked);
        match st.last_check {
            // As before revalidation: not before `cache_period` (at least
            // 1 s), unless `check_interval = 0` asks for a check every time.
            LastCheck::Failed => age >= self.retry.min(self.check_interval),
            LastCheck::Succeeded => age >= self.revalidate_interval || self.is_stale(st),
        }
    }

    /// Conditional GET of `name` of `suite`, whose current generation is
    /// `gen`: with the validators kept for it, if any. Logged like
    /// [`Self::fetch_release_set`]'s requests (the upstream client counts
    /// them and fails over).
    pub(super) async fn fetch_first_file(
        &self,
        suite: &Suite,
        gen: &Gen,
        name: &str,
    ) -> Result<FirstFile, MetaError> {
        let url = self.release_url(suite, name)?;
        let kept = suite
            .state()
            .validators
            .clone()
            .filter(|k| k.gen == gen.id && k.name == name);
        let upstream = self.downloads.upstream();
        let negative = upstream.is_negative(&url);
        match upstream
            .get_bytes_if_modified(&url, RELEASE_LIMIT, kept.as_ref().map(|k| &k.validators))
            .await
        {
            Ok(Conditional::NotModified) => Ok(FirstFile::NotModified),
            Ok(Conditional::Modified { body, validators }) => {
                Ok(FirstFile::Fetched { body, validators })
            }
            Err(e) => {
                if !negative {
                    self.metrics.failure(url.as_str(), &e.to_string());
                    tracing::warn!(url = %url, status = e.status_code(), error = %e, "upstream failed");
                }
                Err(e.into())
            }
        }
    }

    /// Keeps `validators` of `name` for the suite's current generation.
    pub(super) fn keep_validators(
        &self,
        suite: &Suite,
        name: &str,
        validators: Option<Validators>,
    ) {
        let Some(gen) = suite.current() else {
            return;
        };
        suite.state_mut().validators = validators.map(|validators| KeptValidators {
            gen: gen.id,
            name: name.to_string(),
            validators,
        });
    }
}
