//! Signed generations. Over plain http anyone on the path can feed the
//! cacher a forged Release; apt on each host would reject it, but the whole
//! fleet would fail at once because the cache swapped it in. So, for a
//! mapping with a keyring ([`super::keyrings`]), a suite's Release files
//! are read the way apt reads them (`aptindex::trust::decide`, the one
//! trust rule, shared with apt-mirror) before they can become a
//! generation:
//!
//! * the set fetched ([`Generations::check_signed`], at the end of
//!   `fetch_release_set`, the one path every new generation's Release
//!   files come through) must verify: `InRelease`, or `Release` +
//!   `Release.gpg`. Otherwise it is refused: logged with its URL and the
//!   signer or the reason, counted (`release_signature_failures`), listed
//!   among the recent failures and shown on the status page; the current
//!   generation stays, and a suite without one gets none;
//! * a file that does not verify next to one that does (a stale
//!   `Release.gpg` next to a good `InRelease`) is left out of the
//!   generation, as apt-mirror leaves it out of its snapshot: a client
//!   asking for it gets 404, like a mirror's client, never a signature
//!   that fails;
//! * a generation kept on disk by an earlier run is checked again when it
//!   is loaded ([`Generations::verify_loaded`]; the keyring may be new).
//!
//! The authoritative Release is the text the signature covers. Without a
//! keyring nothing changes, and the status page says the suite is unsigned.

use super::*;
use aptindex::signature::Signer;
use aptindex::trust::{decide, Decision, Fetched, ReleaseFile, TrustError};
use bytes::Bytes;

/// A suite's Release files were refused: they do not verify.
#[derive(Debug, thiserror::Error)]
#[error("{what}: Release signature refused: {cause}")]
pub struct Refused {
    /// Mapping prefix and suite directory.
    pub what: String,
    /// Why, naming the file's URL.
    #[source]
    pub cause: Cause,
}

/// Why Release files were refused.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// No Release text verifies (as apt reads them).
    #[error(transparent)]
    Trust(TrustError),
    /// A generation kept on disk holds a file that does not verify.
    #[error("{url}: kept on disk, but {why}")]
    Kept {
        /// The file.
        url: String,
        /// Why it would not be published now.
        why: String,
    },
}

impl Cause {
    /// The URL of the file it is about.
    fn url(&self) -> &str {
        match self {
            Cause::Trust(
                TrustError::NotFound { url }
                | TrustError::Signature { url, .. }
                | TrustError::Unsigned { url, .. }
                | TrustError::NoValidRelease { url, .. }
                | TrustError::Unreadable { url, .. }
                | TrustError::Disagree { url },
            ) => url,
            Cause::Kept { url, .. } => url,
        }
    }
}

/// The last refusal of a suite, for the status page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    /// When, in seconds since the Unix epoch.
    pub unix_time: u64,
    /// When, as an HTTP date.
    pub time: String,
    /// The file whose signature decided.
    pub url: String,
    /// Why (the signer, or the reason).
    pub reason: String,
}

/// Who signed a generation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignedBy {
    /// The file whose signature was believed (`InRelease` or `Release.gpg`).
    pub file: String,
    /// The (sub)key that signed, upper-case hex.
    pub fingerprint: String,
    /// Its primary key, upper-case hex.
    pub primary_fingerprint: String,
    /// The primary key's first user id.
    pub user_id: Option<String>,
}

/// Whether a suite's current generation is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureState {
    /// Its mapping has no keyring: nothing is verified.
    Unsigned,
    /// Verified against the mapping's keyring.
    Signed,
    /// The mapping has a keyring but this generation's signer is not known
    /// (not expected: every generation is verified before it is served).
    Unknown,
}

/// The signature part of a suite's line on the status page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignatureInfo {
    /// Signed, unsigned (no keyring), or unknown.
    pub state: SignatureState,
    /// Who signed the current generation.
    pub signed_by: Option<SignedBy>,
    /// Release files upstream serves that were left out of the last
    /// verified set, and why (e.g. a stale `Release.gpg`).
    pub withheld: Vec<String>,
    /// The last refusal, if any (the current generation stayed).
    pub last_refusal: Option<Refusal>,
}

impl SignatureInfo {
    /// A suite of a mapping without a keyring.
    pub fn unsigned() -> SignatureInfo {
        SignatureInfo {
            state: SignatureState::Unsigned,
            signed_by: None,
            withheld: Vec::new(),
            last_refusal: None,
        }
    }
}

/// What a suite remembers of its signatures (in its state).
#[derive(Debug, Default)]
pub(crate) struct SuiteSignature {
    /// The last Release that verified, and by whom.
    verified: Option<(Release, SignedBy)>,
    /// Files left out of it, with why.
    withheld: Vec<String>,
    refusal: Option<Refusal>,
}

/// The Release files among `files`, as [`decide`] takes them.
fn fetched(files: &[(String, Bytes)]) -> Fetched<'_> {
    let find = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_ref())
    };
    Fetched {
        in_release: find("InRelease"),
        release: find("Release"),
        release_gpg: find("Release.gpg"),
    }
}

/// At most [`REASON_CHARS`] characters of `s`.
fn cut(s: &str) -> String {
    match s.char_indices().nth(REASON_CHARS) {
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or("")),
        None => s.to_string(),
    }
}

/// Longest URL or reason kept for a refusal, in characters.
const REASON_CHARS: usize = 600;

fn release_file(name: &str) -> Option<ReleaseFile> {
    ReleaseFile::ALL.into_iter().find(|f| f.name() == name)
}

fn signed_by(decision: &Decision, signer: &Signer) -> SignedBy {
    let file = match decision.authority {
        ReleaseFile::InRelease => "InRelease",
        _ => "Release.gpg",
    };
    SignedBy {
        file: file.to_string(),
        fingerprint: signer.fingerprint.clone(),
        primary_fingerprint: signer.primary_fingerprint.clone(),
        user_id: signer.user_id.clone(),
    }
}

impl Generations {
    /// The URL of `suite`'s directory, with a final `/`.
    fn suite_location(&self, suite: &Suite) -> Result<String, MetaError> {
        let url = self.release_url(suite, "InRelease")?.to_string();
        Ok(url.strip_suffix("InRelease").unwrap_or(&url).to_string())
    }

    /// Checks the Release files `files` of `suite` fetched from upstream
    /// against its mapping's keyring: the Release to believe and the files
    /// a generation may hold, or [`MetaError::Signature`] (logged, counted,
    /// shown). Without a keyring, both come back unchanged.
    pub(super) fn check_signed(
        &self,
        suite: &Suite,
        release: Release,
        files: Vec<(String, Bytes)>,
    ) -> Result<(Release, Vec<(String, Bytes)>), MetaError> {
        let Some(keyring) = self.keyrings.get(suite.mapping) else {
            return Ok((release, files));
        };
        let location = self.suite_location(suite)?;
        let fetched = fetched(&files);
        let decision = match decide(&location, &fetched, Some(keyring), SystemTime::now()) {
            Ok(d) => d,
            // Release was not asked for (a client read InRelease): its
            // absence is no failed fallback.
            Err(TrustError::NoValidRelease { url, source, .. }) if fetched.release.is_none() => {
                let e = TrustError::Signature { url, source };
                return Err(self.refuse(suite, Cause::Trust(e)));
            }
            Err(e) => return Err(self.refuse(suite, Cause::Trust(e))),
        };
        let withheld: Vec<String> = decision
            .warnings
            .iter()
            .filter(|w| !w.published)
            .map(|w| cut(&w.to_string()))
            .collect();
        for w in &decision.warnings {
            tracing::warn!(mapping = %self.prefix(suite.mapping), suite = %suite.dir, url = %w.url, published = w.published, believed = %decision.authority, "{w}");
        }
        let Some(signer) = decision.signer.as_ref() else {
            // decide() always names the signer with a keyring.
            return Ok((decision.release, files));
        };
        let by = signed_by(&decision, signer);
        tracing::debug!(mapping = %self.prefix(suite.mapping), suite = %suite.dir, file = %decision.authority, signer = %by.fingerprint, "Release signature good");
        let kept: Vec<(String, Bytes)> = files
            .into_iter()
            .filter(|(n, _)| release_file(n).is_some_and(|f| decision.publishes(f)))
            .collect();
        let release = decision.release;
        let mut st = suite.state_mut();
        st.signature.verified = Some((release.clone(), by));
        st.signature.withheld = withheld;
        Ok((release, kept))
    }

    /// Logs, counts and remembers a refusal; the error to return.
    fn refuse(&self, suite: &Suite, cause: Cause) -> MetaError {
        let what = format!("{}/{}", self.prefix(suite.mapping), suite.dir);
        let url = cut(cause.url());
        // Bounded: a signature file may name thousands of issuers.
        let reason = cut(&cause.to_string());
        tracing::warn!(mapping = %self.prefix(suite.mapping), suite = %suite.dir, url = %url, error = %reason, "Release signature refused; the last good generation stays");
        self.metrics
            .release_signature_failure(&url, &format!("Release signature refused: {reason}"));
        let now = SystemTime::now();
        suite.state_mut().signature.refusal = Some(Refusal {
            unix_time: unix_secs(now),
            time: crate::time::http_date(now),
            url,
            reason,
        });
        MetaError::Signature(Box::new(Refused { what, cause }))
    }

    /// `current`, loaded from disk, if its Release files verify against
    /// the mapping's keyring (every one of them: a generation holds only
    /// files that verified); otherwise `None` (refused, logged, counted).
    pub(super) async fn verify_loaded(
        &self,
        suite: &Suite,
        current: Option<Arc<Gen>>,
    ) -> Option<Arc<Gen>> {
        let gen = current?;
        let Some(keyring) = self.keyrings.get(suite.mapping).cloned() else {
            return Some(gen);
        };
        let Ok(location) = self.suite_location(suite) else {
            // Fails closed: a mapping with a keyring serves nothing unchecked.
            tracing::warn!(mapping = %self.prefix(suite.mapping), suite = %suite.dir, "no upstream URL for the kept generation's signature check: not served");
            return None;
        };
        let (dir, names) = (gen.dir.clone(), gen.release_files.clone());
        let checked = tokio::task::spawn_blocking(move || {
            let mut files = Vec::new();
            for name in names {
                // At most RELEASE_LIMIT (+1: a bigger one does not verify).
                let mut data = Vec::new();
                if let Ok(f) = std::fs::File::open(dir.join(&name)) {
                    use std::io::Read;
                    let _ = f.take(RELEASE_LIMIT + 1).read_to_end(&mut data);
                }
                files.push((name, Bytes::from(data)));
            }
            let fetched = fetched(&files);
            let decision = decide(&location, &fetched, Some(&keyring), SystemTime::now())
                .map_err(Cause::Trust)?;
            let unverified = files
                .iter()
                .filter_map(|(n, _)| release_file(n))
                .find(|f| !decision.publishes(*f));
            match unverified {
                Some(f) => Err(Cause::Kept {
                    url: format!("{location}{f}"),
                    why: decision.warning(f).map_or_else(
                        || "it does not verify".to_string(),
                        |w| w.problem.to_string(),
                    ),
                }),
                None => Ok(decision),
            }
        })
        .await;
        match checked {
            Ok(Ok(decision)) => {
                if let Some(signer) = &decision.signer {
                    let by = signed_by(&decision, signer);
                    suite.state_mut().signature.verified = Some((gen.release.clone(), by));
                }
                Some(gen)
            }
            Ok(Err(e)) => {
                self.refuse(suite, e);
                tracing::warn!(mapping = %self.prefix(suite.mapping), suite = %suite.dir, generation = gen.id, "the generation kept on disk does not verify against the keyring: not served");
                None
            }
            Err(e) => {
                tracing::warn!(mapping = %self.prefix(suite.mapping), suite = %suite.dir, error = %e, "checking the kept generation's signature failed: not served");
                None
            }
        }
    }

    /// What the status page says of the signature of `suite`, whose
    /// current generation is `gen`.
    pub(super) fn signature_info(&self, suite: &Suite, gen: &Gen) -> SignatureInfo {
        if self.keyrings.get(suite.mapping).is_none() {
            return SignatureInfo::unsigned();
        }
        let st = suite.state();
        let s = &st.signature;
        let signed_by = s
            .verified
            .as_ref()
            .filter(|(release, _)| *release == gen.release)
            .map(|(_, by)| by.clone());
        SignatureInfo {
            state: if signed_by.is_some() {
                SignatureState::Signed
            } else {
                SignatureState::Unknown
            },
            signed_by,
            withheld: s.withheld.clone(),
            last_refusal: s.refusal.clone(),
        }
    }
}
