//! Unit tests of the fake upstream's own helpers (range parsing, path
//! resolution, wildcard matching).

use super::paths::*;
use std::path::{Path, PathBuf};

#[test]
fn wildcards() {
    assert!(wildcard_match("*/InRelease", "/dists/stable/InRelease"));
    assert!(!wildcard_match("*/InRelease", "/dists/stable/Release"));
    assert!(wildcard_match("*", "/x"));
    assert!(wildcard_match(
        "/pool/*.deb",
        "/pool/main/h/hello/hello_1_amd64.deb"
    ));
    assert!(!wildcard_match(
        "/pool/*.deb",
        "/pool/main/h/hello/hello.dsc"
    ));
    assert!(wildcard_match("/a*b*c", "/abc"));
    assert!(!wildcard_match("/a*a", "/a"));
    assert!(wildcard_match("/exact", "/exact"));
}

#[test]
fn ranges() {
    assert!(matches!(
        parse_range("bytes=0-9", 100),
        RangeResult::Partial(0, 9)
    ));
    assert!(matches!(
        parse_range("bytes=90-", 100),
        RangeResult::Partial(90, 99)
    ));
    assert!(matches!(
        parse_range("bytes=-10", 100),
        RangeResult::Partial(90, 99)
    ));
    assert!(matches!(
        parse_range("bytes=100-", 100),
        RangeResult::Unsatisfiable
    ));
    assert!(matches!(
        parse_range("bytes=5-500", 100),
        RangeResult::Partial(5, 99)
    ));
}

#[test]
fn resolve_refuses_escapes() {
    let root = Path::new("/srv");
    assert_eq!(resolve(root, "/a/b"), Some(PathBuf::from("/srv/a/b")));
    assert_eq!(resolve(root, "/a/../../etc/passwd"), None);
}
