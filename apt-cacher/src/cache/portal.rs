//! What a download may be, besides verified: a file no index lists is
//! capped at `max_unverified_size` (an endless body once evicted every
//! verified file), and an HTML page (a captive portal's login page, an
//! error page with status 200) answered for a package or an index is never
//! cached. A listed file would fail verification anyway, so only unlisted
//! ones are checked (a listed one with a wrong `Content-Type` still
//! verifies); this catches them, and says why.

/// What to do with an HTML answer for a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HtmlAnswer {
    /// Not HTML (or not recognisably so).
    Fine,
    /// HTML for a package or an index: refused, nothing cached. The client
    /// gets 502 when the `Content-Type` says HTML; when only the body's
    /// first bytes do, 502 if its headers are not out yet, otherwise a
    /// response that ends in error (never a complete file).
    Refuse,
    /// HTML for another file: passed through with a warning, not cached.
    PassUncached,
}

/// True when repository path `path` (or `mapping/path`) names a package,
/// a source package part, or APT metadata: never legitimately HTML.
pub fn is_package_or_index(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let package = [".deb", ".udeb", ".ddeb", ".dsc"]
        .iter()
        .any(|ext| name.ends_with(ext))
        || name.contains(".tar.")
        || name.ends_with(".tar")
        || name.ends_with(".diff.gz");
    let index = path.starts_with("dists/")
        || path.contains("/dists/")
        || ["Packages", "Sources", "Release", "InRelease", "Index"]
            .iter()
            .any(|p| name.starts_with(p));
    package || index
}

/// True when `content_type` (a `Content-Type` header value) is HTML.
pub fn is_html_type(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("text/html") || mime.eq_ignore_ascii_case("application/xhtml+xml")
}

/// True when `body` (its first bytes) starts like an HTML document.
pub fn looks_like_html(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let head = body.get(start..).unwrap_or_default();
    let head = head.get(..head.len().min(14)).unwrap_or_default();
    let lower = head.to_ascii_lowercase();
    lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html")
}

/// What to do with `what` (mapping and path) when its answer's type or
/// first bytes are HTML (`html`).
pub fn html_answer(what: &str, html: bool) -> HtmlAnswer {
    match (html, is_package_or_index(what)) {
        (false, _) => HtmlAnswer::Fine,
        (true, true) => HtmlAnswer::Refuse,
        (true, false) => HtmlAnswer::PassUncached,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for p in [
            "m/pool/main/a/a_1_amd64.deb",
            "m/pool/main/a/a_1.dsc",
            "m/pool/main/a/a_1.orig.tar.xz",
            "m/pool/d-i/x.udeb",
            "m/dists/stable/main/binary-amd64/Packages.xz",
            "m/dists/stable/InRelease",
        ] {
            assert!(is_package_or_index(p), "{p}");
        }
        for p in [
            "m/pool/main/a/README.html",
            "m/doc/index.html",
            "m/pool/x.txt",
        ] {
            assert!(!is_package_or_index(p), "{p}");
        }
    }

    #[test]
    fn html() {
        assert!(is_html_type("text/html; charset=utf-8"));
        assert!(is_html_type("TEXT/HTML"));
        assert!(!is_html_type("application/vnd.debian.binary-package"));
        assert!(!is_html_type("application/octet-stream"));
        assert!(looks_like_html(b"<!DOCTYPE html><html>"));
        assert!(looks_like_html(b"\n  <HTML><head>"));
        assert!(looks_like_html(b"\xEF\xBB\xBF<html>"));
        assert!(!looks_like_html(b"!<arch>\ndebian-binary"));
        assert!(!looks_like_html(b""));
        assert_eq!(html_answer("m/pool/a.deb", true), HtmlAnswer::Refuse);
        assert_eq!(html_answer("m/pool/a.html", true), HtmlAnswer::PassUncached);
        assert_eq!(html_answer("m/pool/a.deb", false), HtmlAnswer::Fine);
    }
}
