//! URLs: a repository path joined under a base URL (each segment
//! percent-encoded as needed), and the host key (`host:port`) that per-host
//! limits and metrics count by.

pub use reqwest::Url;

use super::error::{HttpError, HttpErrorKind};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The bytes escaped in a path segment: everything but RFC 3986's `pchar`
/// (unreserved, sub-delims, `:` and `@`), so `g++_1:2~3.deb` stays as it
/// is and `%`, `/`, `?`, `#`, spaces, brackets and non-ASCII are escaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// The URL of `path` (relative, `/`-separated) under repository `base`,
/// each segment percent-encoded as needed. `base` has no query or
/// fragment (both binaries' configurations refuse them).
pub fn join(base: &Url, path: &str) -> Result<Url, HttpError> {
    let mut s = base.as_str().trim_end_matches('/').to_string();
    for seg in path.split('/') {
        s.push('/');
        s.extend(utf8_percent_encode(seg, SEGMENT));
    }
    Url::parse(&s).map_err(|e| HttpError {
        url: s.clone(),
        kind: HttpErrorKind::InvalidUrl,
        detail: format!("invalid URL: {e}"),
    })
}

/// `host:port` of `url` (the scheme's default port when none is given;
/// `?` for a URL without a host).
pub fn host_key(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or("?"),
        url.port_or_known_default().unwrap_or(0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding() {
        let base = Url::parse("http://h:8080/debian/").unwrap();
        assert_eq!(
            join(&base, "pool/main/g/g++/g++_1:2~3%4 x.deb")
                .unwrap()
                .as_str(),
            "http://h:8080/debian/pool/main/g/g++/g++_1:2~3%254%20x.deb"
        );
        assert_eq!(
            join(&base, "a b#c?d[e]|^\"\u{e9}/!$&'()*,;=@_.-")
                .unwrap()
                .as_str(),
            "http://h:8080/debian/a%20b%23c%3Fd%5Be%5D%7C%5E%22%C3%A9/!$&'()*,;=@_.-"
        );
        let base = Url::parse("http://h").unwrap();
        assert_eq!(
            join(&base, "dists/s/Release").unwrap().as_str(),
            "http://h/dists/s/Release"
        );
    }

    #[test]
    fn host_keys() {
        let key = |u: &str| host_key(&Url::parse(u).unwrap());
        assert_eq!(key("http://deb.example.org/debian"), "deb.example.org:80");
        assert_eq!(key("https://deb.example.org/debian"), "deb.example.org:443");
        assert_eq!(key("http://127.0.0.1:8080/x"), "127.0.0.1:8080");
        assert_eq!(key("http://[::1]:81/"), "[::1]:81");
    }
}
