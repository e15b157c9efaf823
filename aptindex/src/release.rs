//! `Release` and `InRelease`: every field apt uses, the checksum lists
//! (`MD5Sum`, `SHA1`, `SHA256`, `SHA512`) merged into one entry per path,
//! clearsigned `InRelease` split into text and signature, and the layout of a
//! suite (`dists/<suite>` or, for a flat repository whose suite ends in `/`,
//! the directory itself).

use crate::checksum::{ChecksumError, Checksums, HashKind};
use crate::deb822::{is_blank, line_at, paragraphs, Paragraph};
use crate::path::{is_safe_relative, join};
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

/// Release fields holding checksum lists, and the hash each gives.
const RELEASE_SUM_FIELDS: [(&str, HashKind); 4] = [
    ("MD5Sum", HashKind::Md5),
    ("SHA1", HashKind::Sha1),
    ("SHA256", HashKind::Sha256),
    ("SHA512", HashKind::Sha512),
];

/// What went wrong reading a checksum list (shared by Release, Sources and i18n `Index`).
#[derive(Debug)]
pub(crate) enum SumError {
    /// Malformed line.
    Invalid { line: usize, reason: String },
    /// Two lines disagree about one file.
    Conflict { line: usize, source: ChecksumError },
}

impl From<SumError> for ReleaseError {
    fn from(e: SumError) -> Self {
        match e {
            SumError::Invalid { line, reason } => ReleaseError::Invalid { line, reason },
            SumError::Conflict { line, source } => ReleaseError::Conflict { line, source },
        }
    }
}

/// Checksum lists (`<hex> <size> <name>` lines) merged into one entry per
/// path, in first-seen order.
#[derive(Debug, Default)]
pub(crate) struct SumLists {
    /// Entries: path and checksums.
    pub entries: Vec<(String, Checksums)>,
    index: std::collections::HashMap<String, usize>,
}

impl SumLists {
    /// Adds the lines of every field of `par` named in `fields` (any of them
    /// may be missing); paths become `join(dir, name)` and must be safe
    /// relative paths.
    pub fn add_paragraph(
        &mut self,
        par: &Paragraph<'_>,
        fields: &[(&str, HashKind)],
        dir: &str,
    ) -> Result<(), SumError> {
        for field in &par.fields {
            let Some(&(_, kind)) = fields
                .iter()
                .find(|(n, _)| field.name.eq_ignore_ascii_case(n))
            else {
                continue;
            };
            for (line, text) in field.numbered_lines() {
                if text.trim().is_empty() {
                    continue;
                }
                self.add_line(field.name, kind, line, text, dir)?;
            }
        }
        Ok(())
    }

    fn add_line(
        &mut self,
        field: &str,
        kind: HashKind,
        line: usize,
        text: &str,
        dir: &str,
    ) -> Result<(), SumError> {
        let invalid = |reason: String| SumError::Invalid {
            line,
            reason: format!("{field}: {reason}"),
        };
        let mut words = text.split_ascii_whitespace();
        let (Some(hex), Some(size), Some(name), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(invalid(format!(
                "expected `<hash> <size> <path>`, got {text:?}"
            )));
        };
        let size: u64 = size
            .parse()
            .map_err(|_| invalid(format!("bad size {size:?}")))?;
        let path = join(dir, name);
        if !is_safe_relative(&path) {
            return Err(invalid(format!("unsafe path {path:?}")));
        }
        let mut sums = Checksums {
            size,
            ..Checksums::default()
        };
        sums.set_hex(kind, hex)
            .map_err(|e| invalid(e.to_string()))?;
        match self.index.get(&path) {
            Some(&i) => {
                let (p, old) = &mut self.entries[i];
                old.merge(p, &sums)
                    .map_err(|source| SumError::Conflict { line, source })?;
            }
            None => {
                self.index.insert(path.clone(), self.entries.len());
                self.entries.push((path, sums));
            }
        }
        Ok(())
    }
}

impl Release {
    /// Parses a Release file (not clearsigned; see [`split_clearsigned`]).
    /// Only the first paragraph is read, as apt does. Paths in the checksum
    /// lists must be safe relative paths ([`crate::path::is_safe_relative`]).
    pub fn parse(data: &[u8]) -> Result<Release, ReleaseError> {
        let par = match paragraphs(data).next() {
            Some(p) => p?,
            None => {
                return Err(ReleaseError::Invalid {
                    line: 1,
                    reason: "empty Release file".to_string(),
                });
            }
        };
        let text = |name: &str| par.get(name).map(str::to_string);
        let list = |name: &str| {
            par.get(name)
                .map(|v| v.split_ascii_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let mut sums = SumLists::default();
        sums.add_paragraph(&par, &RELEASE_SUM_FIELDS, "")?;
        Ok(Release {
            origin: text("Origin"),
            label: text("Label"),
            suite: text("Suite"),
            codename: text("Codename"),
            version: text("Version"),
            date: text("Date"),
            valid_until: text("Valid-Until"),
            architectures: list("Architectures"),
            components: list("Components"),
            acquire_by_hash: par
                .get("Acquire-By-Hash")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            no_support_for_architecture_all: par
                .get("No-Support-for-Architecture-all")
                .is_some_and(|v| v.eq_ignore_ascii_case("Packages")),
            entries: sums.entries.into_iter().collect(),
        })
    }

    /// Parses either a plain Release or a clearsigned InRelease (the
    /// signature is not checked here; see [`crate::signature`]).
    pub fn parse_any(data: &[u8]) -> Result<Release, ReleaseError> {
        if is_clearsigned(data) {
            Release::parse(&split_clearsigned(data)?.text)
        } else {
            Release::parse(data)
        }
    }

    /// `Date` as a time, if present and parseable.
    pub fn date_time(&self) -> Option<std::time::SystemTime> {
        self.date.as_deref().and_then(parse_date)
    }

    /// `Valid-Until` as a time, if present and parseable.
    pub fn valid_until_time(&self) -> Option<std::time::SystemTime> {
        self.valid_until.as_deref().and_then(parse_date)
    }
}

/// Parses a Release date: RFC 2822 style, e.g. `Sat, 10 Jun 2023 08:50:41 UTC`,
/// with the zone as `UTC`, `GMT`, `UT`, `Z` or a numeric offset like `+0000`;
/// the weekday is optional.
pub fn parse_date(s: &str) -> Option<std::time::SystemTime> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc2822(s) {
        return Some(t.into());
    }
    let (head, zone) = s.rsplit_once(' ')?;
    let zone = match zone {
        "UTC" | "GMT" | "UT" | "Z" => "+0000",
        z => z,
    };
    let normalised = format!("{} {zone}", head.trim_end());
    [
        "%a, %d %b %Y %H:%M:%S %z",
        "%d %b %Y %H:%M:%S %z",
        "%a, %d %b %Y %H:%M:%S%.f %z",
    ]
    .iter()
    .find_map(|fmt| chrono::DateTime::parse_from_str(&normalised, fmt).ok())
    .map(Into::into)
}

/// A clearsigned message split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearSigned {
    /// The signed text, dash-unescaped: the lines between the blank line
    /// that ends the armour headers and the `-----BEGIN PGP SIGNATURE-----`
    /// line, each with its original line end (LF or CRLF), except that the
    /// line break just before the signature line is not part of the text
    /// (RFC 4880 §7.1). A Release text thus usually lacks a final newline.
    pub text: Vec<u8>,
    /// The ASCII-armoured signature block, from `-----BEGIN PGP SIGNATURE-----`
    /// to `-----END PGP SIGNATURE-----` inclusive, with that line's line end if any.
    pub signature: Vec<u8>,
}

const BEGIN_SIGNED: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";
const BEGIN_SIGNATURE: &[u8] = b"-----BEGIN PGP SIGNATURE-----";
const END_SIGNATURE: &[u8] = b"-----END PGP SIGNATURE-----";

/// `line` without trailing spaces and tabs.
fn trim_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    &line[..end]
}

/// True when `data` starts (after white space) with a clearsign header.
pub fn is_clearsigned(data: &[u8]) -> bool {
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    data[start..].starts_with(BEGIN_SIGNED)
}

/// Splits a clearsigned InRelease into text and armoured signature.
///
/// Only white space may come before the `-----BEGIN PGP SIGNED MESSAGE-----`
/// line and after the `-----END PGP SIGNATURE-----` line; every text line
/// starting with `-` must be dash-escaped (`- `); armour header lines must
/// look like `Key: value`. Errors name the offending line.
pub fn split_clearsigned(data: &[u8]) -> Result<ClearSigned, ReleaseError> {
    let fail = |line: usize, what: &str| ReleaseError::ClearSign(format!("line {line}: {what}"));
    let mut pos = 0;
    let mut line = 0;
    // Leading blank lines.
    loop {
        if pos >= data.len() {
            return Err(fail(
                line.max(1),
                "no `-----BEGIN PGP SIGNED MESSAGE-----` line",
            ));
        }
        let (end, next) = line_at(data, pos);
        line += 1;
        let l = &data[pos..end];
        pos = next;
        if is_blank(l) {
            continue;
        }
        if trim_end(l.trim_ascii_start()) != BEGIN_SIGNED {
            return Err(fail(line, "expected `-----BEGIN PGP SIGNED MESSAGE-----`"));
        }
        break;
    }
    // Armour headers up to a blank line.
    loop {
        if pos >= data.len() {
            return Err(fail(line, "no blank line after the armour headers"));
        }
        let (end, next) = line_at(data, pos);
        line += 1;
        let l = &data[pos..end];
        pos = next;
        if is_blank(l) {
            break;
        }
        if memchr::memmem::find(l, b": ").is_none_or(|i| i == 0) {
            return Err(fail(line, "malformed armour header (expected `Hash: ...`)"));
        }
    }
    // Signed text up to the signature.
    let mut text = Vec::with_capacity(data.len());
    let sig_start = loop {
        if pos >= data.len() {
            return Err(fail(line, "no `-----BEGIN PGP SIGNATURE-----` line"));
        }
        let (end, next) = line_at(data, pos);
        line += 1;
        let l = &data[pos..end];
        if l.first() == Some(&b'-') {
            if l.starts_with(b"- ") {
                text.extend_from_slice(&data[pos + 2..next]);
            } else if trim_end(l) == BEGIN_SIGNATURE {
                break pos;
            } else {
                return Err(fail(line, "line starting with `-` is not dash-escaped"));
            }
        } else {
            text.extend_from_slice(&data[pos..next]);
        }
        pos = next;
    };
    if text.ends_with(b"\n") {
        text.pop();
        if text.ends_with(b"\r") {
            text.pop();
        }
    }
    // The armoured signature.
    let sig_end = loop {
        if pos >= data.len() {
            return Err(fail(line, "no `-----END PGP SIGNATURE-----` line"));
        }
        let (end, next) = line_at(data, pos);
        if pos != sig_start {
            line += 1;
        }
        let l = &data[pos..end];
        pos = next;
        if trim_end(l) == END_SIGNATURE {
            break next;
        }
    };
    if !data[sig_end..].iter().all(|b| b.is_ascii_whitespace()) {
        return Err(fail(line + 1, "data after `-----END PGP SIGNATURE-----`"));
    }
    Ok(ClearSigned {
        text,
        signature: data[sig_start..sig_end].to_vec(),
    })
}

/// The directory of a suite's Release, relative to the repository root:
/// `dists/<suite>` normally; for a flat suite (ending in `/`) the suite
/// itself without the slash (`"./"` and `"/"` → `""`, `"./sub/"` → `"sub"`).
pub fn suite_dir(suite: &str) -> String {
    if is_flat(suite) {
        let mut s = suite.trim_matches('/');
        while let Some(rest) = s.strip_prefix("./") {
            s = rest.trim_start_matches('/');
        }
        if s == "." {
            s = "";
        }
        s.to_string()
    } else {
        join("dists", suite)
    }
}

/// True for a flat-repository suite (ends in `/`).
pub fn is_flat(suite: &str) -> bool {
    suite.ends_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD5_A: &str = "900150983cd24fb0d6963f7d28e17f72";
    const SHA256_A: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn sample() -> String {
        format!(
            "Origin: Test\nLabel: L\nSuite: stable\nCodename: c\nVersion: 1\n\
             Date: Sat, 10 Jun 2023 08:50:41 UTC\nValid-Until: Sat, 17 Jun 2023 08:50:41 +0000\n\
             Architectures: amd64 arm64\nComponents: main contrib\nAcquire-By-Hash: yes\n\
             No-Support-for-Architecture-all: Packages\n\
             MD5Sum:\n {MD5_A} 3 main/a   \n {MD5_A} 3 main/only-md5\n\
             SHA256:\n {SHA256_A}        3 main/a\n"
        )
    }

    #[test]
    fn parses_fields_and_merges_lists() {
        let r = Release::parse(sample().as_bytes()).unwrap();
        assert_eq!(r.origin.as_deref(), Some("Test"));
        assert_eq!(r.suite.as_deref(), Some("stable"));
        assert_eq!(r.architectures, ["amd64", "arm64"]);
        assert_eq!(r.components, ["main", "contrib"]);
        assert!(r.acquire_by_hash && r.no_support_for_architecture_all);
        assert_eq!(r.entries.len(), 2);
        let a = &r.entries["main/a"];
        assert_eq!(a.kinds(), vec![HashKind::Md5, HashKind::Sha256]);
        assert_eq!(r.entries["main/only-md5"].kinds(), vec![HashKind::Md5]);
        let d = r.date_time().unwrap();
        assert_eq!(
            d.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            1686387041
        );
        let v = r.valid_until_time().unwrap();
        assert_eq!(v.duration_since(d).unwrap().as_secs(), 7 * 86400);
    }

    #[test]
    fn dates() {
        let t =
            |s| parse_date(s).map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs());
        assert_eq!(t("Sat, 10 Jun 2023 08:50:41 UTC"), Some(1686387041));
        assert_eq!(t("Sat, 10 Jun 2023 08:50:41 GMT"), Some(1686387041));
        assert_eq!(t("Sat, 10 Jun 2023 08:50:41 +0000"), Some(1686387041));
        assert_eq!(t("10 Jun 2023 08:50:41 UTC"), Some(1686387041));
        assert_eq!(t("Sat, 10 Jun 2023 10:50:41 +0200"), Some(1686387041));
        assert_eq!(t("yesterday"), None);
        assert_eq!(t(""), None);
    }

    #[test]
    fn conflicts_and_bad_lines_name_the_line() {
        let bad_size = format!("MD5Sum:\n {MD5_A} 3 a\nSHA256:\n {SHA256_A} 4 a\n");
        match Release::parse(bad_size.as_bytes()) {
            Err(ReleaseError::Conflict {
                line: 4,
                source: ChecksumError::Size { .. },
            }) => {}
            r => panic!("{r:?}"),
        }
        let dup = format!("MD5Sum:\n {MD5_A} 3 a\n {} 3 a\n", "0".repeat(32));
        match Release::parse(dup.as_bytes()) {
            Err(ReleaseError::Conflict {
                line: 3,
                source: ChecksumError::Hash { .. },
            }) => {}
            r => panic!("{r:?}"),
        }
        for (text, line) in [
            ("SHA256:\n abc 3 a\n", 2),
            ("SHA256:\n x\n", 2),
            (&*format!("SHA256:\n {SHA256_A} -3 a\n"), 2),
            (&*format!("SHA256:\n {SHA256_A} 3 ../a\n"), 2),
            (&*format!("A: b\nSHA256:\n {SHA256_A} 3 a b\n"), 3),
        ] {
            match Release::parse(text.as_bytes()) {
                Err(ReleaseError::Invalid { line: l, .. }) => assert_eq!(l, line, "{text}"),
                Err(ReleaseError::Deb822(crate::deb822::Deb822Error::Syntax {
                    line: l, ..
                })) => {
                    assert_eq!(l, line, "{text}")
                }
                r => panic!("{text}: {r:?}"),
            }
        }
        assert!(Release::parse(b"").is_err());
    }

    fn clearsign(text: &str, eol: &str) -> String {
        let escaped: Vec<String> = text
            .split('\n')
            .map(|l| {
                if l.starts_with('-') {
                    format!("- {l}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        format!(
            "-----BEGIN PGP SIGNED MESSAGE-----{eol}Hash: SHA256{eol}{eol}{}{eol}-----BEGIN PGP SIGNATURE-----{eol}{eol}iQIz{eol}=abcd{eol}-----END PGP SIGNATURE-----{eol}",
            escaped.join(eol)
        )
    }

    #[test]
    fn clearsigned_split() {
        let text = "Origin: x\n-dash: line\nSuite: y";
        let signed = clearsign(text, "\n");
        assert!(is_clearsigned(signed.as_bytes()));
        assert!(is_clearsigned(format!("\n  \n{signed}").as_bytes()));
        assert!(!is_clearsigned(text.as_bytes()));
        let cs = split_clearsigned(signed.as_bytes()).unwrap();
        assert_eq!(cs.text, text.as_bytes());
        assert!(cs.signature.starts_with(b"-----BEGIN PGP SIGNATURE-----\n"));
        assert!(cs.signature.ends_with(b"-----END PGP SIGNATURE-----\n"));
        let crlf = clearsign(text, "\r\n");
        let cs = split_clearsigned(crlf.as_bytes()).unwrap();
        assert_eq!(cs.text, text.replace('\n', "\r\n").as_bytes());
        let r = Release::parse_any(crlf.as_bytes()).unwrap();
        assert_eq!(r.suite.as_deref(), Some("y"));
    }

    #[test]
    fn clearsigned_errors() {
        let good = clearsign("A: b", "\n");
        let cases = [
            good.replace("Hash: SHA256\n\n", "Hash: SHA256\n"),
            good.replace("-----END PGP SIGNATURE-----\n", ""),
            good.replace("-----BEGIN PGP SIGNATURE-----", "-----BEGIN PGP SIGNATURE"),
            format!("{good}trailing"),
            format!("junk\n{good}"),
            good.replace("Hash: SHA256", "Hash SHA256"),
        ];
        for c in cases {
            assert!(
                matches!(
                    split_clearsigned(c.as_bytes()),
                    Err(ReleaseError::ClearSign(_))
                ),
                "{c}"
            );
        }
    }

    #[test]
    fn suite_dirs() {
        assert_eq!(suite_dir("bookworm"), "dists/bookworm");
        assert_eq!(suite_dir("bookworm/updates"), "dists/bookworm/updates");
        assert_eq!(suite_dir("./"), "");
        assert_eq!(suite_dir("/"), "");
        assert_eq!(suite_dir("flat/"), "flat");
        assert_eq!(suite_dir("./sub/dir/"), "sub/dir");
        assert!(is_flat("./") && !is_flat("stable"));
    }
}
