//! Which of a suite's three Release files to believe, and which may be
//! passed on, decided the way apt reads them.
//!
//! Mirrors and CDNs cache `InRelease`, `Release` and `Release.gpg` each on
//! its own, so an archive is routinely served in a mixed state: a current
//! `InRelease` next to a `Release.gpg` from weeks ago (see
//! `testdata/debian-stale-release-gpg/`). apt reads `InRelease` first and
//! only falls back to `Release` + `Release.gpg` when there is no
//! `InRelease`; a mirror or cache that insisted on all three agreeing would
//! stop updating where apt works. [`decide`] therefore applies, with a
//! keyring:
//!
//! 1. **`InRelease` comes first.** If its signature verifies, its signed
//!    text is the authority. Then a `Release.gpg` that does not verify, or a
//!    `Release` that differs from the signed text (and is not signed by a
//!    valid `Release.gpg`), is a [`TrustWarning`], not an error, and that file
//!    is not to be published ([`Decision::publishes`]): a client that reads
//!    `Release` + `Release.gpg` would otherwise meet a BAD signature or
//!    unsigned text. A `Release` equal to the signed text is published even
//!    when its `Release.gpg` is bad or missing (it is authenticated by
//!    `InRelease`); its `Release.gpg` is not.
//! 2. When `InRelease` and a valid `Release` + `Release.gpg` both exist and
//!    list different files, both are kept if both use by-hash (the other
//!    version's indices stay reachable by hash, [`Decision::other`]);
//!    otherwise `InRelease` decides, as for apt, and the pair is a warning
//!    and is not published. (Without a keyring, where neither is checked,
//!    such a disagreement is an error, [`TrustError::Disagree`].)
//! 3. **Only when there is no valid `InRelease`** (none, or one whose
//!    signature fails) do `Release` + `Release.gpg` decide: a valid pair is
//!    the authority (a bad `InRelease` is then a warning and not
//!    published); anything else is an error naming every file that failed.
//!
//! Without a keyring nothing is verified: `InRelease` is split and every
//! file fetched is published (rule 2 still applies).
//!
//! Everything here is pure: bytes in, a [`Decision`] out, no I/O; the
//! caller names the suite's location so that warnings and errors name URLs.

use std::collections::BTreeSet;
use std::time::SystemTime;

use crate::release::{split_clearsigned, Release, ReleaseError};
use crate::signature::{Keyring, SignatureError, Signer};

/// One of a suite's three Release files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReleaseFile {
    /// `InRelease`: the clearsigned Release.
    InRelease,
    /// `Release`: the plain text.
    Release,
    /// `Release.gpg`: the detached signature over `Release`.
    ReleaseGpg,
}

impl ReleaseFile {
    /// The three, in the order apt reads them.
    pub const ALL: [ReleaseFile; 3] = [
        ReleaseFile::InRelease,
        ReleaseFile::Release,
        ReleaseFile::ReleaseGpg,
    ];

    /// The file name.
    pub fn name(self) -> &'static str {
        match self {
            ReleaseFile::InRelease => "InRelease",
            ReleaseFile::Release => "Release",
            ReleaseFile::ReleaseGpg => "Release.gpg",
        }
    }
}

impl std::fmt::Display for ReleaseFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A suite's Release files as fetched: their bytes, `None` when the
/// upstream has no such file (404).
#[derive(Debug, Clone, Copy, Default)]
pub struct Fetched<'a> {
    /// `InRelease`.
    pub in_release: Option<&'a [u8]>,
    /// `Release`.
    pub release: Option<&'a [u8]>,
    /// `Release.gpg`.
    pub release_gpg: Option<&'a [u8]>,
}

impl<'a> Fetched<'a> {
    /// The bytes of `file`, if fetched.
    pub fn get(&self, file: ReleaseFile) -> Option<&'a [u8]> {
        match file {
            ReleaseFile::InRelease => self.in_release,
            ReleaseFile::Release => self.release,
            ReleaseFile::ReleaseGpg => self.release_gpg,
        }
    }
}

/// What is wrong with one file that did not stop the suite from being used.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// Its signature does not verify (BAD signature, signer not in the
    /// keyring, expired or revoked key, malformed).
    #[error("{0}")]
    Signature(#[source] SignatureError),
    /// `Release` is not the text `InRelease` signs, and no valid
    /// `Release.gpg` signs it.
    #[error("differs from the text InRelease signs and no valid Release.gpg signs it")]
    DiffersFromInRelease,
    /// `Release.gpg` without a `Release` to sign.
    #[error("there is no Release next to it")]
    NoRelease,
    /// `Release` (validly signed) lists other files or checksums than
    /// `InRelease`; both use by-hash, so both versions are kept.
    #[error("lists other files or checksums than InRelease; both are signed and use by-hash: both are kept, this version's indices by hash only")]
    OtherVersion,
    /// `Release` (validly signed) lists other files or checksums than
    /// `InRelease`, and the upstream does not use by-hash: `InRelease`
    /// decides, as for apt, and this version is not kept.
    #[error("lists other files or checksums than InRelease and the upstream does not use by-hash: InRelease is used, as apt does")]
    OtherVersionWithoutByHash,
}

/// A file that is ignored or only partly used, and why.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {problem}; {}", fate(.published))]
pub struct TrustWarning {
    /// Which file.
    pub file: ReleaseFile,
    /// Its URL (the caller's location + the file name).
    pub url: String,
    /// What is wrong.
    pub problem: Problem,
    /// Whether the file is still published.
    pub published: bool,
}

fn fate(published: &bool) -> &'static str {
    if *published {
        "published"
    } else {
        "not published"
    }
}

/// Why a suite's Release files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A file needed is not there.
    #[error("{url}: not found upstream (404)")]
    NotFound {
        /// The file (or `…/{InRelease,Release}` when neither exists).
        url: String,
    },
    /// A signature that decides does not verify.
    #[error("{url}: {source}")]
    Signature {
        /// The signature's file.
        url: String,
        /// Why.
        #[source]
        source: SignatureError,
    },
    /// `Release` has no `Release.gpg`, and no valid `InRelease` vouches for it.
    #[error("{url}: not found upstream (404), so {release_url} is not signed")]
    Unsigned {
        /// The missing `Release.gpg`.
        url: String,
        /// The `Release` it would sign.
        release_url: String,
    },
    /// `InRelease` does not verify, and neither does the fallback.
    #[error("{url}: {source}; and the fallback fails: {fallback}")]
    NoValidRelease {
        /// `InRelease`.
        url: String,
        /// Why `InRelease` failed.
        #[source]
        source: SignatureError,
        /// Why `Release` + `Release.gpg` failed.
        fallback: Box<TrustError>,
    },
    /// A file that decides cannot be read as a Release.
    #[error("{url}: {source}")]
    Unreadable {
        /// The file.
        url: String,
        /// Why.
        #[source]
        source: ReleaseError,
    },
    /// `InRelease` and a validly signed `Release` list different files and
    /// the upstream does not use by-hash (a client could not find both
    /// versions' indices).
    #[error("{url}: Release and InRelease disagree (different files or checksums) and the upstream does not use by-hash")]
    Disagree {
        /// `Release`.
        url: String,
    },
}

/// The outcome: which text is authoritative, and what may be passed on.
#[derive(Debug)]
pub struct Decision {
    /// The file whose text is believed: `InRelease` (its signed text) or
    /// `Release`.
    pub authority: ReleaseFile,
    /// That text, parsed.
    pub release: Release,
    /// The other version, when `InRelease` and a validly signed `Release`
    /// list different files and both use by-hash.
    pub other: Option<Release>,
    /// Who signed the authoritative text (`None` without a keyring).
    pub signer: Option<Signer>,
    /// Files that were ignored or are only partly used (each names its URL).
    pub warnings: Vec<TrustWarning>,
    /// The fetched files that may be published.
    published: BTreeSet<ReleaseFile>,
}

impl Decision {
    /// Whether `file` (fetched) may be published: it verifies against the
    /// keyring (or is the text a verified `InRelease` signs), or no keyring
    /// is used.
    pub fn publishes(&self, file: ReleaseFile) -> bool {
        self.published.contains(&file)
    }

    /// The warning about `file`, if any.
    pub fn warning(&self, file: ReleaseFile) -> Option<&TrustWarning> {
        self.warnings.iter().find(|w| w.file == file)
    }
}

/// Decides which of the `files` of the suite at `location` (its directory
/// URL, e.g. `http://deb.example.org/debian/dists/stable/`) to believe and
/// publish; see the module documentation. With a `keyring`, signatures are
/// checked and key validity judged at time `at`.
pub fn decide(
    location: &str,
    files: &Fetched<'_>,
    keyring: Option<&Keyring>,
    at: SystemTime,
) -> Result<Decision, TrustError> {
    let ctx = Ctx { location, files };
    match keyring {
        None => ctx.unchecked(),
        Some(k) => ctx.checked(k, at),
    }
}

struct Ctx<'l, 'f> {
    location: &'l str,
    files: &'f Fetched<'f>,
}

impl Ctx<'_, '_> {
    fn url(&self, file: ReleaseFile) -> String {
        if self.location.is_empty() || self.location.ends_with('/') {
            format!("{}{}", self.location, file.name())
        } else {
            format!("{}/{}", self.location, file.name())
        }
    }

    fn parse(&self, file: ReleaseFile, text: &[u8]) -> Result<Release, TrustError> {
        Release::parse(text).map_err(|source| TrustError::Unreadable {
            url: self.url(file),
            source,
        })
    }

    fn warning(&self, file: ReleaseFile, problem: Problem, published: bool) -> TrustWarning {
        TrustWarning {
            file,
            url: self.url(file),
            problem,
            published,
        }
    }

    fn neither(&self) -> TrustError {
        let url = self.url(ReleaseFile::InRelease);
        TrustError::NotFound {
            url: url.replace("InRelease", "{InRelease,Release}"),
        }
    }

    /// Every fetched file.
    fn all_fetched(&self) -> BTreeSet<ReleaseFile> {
        ReleaseFile::ALL
            .into_iter()
            .filter(|f| self.files.get(*f).is_some())
            .collect()
    }

    /// No keyring: nothing verified, everything fetched published.
    fn unchecked(&self) -> Result<Decision, TrustError> {
        let in_text = match self.files.in_release {
            None => None,
            Some(data) => Some(
                split_clearsigned(data)
                    .map_err(|source| TrustError::Unreadable {
                        url: self.url(ReleaseFile::InRelease),
                        source,
                    })?
                    .text,
            ),
        };
        let mut warnings = Vec::new();
        let (authority, release, other) = match (in_text, self.files.release) {
            (None, None) => return Err(self.neither()),
            (None, Some(plain)) => (
                ReleaseFile::Release,
                self.parse(ReleaseFile::Release, plain)?,
                None,
            ),
            (Some(text), None) => (
                ReleaseFile::InRelease,
                self.parse(ReleaseFile::InRelease, &text)?,
                None,
            ),
            (Some(text), Some(plain)) => {
                let main = self.parse(ReleaseFile::InRelease, &text)?;
                let plain = self.parse(ReleaseFile::Release, plain)?;
                let other = self.other_version(&main, plain, &mut warnings)?;
                (ReleaseFile::InRelease, main, other)
            }
        };
        Ok(Decision {
            authority,
            release,
            other,
            signer: None,
            warnings,
            published: self.all_fetched(),
        })
    }

    /// Both `InRelease` and `Release` are believed: the same lists, or
    /// different ones both reachable through by-hash (the other version is
    /// returned), or an error.
    fn other_version(
        &self,
        main: &Release,
        plain: Release,
        warnings: &mut Vec<TrustWarning>,
    ) -> Result<Option<Release>, TrustError> {
        if main.entries == plain.entries && main.acquire_by_hash == plain.acquire_by_hash {
            Ok(None)
        } else if main.acquire_by_hash && plain.acquire_by_hash {
            warnings.push(self.warning(ReleaseFile::Release, Problem::OtherVersion, true));
            Ok(Some(plain))
        } else {
            Err(TrustError::Disagree {
                url: self.url(ReleaseFile::Release),
            })
        }
    }

    /// `Release` + `Release.gpg`: the signer and `Release`, or why the pair
    /// fails.
    fn pair(&self, keyring: &Keyring, at: SystemTime) -> Result<(Signer, &[u8]), TrustError> {
        let Some(plain) = self.files.release else {
            return Err(TrustError::NotFound {
                url: self.url(ReleaseFile::Release),
            });
        };
        let Some(sig) = self.files.release_gpg else {
            return Err(TrustError::Unsigned {
                url: self.url(ReleaseFile::ReleaseGpg),
                release_url: self.url(ReleaseFile::Release),
            });
        };
        let signer = keyring
            .verify_detached_at(plain, sig, at)
            .map_err(|source| TrustError::Signature {
                url: self.url(ReleaseFile::ReleaseGpg),
                source,
            })?;
        Ok((signer, plain))
    }

    fn checked(&self, keyring: &Keyring, at: SystemTime) -> Result<Decision, TrustError> {
        let inline = self
            .files
            .in_release
            .map(|data| keyring.verify_clearsigned_at(data, at));
        match inline {
            Some(Ok((text, signer))) => self.with_in_release(keyring, at, text, signer),
            Some(Err(in_error)) => match self.pair(keyring, at) {
                Ok((signer, plain)) => {
                    let warning =
                        self.warning(ReleaseFile::InRelease, Problem::Signature(in_error), false);
                    self.believe_pair(signer, plain, vec![warning])
                }
                Err(fallback) => Err(TrustError::NoValidRelease {
                    url: self.url(ReleaseFile::InRelease),
                    source: in_error,
                    fallback: Box::new(fallback),
                }),
            },
            None => {
                if self.files.release.is_none() {
                    return Err(self.neither());
                }
                let (signer, plain) = self.pair(keyring, at)?;
                self.believe_pair(signer, plain, Vec::new())
            }
        }
    }

    /// No valid `InRelease`; `Release` + `Release.gpg` verified.
    fn believe_pair(
        &self,
        signer: Signer,
        plain: &[u8],
        warnings: Vec<TrustWarning>,
    ) -> Result<Decision, TrustError> {
        Ok(Decision {
            authority: ReleaseFile::Release,
            release: self.parse(ReleaseFile::Release, plain)?,
            other: None,
            signer: Some(signer),
            warnings,
            published: [ReleaseFile::Release, ReleaseFile::ReleaseGpg].into(),
        })
    }

    /// `InRelease` verified: its text decides; `Release` and `Release.gpg`
    /// are published only if they verify too.
    fn with_in_release(
        &self,
        keyring: &Keyring,
        at: SystemTime,
        text: Vec<u8>,
        signer: Signer,
    ) -> Result<Decision, TrustError> {
        let release = self.parse(ReleaseFile::InRelease, &text)?;
        let mut warnings = Vec::new();
        let mut published = BTreeSet::from([ReleaseFile::InRelease]);
        let mut other = None;
        // A validly signed Release listing other files, unreachable by hash.
        let mut unreachable_version = false;
        match (self.files.release, self.files.release_gpg) {
            (None, None) => {}
            (None, Some(_)) => {
                warnings.push(self.warning(ReleaseFile::ReleaseGpg, Problem::NoRelease, false));
            }
            (Some(plain), gpg) => {
                let pair = gpg.map(|sig| keyring.verify_detached_at(plain, sig, at));
                match pair {
                    Some(Ok(_)) => {
                        let parsed = self.parse(ReleaseFile::Release, plain)?;
                        match self.other_version(&release, parsed, &mut warnings) {
                            Ok(o) => {
                                other = o;
                                published.extend([ReleaseFile::Release, ReleaseFile::ReleaseGpg]);
                            }
                            // apt reads InRelease: the other version is
                            // dropped, not the suite.
                            Err(TrustError::Disagree { .. }) => {
                                unreachable_version = true;
                                warnings.push(self.warning(
                                    ReleaseFile::Release,
                                    Problem::OtherVersionWithoutByHash,
                                    false,
                                ));
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    Some(Err(e)) => {
                        warnings.push(self.warning(
                            ReleaseFile::ReleaseGpg,
                            Problem::Signature(e),
                            false,
                        ));
                    }
                    None => {}
                }
                if !published.contains(&ReleaseFile::Release) && !unreachable_version {
                    if same_text(&text, plain) {
                        published.insert(ReleaseFile::Release);
                    } else {
                        warnings.push(self.warning(
                            ReleaseFile::Release,
                            Problem::DiffersFromInRelease,
                            false,
                        ));
                    }
                }
            }
        }
        Ok(Decision {
            authority: ReleaseFile::InRelease,
            release,
            other,
            signer: Some(signer),
            warnings,
            published,
        })
    }
}

/// True when `plain` is the text `signed` (from InRelease) as apt reads
/// both: line by line, without line ends and trailing blanks (the signed
/// text has no final line break: it belongs to the armour).
fn same_text(signed: &[u8], plain: &[u8]) -> bool {
    lines(signed).eq(lines(plain))
}

fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    data.split(|&b| b == b'\n').map(|line| {
        let end = line
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r'))
            .map_or(0, |p| p + 1);
        line.get(..end).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_ignores_the_final_newline_and_trailing_blanks() {
        assert!(same_text(b"A: 1\nB: 2", b"A: 1\nB: 2\n"));
        assert!(same_text(b"A: 1\nB: 2", b"A: 1 \r\nB: 2\r\n"));
        assert!(same_text(b"A: 1\nB: 2", b"A: 1\nB: 2"));
        assert!(!same_text(b"A: 1\nB: 2", b"A: 1\nB: 3\n"));
        assert!(!same_text(b"A: 1\nB: 2", b"A: 1\nB: 2\n\n"));
        assert!(!same_text(b"A: 1\nB: 2", b"A: 1\n"));
    }

    #[test]
    fn urls_join_the_location() {
        let files = Fetched::default();
        for (location, want) in [
            (
                "http://deb.example.org/debian/dists/s/",
                "http://deb.example.org/debian/dists/s/Release",
            ),
            (
                "http://deb.example.org/debian/dists/s",
                "http://deb.example.org/debian/dists/s/Release",
            ),
            ("", "Release"),
        ] {
            let ctx = Ctx {
                location,
                files: &files,
            };
            assert_eq!(ctx.url(ReleaseFile::Release), want);
        }
    }

    #[test]
    fn nothing_fetched_is_not_found() {
        let e = decide(
            "http://deb.example.org/debian/dists/s/",
            &Fetched::default(),
            None,
            SystemTime::now(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "http://deb.example.org/debian/dists/s/{InRelease,Release}: not found upstream (404)"
        );
    }
}
