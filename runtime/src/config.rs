//! Helpers both binaries' configuration parsers share to say *where* an
//! error is: the line of a byte offset (toml reports spans), the key a
//! serde message names, the key on a line, and the [`Location`]
//! (`file:line`) an error message opens with; the full key of a position
//! and serde's type names in a user's words ([`key_path`]); a one-or-many
//! string key ([`OneOrMany`]). The configuration structs themselves stay in
//! each binary.

mod key_path;
mod one_or_many;
pub use key_path::{explain, key_path_at};
pub use one_or_many::OneOrMany;

use std::fmt;
use std::ops::Range;

/// 1-based line of byte `offset` in `text` (past the end: the last line).
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The key a serde message names, such as "unknown field `foo`, expected
/// ...", "missing field `url`" or "duplicate field `dir`"; `None` for
/// messages about a value (an unknown variant names the value, not a key).
pub fn key_in_message(msg: &str) -> Option<String> {
    let msg = msg.trim_start();
    let about_a_key = ["unknown field `", "missing field `", "duplicate field `"]
        .iter()
        .any(|p| msg.starts_with(p));
    if !about_a_key {
        return None;
    }
    let start = msg.find('`')? + 1;
    let len = msg.get(start..)?.find('`')?;
    msg.get(start..start + len).map(str::to_string)
}

/// The key on the line holding byte `offset`, if the line looks like `key = ...`.
pub fn key_at(text: &str, offset: usize) -> Option<String> {
    let start = text
        .get(..offset.min(text.len()))?
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text.get(start..)?.lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty()).then(|| key.to_string())
}

/// The span of the first line assigning `key` (for errors found after parsing).
pub fn key_span(text: &str, key: &str) -> Option<Range<usize>> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.split_once('=').is_some_and(|(k, _)| k.trim() == key) {
            return Some(offset..offset + line.len());
        }
        offset += line.len();
    }
    None
}

/// A deserialization error of a TOML file, told for a user: its line, the
/// full key it is about, and the message with serde's type names explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlProblem {
    /// 1-based line; 0 when unknown.
    pub line: usize,
    /// The key's components (`["mapping", "debian", "url"]`), when known.
    pub key: Option<Vec<String>>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl TomlProblem {
    /// The problem toml reports as `message` at `span` of `text`.
    pub fn of(text: &str, span: Option<Range<usize>>, message: &str) -> TomlProblem {
        let message = explain(message);
        let start = span.as_ref().map(|s| s.start);
        let mut key = start
            .and_then(|at| key_path_at(text, at))
            .or_else(|| start.and_then(|at| key_at(text, at)).map(|k| vec![k]));
        // "unknown field `x`" or "missing field `x`" about a table: the
        // field is the key.
        if let Some(named) = key_in_message(&message) {
            match &mut key {
                Some(path) if path.last() != Some(&named) => path.push(named),
                Some(_) => {}
                None => key = Some(vec![named]),
            }
        }
        TomlProblem {
            line: start.map_or(0, |at| line_of(text, at)),
            key,
            message,
        }
    }

    /// The key, dotted (`mapping.debian.url`).
    pub fn dotted_key(&self) -> Option<String> {
        self.key.as_ref().map(|k| k.join("."))
    }
}

/// Where in a configuration file: `file:line`, or `file` alone when the
/// line is unknown (0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as the user named it.
    pub file: String,
    /// 1-based line; 0 when unknown.
    pub line: usize,
}

impl Location {
    /// The location of `span` (a byte range of `text`) in `file`.
    pub fn of(file: impl Into<String>, text: &str, span: Option<Range<usize>>) -> Location {
        Location {
            file: file.into(),
            line: span.map_or(0, |s| line_of(text, s.start)),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}", self.file, self.line)
        } else {
            f.write_str(&self.file)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_keys() {
        let text = "a = 1\nbb = 2\n[t]\nc=3";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 6), 2);
        assert_eq!(line_of(text, 10_000), 4);
        assert_eq!(key_at(text, 7).as_deref(), Some("bb"));
        assert_eq!(key_at(text, 15), None);
        assert_eq!(key_span(text, "c"), Some(17..20));
        assert_eq!(
            key_in_message("unknown field `sectoin`, expected one of `url`, `suites`").as_deref(),
            Some("sectoin")
        );
        assert_eq!(
            key_in_message("missing field `url`").as_deref(),
            Some("url")
        );
        assert_eq!(key_in_message("unknown variant `x`, expected `a`"), None);
        assert_eq!(
            key_in_message("invalid type: string \"x\", expected u64"),
            None
        );
    }

    #[test]
    fn location_omits_an_unknown_line() {
        assert_eq!(
            Location::of("/etc/x.toml", "a\nb", Some(2..3)).to_string(),
            "/etc/x.toml:2"
        );
        assert_eq!(
            Location::of("/etc/x.toml", "a\nb", None).to_string(),
            "/etc/x.toml"
        );
    }
}
