//! Fetching a Release tree: the Release-type files of a suite (checked to
//! agree), a suite's first generation, the indices of a new Release (by-hash
//! first when it allows), and an index or patch fetched into a generation
//! on demand, verified and committed into it.

use super::gen::IntoGen;
use super::refresh::Negatives;
use super::*;
use crate::cache::{CacheKey, Commit, Job};

impl Generations {
    pub(super) fn release_url(&self, suite: &Suite, name: &str) -> Result<reqwest::Url, MetaError> {
        let path = aptindex::path::join(&suite.dir, name);
        self.router
            .upstream_url(suite.mapping, &path)
            .ok_or_else(|| Invalid::BadPath(path).into())
    }

    /// Fetches the Release-type files `names` (those after the first may be
    /// missing upstream, except `required`); checks that the parsed ones agree.
    pub(super) async fn fetch_release_set(
        &self,
        suite: &Suite,
        names: &[String],
        required: &str,
        negatives: Negatives,
    ) -> Result<(Release, Vec<(String, bytes::Bytes)>), MetaError> {
        self.fetch_release_set_after(suite, names, required, negatives, None)
            .await
    }

    /// [`Self::fetch_release_set`], with the file `prefetched` names
    /// already fetched (revalidate.rs's conditional GET): not asked again.
    pub(super) async fn fetch_release_set_after(
        &self,
        suite: &Suite,
        names: &[String],
        required: &str,
        negatives: Negatives,
        mut prefetched: Option<(String, bytes::Bytes)>,
    ) -> Result<(Release, Vec<(String, bytes::Bytes)>), MetaError> {
        let mut got = Vec::new();
        let mut release: Option<Release> = None;
        for name in names {
            let url = self.release_url(suite, name)?;
            if let Some((_, bytes)) = prefetched.take_if(|(n, _)| n == name) {
                if name != "Release.gpg" {
                    release = Some(self.agreeing(release.take(), &url, &bytes)?);
                }
                got.push((name.clone(), bytes));
                continue;
            }
            let upstream = self.downloads.upstream();
            // Counted, and failed over to the next upstream, by the client.
            let negative = negatives == Negatives::Upstream && upstream.is_negative(&url);
            let got_bytes = match negatives {
                Negatives::Upstream => upstream.get_bytes(&url, RELEASE_LIMIT).await,
                Negatives::Unknown => upstream.get_bytes_unremembered(&url, RELEASE_LIMIT).await,
            };
            let bytes = match got_bytes {
                Ok((b, _)) => b,
                Err(e) if e.is_not_found() && name != required && name == "Release.gpg" => continue,
                Err(e) => {
                    if !negative {
                        // A 404 is counted but is no "recent failure" (see cache/fetch.rs).
                        if e.is_not_found() {
                            tracing::info!(url = %url, status = e.status_code(), error = %e, "not found upstream");
                        } else {
                            self.metrics.failure(url.as_str(), &e.to_string());
                            tracing::warn!(url = %url, status = e.status_code(), error = %e, "upstream failed");
                        }
                    }
                    return Err(e.into());
                }
            };
            if name != "Release.gpg" {
                release = Some(self.agreeing(release.take(), &url, &bytes)?);
            }
            got.push((name.clone(), bytes));
        }
        let release = release.ok_or(Invalid::NoRelease)?;
        // With a keyring: only what verifies, as apt reads it (signed.rs).
        self.check_signed(suite, release, got)
    }

    /// The Release `bytes` (from `url`) parse to, checked to agree with
    /// `release` (the one parsed so far, if any).
    fn agreeing(
        &self,
        release: Option<Release>,
        url: &reqwest::Url,
        bytes: &[u8],
    ) -> Result<Release, MetaError> {
        let parsed = Release::parse_any(bytes).map_err(|source| {
            tracing::warn!(url = %url, error = %source, "upstream Release unusable");
            let e = Invalid::Unparsable {
                url: url.to_string(),
                source,
            };
            self.metrics.failure(url.as_str(), &e.to_string());
            e
        })?;
        match release {
            Some(r) if r != parsed => Err(Invalid::Disagree {
                url: url.to_string(),
            }
            .into()),
            _ => Ok(parsed),
        }
    }

    /// Creates the first generation of `suite` from the file a client asked for.
    pub(super) async fn fetch_first(
        &self,
        suite: &Arc<Suite>,
        name: &str,
        negatives: Negatives,
    ) -> Result<(), MetaError> {
        let names: Vec<String> = match name {
            "InRelease" => vec!["InRelease".into()],
            _ => vec!["Release".into(), "Release.gpg".into()],
        };
        let required = if name == "InRelease" {
            "InRelease"
        } else {
            "Release"
        };
        let (release, files) = self
            .fetch_release_set(suite, &names, required, negatives)
            .await?;
        if name == "Release.gpg" && !files.iter().any(|(n, _)| n == "Release.gpg") {
            let url = self.release_url(suite, name)?;
            return Err(HttpError::status(&url, 404).into());
        }
        self.publish(suite, release, files, Vec::new()).await?;
        suite.state_mut().checked = Some(Instant::now());
        Ok(())
    }

    /// Downloads one index for `release` into a temporary file, verified.
    pub(super) async fn fetch_index(
        &self,
        suite: &Suite,
        release: &Release,
        rel: &str,
        expected: &Checksums,
    ) -> Result<tempfile::TempPath, MetaError> {
        let (file, temp) = tempfile::Builder::new()
            .prefix("idx-")
            .tempfile_in(&self.tmp)
            .map_err(io_err("temporary file"))?
            .into_parts();
        let (kept_tx, kept_rx) = tokio::sync::oneshot::channel();
        let job = Job {
            key: CacheKey::Refresh {
                mapping: suite.mapping,
                suite: suite.dir.clone(),
                rel: rel.to_string(),
            },
            urls: self.index_urls(suite, release, rel, expected),
            expected: Some(expected.clone()),
            what: format!(
                "{}/{}",
                self.prefix(suite.mapping),
                aptindex::path::join(&suite.dir, rel)
            ),
            temp: (file, temp),
            unverified_cap: crate::config::UNVERIFIED_DEFAULT,
            room: None,
            commit: Commit::Hand(kept_tx),
        };
        let source = self.downloads.start(job).source;
        source.finished().await.map_err(Invalid::Refetch)?;
        kept_rx.await.map_err(|_| {
            LocalIo::NotKept {
                rel: rel.to_string(),
            }
            .into()
        })
    }

    /// Upstream URLs for an index: by-hash first when the Release allows it.
    pub(super) fn index_urls(
        &self,
        suite: &Suite,
        release: &Release,
        rel: &str,
        cs: &Checksums,
    ) -> Vec<reqwest::Url> {
        use aptindex::tree::release_files::{fetch_candidates, ByHash, Plain};
        let path = aptindex::path::join(&suite.dir, rel);
        let by_hash = if release.acquire_by_hash {
            ByHash::Strongest
        } else {
            ByHash::Off
        };
        fetch_candidates(&path, cs, by_hash, Plain::Include)
            .iter()
            .filter_map(|p| self.router.upstream_url(suite.mapping, p))
            .collect()
    }

    /// Serves `rel` of `gen`, fetching and verifying it into the generation if needed.
    pub(crate) fn gen_file(
        &self,
        suite: &Arc<Suite>,
        gen: Arc<Gen>,
        rel: &str,
        cs: Checksums,
    ) -> Result<Meta, MetaError> {
        let urls = self.index_urls(suite, &gen.release, rel, &cs);
        self.gen_file_from(suite, gen, rel, cs, urls)
    }

    /// [`Self::gen_file`] from `urls` (tried in order, the next after a 404).
    pub(crate) fn gen_file_from(
        &self,
        suite: &Arc<Suite>,
        gen: Arc<Gen>,
        rel: &str,
        cs: Checksums,
        urls: Vec<reqwest::Url>,
    ) -> Result<Meta, MetaError> {
        if gen.has(rel) {
            return Ok(Meta::File(gen.dir.join(rel)));
        }
        let (file, temp) = tempfile::Builder::new()
            .prefix("idx-")
            .tempfile_in(&self.tmp)
            .map_err(io_err("temporary file"))?
            .into_parts();
        let repo_path = aptindex::path::join(&suite.dir, rel);
        let what = format!("{}/{}", self.prefix(suite.mapping), repo_path);
        let job = Job {
            key: CacheKey::Generation {
                mapping: suite.mapping,
                generation: gen.id,
                path: repo_path.clone(),
            },
            urls,
            expected: Some(cs.clone()),
            what: what.clone(),
            temp: (file, temp),
            unverified_cap: crate::config::UNVERIFIED_DEFAULT,
            room: None,
            commit: Commit::Generation(Box::new(IntoGen {
                gen,
                rel: rel.to_string(),
                repo_path,
                expected: cs,
                what,
                parser: self.pool_parser.clone(),
            })),
        };
        Ok(self.downloads.start(job).into())
    }
}
