//! The refresh policy: a Release is served from the current generation
//! until it is older than `check_interval` (or its `Valid-Until` is near);
//! then upstream's Release is re-read and, if it changed, a new generation
//! is built with every index the old one had (re-fetched and verified) and
//! swapped in; failures keep the current generation. The ticker re-checks
//! suites in the background. A client's request re-checks sooner, after
//! `revalidate_interval`, with a conditional GET (revalidate.rs).

use super::revalidate::{FirstFile, LastCheck};
use super::*;
use crate::metrics::Revalidation;

/// A Release-type file to serve, and how it was obtained.
#[derive(Debug)]
pub struct ReleaseAnswer {
    /// The file in the generation.
    pub path: PathBuf,
    /// [`Outcome::Hit`] (current, not re-checked), [`Outcome::Revalidated`]
    /// (re-checked upstream, unchanged) or [`Outcome::Miss`] (a new Release).
    pub outcome: Outcome,
    /// What upstream did when it was asked.
    pub upstream: Option<UpstreamNote>,
}

/// Which negative cache a Release fetch goes through: the upstream
/// client's (a known suite), or none (an unknown suite: its failure is
/// remembered in unknown.rs's small table instead, not once per URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Negatives {
    /// The upstream client's negative cache.
    Upstream,
    /// None: the suite is unknown.
    Unknown,
}

/// What re-checking upstream's Release did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Checked {
    /// A new generation was swapped in.
    Swapped,
    /// Upstream is unchanged: the current generation stays.
    Unchanged,
    /// Upstream answered 304 to a conditional GET: unchanged, nothing
    /// else was fetched.
    NotModified,
}

impl Generations {
    pub(super) fn is_stale(&self, st: &SuiteState) -> bool {
        let Some(checked) = st.checked else {
            return true;
        };
        let age = checked.elapsed();
        if age < self.retry.min(self.check_interval) {
            return false;
        }
        if age >= self.check_interval {
            return true;
        }
        // Renew before Valid-Until passes.
        st.current
            .as_ref()
            .and_then(|g| g.release.valid_until_time())
            .is_some_and(|t| {
                // Past, or due within check_interval (no overflowing sum).
                t.duration_since(SystemTime::now())
                    .map_or(true, |left| left <= self.check_interval)
            })
    }

    /// Serves a Release-type file `name` of the suite in `dir`.
    pub async fn release_file(
        &self,
        mapping: usize,
        dir: &str,
        name: &str,
        client: SocketAddr,
    ) -> Result<ReleaseAnswer, MetaError> {
        let asked = Instant::now();
        // A suite exists only once upstream served a valid Release for it
        // (unknown.rs): until then, nothing about the name is kept.
        let held = self.release_suite(mapping, dir).await?;
        let suite = held.suite.clone();
        suite.mark_asked();
        let started = Instant::now();
        let (gen, outcome, status) = {
            let _guard = suite.lock.lock().await;
            if suite.state().dropped {
                return Err(Invalid::Dropped.into());
            }
            self.ensure_loaded(&suite).await;
            let (has_current, stale) = {
                let st = suite.state();
                (st.current.is_some(), self.needs_check(&st, asked))
            };
            let mut outcome = Outcome::Hit;
            let mut status = 200;
            if !has_current {
                let negatives = if held.is_pending() {
                    // A request that waited for another may find its failure.
                    if let Some(e) = self.unknown.remembered(mapping, dir, self.retry) {
                        return Err(e.into());
                    }
                    Negatives::Unknown
                } else {
                    Negatives::Upstream
                };
                if let Err(e) = self.fetch_first(&suite, name, negatives).await {
                    if let (Negatives::Unknown, MetaError::Upstream(u)) = (negatives, &e) {
                        self.unknown.remember(mapping, dir, u, self.retry);
                    }
                    return Err(e);
                }
                if held.is_pending() {
                    self.adopt(mapping, dir);
                }
                outcome = Outcome::Miss;
            } else if stale {
                outcome = match self.refresh_retrying(&suite).await {
                    Some(Checked::Swapped) => Outcome::Miss,
                    Some(Checked::Unchanged) => Outcome::Revalidated,
                    Some(Checked::NotModified) => {
                        status = 304;
                        Outcome::Revalidated
                    }
                    // Upstream failed: the current generation is served as is.
                    None => Outcome::Hit,
                };
            }
            let cur = suite.current().ok_or(Invalid::NoGeneration)?;
            if !cur.release_files.iter().any(|f| f == name) {
                self.refresh(&suite, Some(name)).await?;
                outcome = Outcome::Miss;
            }
            let gen = suite.current().ok_or(Invalid::NoGeneration)?;
            (gen, outcome, status)
        };
        if !gen.release_files.iter().any(|f| f == name) {
            return Err(Invalid::NotAvailable(name.to_string()).into());
        }
        self.record_client(client, &suite, &gen);
        // Upstream answered when a Release was fetched or re-checked: 304 to
        // a conditional GET, else 200 in practice (`Upstream::get` turns any
        // status but 2xx (206 included) into an error; the exact 2xx code
        // of each file is not carried up to here).
        let upstream = (outcome != Outcome::Hit).then(|| UpstreamNote {
            status: Some(status),
            ms: started.elapsed().as_millis() as u64,
            negative: false,
        });
        Ok(ReleaseAnswer {
            path: gen.dir.join(name),
            outcome,
            upstream,
        })
    }

    /// [`Self::refresh`], tried again (up to 3 times) when upstream changed
    /// while it was being read; failures are logged and the current
    /// generation stays. `Some` when upstream was read, `None` when the
    /// refresh failed.
    pub(super) async fn refresh_retrying(&self, suite: &Arc<Suite>) -> Option<Checked> {
        let checked = self.refresh_attempts(suite).await;
        suite.state_mut().last_check = match checked {
            Some(_) => LastCheck::Succeeded,
            None => LastCheck::Failed,
        };
        self.metrics.release_revalidated(match checked {
            Some(Checked::Swapped) => Revalidation::Changed,
            Some(Checked::Unchanged | Checked::NotModified) => Revalidation::Unchanged,
            None => Revalidation::Failed,
        });
        checked
    }

    /// [`Self::refresh_retrying`]'s attempts.
    async fn refresh_attempts(&self, suite: &Arc<Suite>) -> Option<Checked> {
        for attempt in 1..=3 {
            match self.refresh(suite, None).await {
                Ok(checked) => return Some(checked),
                // Logged, counted and listed by signed.rs already.
                Err(MetaError::Signature(_)) => return None,
                Err(e @ MetaError::Invalid(_)) if attempt < 3 => {
                    tracing::info!(mapping = %self.prefix(suite.mapping), suite = %suite.dir, error = %e, "upstream inconsistent during refresh; retrying");
                }
                Err(e) => {
                    tracing::warn!(mapping = %self.prefix(suite.mapping), suite = %suite.dir, error = %e, "refresh failed; serving the current generation");
                    self.metrics.failure(
                        &format!("{}/{}", self.prefix(suite.mapping), suite.dir),
                        &format!("refresh failed: {e}"),
                    );
                    return None;
                }
            }
        }
        None
    }

    /// Re-checks the upstream Release of `suite` (adding `extra` to its
    /// Release files); builds and swaps in a new generation if it changed
    /// (or gained a Release file).
    pub(super) async fn refresh(
        &self,
        suite: &Arc<Suite>,
        extra: Option<&str>,
    ) -> Result<Checked, MetaError> {
        let Some(cur) = suite.current() else {
            return Ok(Checked::Unchanged);
        };
        // Retry no sooner than `retry`, whatever happens.
        suite.state_mut().checked = Some(Instant::now());
        let mut names: Vec<String> = cur.release_files.clone();
        if let Some(e) = extra {
            names.push(e.to_string());
        }
        names.sort_by_key(|n| RELEASE_FILES.iter().position(|r| r == n));
        names.dedup();
        let required = extra
            .unwrap_or_else(|| names.first().map_or("InRelease", |s| s.as_str()))
            .to_string();
        // Without an extra file, the first one is asked for conditionally.
        let prefetched = match extra {
            Some(_) => None,
            None => match self.fetch_first_file(suite, &cur, &required).await? {
                FirstFile::NotModified => return Ok(Checked::NotModified),
                FirstFile::Fetched { body, validators } => Some((body, validators)),
            },
        };
        let (prefetched, validators) = match prefetched {
            Some((body, v)) => (Some((required.clone(), body)), v),
            None => (None, None),
        };
        let (release, files) = self
            .fetch_release_set_after(suite, &names, &required, Negatives::Upstream, prefetched)
            .await?;
        let unchanged = files.iter().all(|(n, b)| {
            !cur.release_files.contains(n)
                || std::fs::read(cur.dir.join(n)).is_ok_and(|old| old == b.as_ref())
        });
        if unchanged && release == cur.release {
            // Same generation: the extra file (if any) joins it as is.
            let _ = extra;
            if files.iter().any(|(n, _)| !cur.release_files.contains(n)) {
                // Release-file sets are fixed per generation; rebuild it under a new id with the same indices.
                let indices = cur.files.read().unwrap_or_else(|e| e.into_inner()).clone();
                let copies: Vec<_> = indices
                    .into_iter()
                    .map(|(rel, cs)| (rel, cs, None))
                    .collect();
                self.publish(suite, release, files, copies).await?;
                return Ok(Checked::Swapped);
            }
            self.keep_validators(suite, &required, validators);
            return Ok(Checked::Unchanged);
        }
        tracing::info!(mapping = %self.prefix(suite.mapping), suite = %suite.dir, "upstream Release changed; fetching the indices of the new generation");
        let mut carried = Vec::new();
        let indices = cur.files.read().unwrap_or_else(|e| e.into_inner()).clone();
        for (rel, old_cs) in indices {
            let Some(new_cs) = release.entries.get(&rel) else {
                continue;
            };
            if *new_cs == old_cs {
                carried.push((rel, old_cs, None));
                continue;
            }
            let temp = self.fetch_index(suite, &release, &rel, new_cs).await?;
            carried.push((rel, new_cs.clone(), Some(temp)));
        }
        self.publish(suite, release, files, carried).await?;
        self.keep_validators(suite, &required, validators);
        Ok(Checked::Swapped)
    }

    /// Background re-checks: every suite older than `check_interval` is refreshed,
    /// expired generations are removed and idle suites dropped, until `shutdown`.
    pub async fn ticker(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let period =
            (self.check_interval / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.drop_idle().await;
            for suite in self.loaded_suites() {
                self.expire(&suite);
                let stale = {
                    let st = suite.state();
                    st.current.is_some() && self.is_stale(&st)
                };
                if !stale {
                    continue;
                }
                let Ok(_guard) = suite.lock.try_lock() else {
                    continue;
                };
                self.refresh_retrying(&suite).await;
            }
        }
    }
}
