//! `Release` and `InRelease`: every field apt uses, the checksum lists
//! (`MD5Sum`, `SHA1`, `SHA256`, `SHA512`) merged into one entry per path,
//! clearsigned `InRelease` split into text and signature, and the layout of a
//! suite (`dists/<suite>` or, for a flat repository whose suite ends in `/`,
//! the directory itself).

use crate::checksum::Checksums;
use std::collections::BTreeMap;

/// A parsed Release file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Release {
    /// `Origin`.
    pub origin: Option<String>,
    /// `Label`.
    pub label: Option<String>,
    /// `Suite`.
    pub suite: Option<String>,
    /// `Codename`.
    pub codename: Option<String>,
    /// `Version`.
    pub version: Option<String>,
    /// `Date`, as written.
    pub date: Option<String>,
    /// `Valid-Until`, as written.
    pub valid_until: Option<String>,
    /// `Architectures`.
    pub architectures: Vec<String>,
    /// `Components`.
    pub components: Vec<String>,
    /// `Acquire-By-Hash: yes`.
    pub acquire_by_hash: bool,
    /// `No-Support-for-Architecture-all: Packages`.
    pub no_support_for_architecture_all: bool,
    /// Every file listed, by path relative to the Release's directory,
    /// with every hash any list gives.
    pub entries: BTreeMap<String, Checksums>,
}

/// Parsing a Release failed.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// deb822 syntax.
    #[error(transparent)]
    Deb822(#[from] crate::deb822::Deb822Error),
    /// A checksum line or field is malformed.
    #[error("line {line}: {reason}")]
    Invalid {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Two lists disagree about one file.
    #[error("line {line}: {source}")]
    Conflict {
        /// 1-based line.
        line: usize,
        /// The disagreement.
        #[source]
        source: crate::checksum::ChecksumError,
    },
    /// A clearsigned message is malformed.
    #[error("clearsigned message: {0}")]
    ClearSign(String),
}

impl Release {
    /// Parses a Release file (not clearsigned; see [`split_clearsigned`]).
    pub fn parse(data: &[u8]) -> Result<Release, ReleaseError> {
        todo!()
    }

    /// Parses either a plain Release or a clearsigned InRelease (the
    /// signature is not checked here; see [`crate::signature`]).
    pub fn parse_any(data: &[u8]) -> Result<Release, ReleaseError> {
        todo!()
    }

    /// `Date` as a time, if present and parseable.
    pub fn date_time(&self) -> Option<std::time::SystemTime> {
        todo!()
    }

    /// `Valid-Until` as a time, if present and parseable.
    pub fn valid_until_time(&self) -> Option<std::time::SystemTime> {
        todo!()
    }
}

/// A clearsigned message split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearSigned {
    /// The signed text, dash-unescaped, as the signature covers it.
    pub text: Vec<u8>,
    /// The ASCII-armoured signature block.
    pub signature: Vec<u8>,
}

/// True when `data` starts (after white space) with a clearsign header.
pub fn is_clearsigned(data: &[u8]) -> bool {
    todo!()
}

/// Splits a clearsigned InRelease into text and armoured signature.
pub fn split_clearsigned(data: &[u8]) -> Result<ClearSigned, ReleaseError> {
    todo!()
}

/// The directory of a suite's Release, relative to the repository root:
/// `dists/<suite>` normally; for a flat suite (ending in `/`) the suite
/// itself without the slash (`"./"` and `"/"` → `""`).
pub fn suite_dir(suite: &str) -> String {
    todo!()
}

/// True for a flat-repository suite (ends in `/`).
pub fn is_flat(suite: &str) -> bool {
    suite.ends_with('/')
}
