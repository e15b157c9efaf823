//! Steps 1 and 2 of an update: the Release files of every suite, fetched
//! (and fetched again before the swap, to catch an upstream that changed
//! mid-run), compared with the current snapshot's, and the decision which
//! of them to believe and publish (`aptindex::trust`), refused when its
//! `Valid-Until` has passed ([`super::validity`]).

use super::update::Update;
use super::validity::{self, Validity};
use super::MirrorError;
use crate::config::MirrorConfig;
use crate::fetch::url_for;
use crate::snapshot::{Info, Snapshot};
use aptindex::checksum::Checksums;
use aptindex::signature::Keyring;
use aptindex::tree::{RELEASE_FILES, RELEASE_LIMIT};
use aptindex::trust::{Decision, Fetched};

/// The Release files of one suite as fetched (`None` = 404).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SuiteReleases {
    pub(super) suite: String,
    pub(super) dir: String,
    pub(super) files: [Option<Vec<u8>>; 3],
}

/// A fingerprint of the configuration keys that shape a snapshot.
pub(super) fn config_fingerprint(cfg: &MirrorConfig) -> String {
    serde_json::json!({
        "url": cfg.url.as_str(),
        "suites": cfg.suites,
        "sections": cfg.sections,
        "architectures": cfg.architectures,
        "mirror_source": cfg.mirror_source,
        "languages": cfg.languages,
        "contents": cfg.contents,
    })
    .to_string()
}

impl Update<'_> {
    pub(super) fn url(&self, path: &str) -> Result<reqwest::Url, MirrorError> {
        Ok(url_for(&self.cfg.url, path)?)
    }

    pub(super) async fn fetch_releases(&self) -> Result<Vec<SuiteReleases>, MirrorError> {
        let mut out = Vec::new();
        for suite in &self.cfg.suites {
            let dir = aptindex::release::suite_dir(suite);
            let mut urls = Vec::new();
            for name in RELEASE_FILES {
                urls.push(self.url(&aptindex::path::join(&dir, name))?);
            }
            let fetcher = &self.ctx.fetcher;
            let (a, b, c) = tokio::join!(
                fetcher.get(&urls[0], RELEASE_LIMIT),
                fetcher.get(&urls[1], RELEASE_LIMIT),
                fetcher.get(&urls[2], RELEASE_LIMIT),
            );
            let files = [a?, b?, c?];
            if files[0].is_none() && files[1].is_none() {
                return Err(MirrorError::Missing {
                    url: urls[0]
                        .to_string()
                        .replace("/InRelease", "/{InRelease,Release}"),
                });
            }
            out.push(SuiteReleases {
                suite: suite.clone(),
                dir,
                files,
            });
        }
        Ok(out)
    }

    /// Decides which Release text of the suite to believe and which of
    /// its Release files to publish (`aptindex::trust`); logs and records
    /// the warnings, each naming its URL.
    pub(super) fn verify_release(
        &self,
        keyring: Option<&Keyring>,
        r: &SuiteReleases,
    ) -> Result<Decision, MirrorError> {
        let location = self
            .url(&aptindex::path::join(&r.dir, "InRelease"))?
            .to_string();
        let location = location.strip_suffix("InRelease").unwrap_or(&location);
        let [in_release, release, release_gpg] = &r.files;
        let fetched = Fetched {
            in_release: in_release.as_deref(),
            release: release.as_deref(),
            release_gpg: release_gpg.as_deref(),
        };
        let decision =
            aptindex::trust::decide(location, &fetched, keyring, std::time::SystemTime::now())?;
        if let Some(signer) = &decision.signer {
            tracing::debug!(mirror = %self.cfg.id, suite = %r.suite, file = %decision.authority, signer = %signer.fingerprint, "signature good");
        }
        for w in &decision.warnings {
            tracing::warn!(mirror = %self.cfg.id, url = %w.url, published = w.published, believed = %decision.authority, "{w}");
            self.counters.warn(w.to_string());
        }
        let url = format!("{location}{}", decision.authority);
        match validity::judge(&decision.release, std::time::SystemTime::now()) {
            Validity::Valid => {}
            Validity::Expiring { valid_until, left } => {
                let message = validity::expiring_message(&valid_until, left);
                tracing::warn!(mirror = %self.cfg.id, suite = %r.suite, url = %url, "{message}");
                self.counters.warn(format!("{url}: {message}"));
            }
            Validity::Invalid(problem) if self.cfg.check_valid_until => {
                return Err(MirrorError::Expired {
                    url,
                    suite: r.suite.clone(),
                    problem,
                });
            }
            Validity::Invalid(problem) => {
                tracing::warn!(mirror = %self.cfg.id, suite = %r.suite, url = %url, "{problem}; published because check_valid_until = false");
                self.counters.warn(format!(
                    "{url}: {problem}; published because check_valid_until = false"
                ));
            }
        }
        Ok(decision)
    }

    /// Fails with [`MirrorError::Changed`] when a suite's Release files
    /// are no longer the bytes `releases` holds.
    pub(super) async fn check_unchanged(
        &self,
        releases: &[SuiteReleases],
    ) -> Result<(), MirrorError> {
        let again = self.fetch_releases().await?;
        for (a, b) in releases.iter().zip(&again) {
            if a.files != b.files {
                return Err(MirrorError::Changed {
                    url: self
                        .url(&aptindex::path::join(&a.dir, "InRelease"))?
                        .to_string(),
                });
            }
        }
        Ok(())
    }
}

/// True when every suite's Release files, as fetched, equal what the
/// snapshot was made from: its copies, or for a file it did not publish
/// (`info.withheld`), the size and hashes recorded.
pub(super) fn same_as_snapshot(cur: &Snapshot, info: &Info, releases: &[SuiteReleases]) -> bool {
    releases.iter().all(|r| {
        RELEASE_FILES.iter().zip(&r.files).all(|(name, data)| {
            let path = aptindex::path::join(&r.dir, name);
            let on_disk = std::fs::read(cur.tree.join(&path)).ok();
            match (info.withheld.get(&path), data) {
                (Some(w), Some(data)) => {
                    on_disk.is_none() && w.file.describes(&Checksums::of_bytes(data))
                }
                (Some(_), None) => false,
                (None, _) => on_disk.as_ref() == data.as_ref(),
            }
        })
    })
}
