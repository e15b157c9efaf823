//! The fake upstream's request-path helpers: `Range` header parsing,
//! percent-decoding, mapping a URL path to a file under the served
//! directory without escaping it, and the `*` patterns that faults, hooks
//! and counters match paths with.

use std::path::{Component, Path, PathBuf};

pub(super) enum RangeResult {
    Full,
    Partial(u64, u64),
    Unsatisfiable,
}

/// Parses a single `bytes=` range; multi-ranges and junk are answered in full.
pub(super) fn parse_range(value: &str, len: u64) -> RangeResult {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeResult::Full;
    };
    if spec.contains(',') {
        return RangeResult::Full;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeResult::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // suffix: last b bytes
        let Ok(n) = b.parse::<u64>() else {
            return RangeResult::Full;
        };
        if n == 0 || len == 0 {
            return RangeResult::Unsatisfiable;
        }
        let n = n.min(len);
        return RangeResult::Partial(len - n, len - 1);
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeResult::Full;
    };
    if start >= len {
        return RangeResult::Unsatisfiable;
    }
    let end = if b.is_empty() {
        len - 1
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e.min(len - 1),
            _ => return RangeResult::Full,
        }
    };
    RangeResult::Partial(start, end)
}

/// Maps a decoded URL path to a file under `root`, refusing anything that escapes it.
pub(super) fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = Path::new(path.trim_start_matches('/'));
    let mut out = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

pub(super) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (also `/`).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}
