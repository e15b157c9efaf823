//! Routing: which mapping and repository path a request is for. Three ways
//! in lead to the same cache entry: the prefix form `/PREFIX/path`, the
//! forward-proxy form `http://upstream-host/base/path` (for the mapping's URL,
//! its fallback URLs or any alias), and apt-cacher-ng's `http://HTTPS///host/base/path` for
//! https upstreams. Everything else in proxy form is refused (this is not an
//! open proxy); `CONNECT` is refused unless the target is in `connect_allow`;
//! methods other than GET and HEAD are not implemented; paths that could
//! escape a directory are rejected.

use crate::config::Mapping;
use hyper::{Method, StatusCode, Uri};
use reqwest::Url;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A file of a mapping.
    File {
        /// Index into the router's mappings.
        mapping: usize,
        /// The repository path, percent-decoded, relative, checked safe.
        path: String,
    },
    /// A `CONNECT` tunnel to an allowed `host:port`.
    Connect(String),
    /// A refusal.
    Refuse(StatusCode, &'static str),
}

/// The routing table.
#[derive(Debug, Clone)]
pub struct Router {
    mappings: Vec<Mapping>,
    connect_allow: Vec<String>,
    self_ports: Vec<u16>,
}

/// Percent-decodes a URL path; `None` when the escapes are malformed or
/// the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    // The crate passes a malformed escape (`%zz`, `%4`) through as it is:
    // such a path is refused instead. Two hex digits only (`%+1` is not one).
    let well_formed = s.match_indices('%').all(|(i, _)| {
        s.get(i + 1..i + 3)
            .is_some_and(|hex| hex.bytes().all(|c| c.is_ascii_hexdigit()))
    });
    if !well_formed {
        return None;
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|p| p.into_owned())
}

/// True when `path` is a safe relative repository path: the one rule,
/// [`aptindex::path::is_safe_relative`] (no empty, `.` or `..` component,
/// no backslash, and no control character: a decoded `%0A` would forge log
/// lines, and the `url` crate silently drops `\n\r\t`, so upstream would be
/// asked for another file than the one cached).
pub use aptindex::path::is_safe_relative as safe_path;

/// The default port of a scheme.
fn default_port(scheme: &str) -> u16 {
    if scheme == "https" {
        443
    } else {
        80
    }
}

impl Router {
    /// A router over `mappings`.
    pub fn new(mappings: Vec<Mapping>, connect_allow: Vec<String>) -> Router {
        Router {
            mappings,
            connect_allow,
            self_ports: Vec::new(),
        }
    }

    /// Adds a port the cacher listens on: a proxy-form request to such a
    /// port whose path starts with a mapping prefix is served as the prefix
    /// form (a client with both a proxy setting and prefix sources).
    pub fn set_self_port(&mut self, port: u16) {
        if !self.self_ports.contains(&port) {
            self.self_ports.push(port);
        }
    }

    /// The mappings, in configuration order.
    pub fn mappings(&self) -> &[Mapping] {
        &self.mappings
    }

    /// The upstream URL of `path` in mapping `index`: the one URL joining,
    /// [`runtime::http::join`] (each segment percent-encoded as needed).
    pub fn upstream_url(&self, index: usize, path: &str) -> Option<Url> {
        runtime::http::join(&self.mappings.get(index)?.url, path).ok()
    }

    /// Routes a request.
    pub fn route(&self, method: &Method, uri: &Uri) -> Route {
        if method == Method::CONNECT {
            let target = uri
                .authority()
                .map(|a| a.as_str().to_ascii_lowercase())
                .unwrap_or_default();
            return if self.connect_allow.contains(&target) {
                Route::Connect(target)
            } else {
                Route::Refuse(StatusCode::FORBIDDEN, "CONNECT is not allowed to this host")
            };
        }
        if method != Method::GET && method != Method::HEAD {
            return Route::Refuse(
                StatusCode::NOT_IMPLEMENTED,
                "only GET and HEAD are supported",
            );
        }
        match uri.scheme_str() {
            None => self.route_prefix(uri.path()),
            Some("http") => self.route_proxy(uri),
            Some(_) => Route::Refuse(StatusCode::FORBIDDEN, "not a mapped upstream"),
        }
    }

    fn route_prefix(&self, raw_path: &str) -> Route {
        let Some(rest) = raw_path.strip_prefix('/') else {
            return Route::Refuse(StatusCode::BAD_REQUEST, "bad request path");
        };
        let (prefix, path) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(mapping) = self.mappings.iter().position(|m| m.prefix == prefix) else {
            return Route::Refuse(StatusCode::NOT_FOUND, "no such mapping prefix");
        };
        self.file(mapping, path)
    }

    fn file(&self, mapping: usize, raw: &str) -> Route {
        // `.` components are harmless (apt asks for `./InRelease` of a flat
        // repository): drop them; `..` and empty components are refused.
        let path = percent_decode(raw).map(|p| {
            p.split('/')
                .filter(|c| *c != ".")
                .collect::<Vec<_>>()
                .join("/")
        });
        match path {
            Some(path) if safe_path(&path) => Route::File { mapping, path },
            _ => Route::Refuse(StatusCode::BAD_REQUEST, "bad repository path"),
        }
    }

    fn route_proxy(&self, uri: &Uri) -> Route {
        let Some(host) = uri.host() else {
            return Route::Refuse(StatusCode::BAD_REQUEST, "no host");
        };
        let raw_path = uri.path();
        // apt-cacher-ng's form for https upstreams: http://HTTPS///host/path
        let (scheme, host, port, path) =
            if host.eq_ignore_ascii_case("https") && uri.port().is_none() {
                let Some(rest) = raw_path
                    .strip_prefix("///")
                    .or_else(|| raw_path.strip_prefix("//"))
                else {
                    return Route::Refuse(StatusCode::FORBIDDEN, "not a mapped upstream");
                };
                let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
                let (h, p) = match authority.rsplit_once(':') {
                    Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                        match p.parse::<u16>() {
                            Ok(p) => (h, p),
                            Err(_) => (authority, 443),
                        }
                    }
                    _ => (authority, 443),
                };
                ("https", h.to_string(), p, format!("/{path}"))
            } else {
                (
                    "http",
                    host.to_string(),
                    uri.port_u16().unwrap_or(80),
                    raw_path.to_string(),
                )
            };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        // An IPv6 address in its canonical form, as the mapping's URL has it
        // (`[0:0::1]` is `[::1]`).
        let host = host
            .parse::<std::net::Ipv6Addr>()
            .map_or(host, |a| a.to_string());
        for (i, m) in self.mappings.iter().enumerate() {
            for url in std::iter::once(&m.url)
                .chain(&m.fallbacks)
                .chain(&m.aliases)
            {
                let url_host = url
                    .host_str()
                    .unwrap_or("")
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                if url.scheme() != scheme
                    || !url_host.eq_ignore_ascii_case(&host)
                    || url.port().unwrap_or(default_port(url.scheme())) != port
                {
                    continue;
                }
                let base = url.path().trim_end_matches('/');
                if let Some(rest) = path.strip_prefix(base).and_then(|r| r.strip_prefix('/')) {
                    return self.file(i, rest);
                }
            }
        }
        if uri.port_u16().is_some_and(|p| self.self_ports.contains(&p)) {
            if let Route::File { mapping, path } = self.route_prefix(raw_path) {
                return Route::File { mapping, path };
            }
        }
        Route::Refuse(
            StatusCode::FORBIDDEN,
            "not a mapped upstream (this is not an open proxy)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_upstream_url;

    fn router() -> Router {
        let m = |p: &str, u: &str, a: &[&str]| Mapping {
            prefix: p.into(),
            url: parse_upstream_url(u).unwrap(),
            aliases: a.iter().map(|a| parse_upstream_url(a).unwrap()).collect(),
            redirect_hosts: Vec::new(),
            fallbacks: Vec::new(),
            keyrings: Vec::new(),
            local: None,
        };
        Router::new(
            vec![
                m(
                    "debian",
                    "http://deb.example/debian",
                    &["http://mirror.example:8080/deb/"],
                ),
                m("sec", "https://sec.example/debian-security", &[]),
                m("root", "http://root.example/", &[]),
            ],
            vec!["tunnel.example:443".into()],
        )
    }

    fn route(method: Method, uri: &str) -> Route {
        router().route(&method, &uri.parse::<Uri>().unwrap())
    }

    fn file(mapping: usize, path: &str) -> Route {
        Route::File {
            mapping,
            path: path.into(),
        }
    }

    #[test]
    fn routing_table() {
        let cases: &[(Method, &str, Route)] = &[
            (
                Method::GET,
                "/debian/dists/bookworm/InRelease",
                file(0, "dists/bookworm/InRelease"),
            ),
            (
                Method::HEAD,
                "/debian/pool/main/a/a_1%3a2_amd64.deb",
                file(0, "pool/main/a/a_1:2_amd64.deb"),
            ),
            (
                Method::GET,
                "http://deb.example/debian/dists/x/Release",
                file(0, "dists/x/Release"),
            ),
            (
                Method::GET,
                "http://DEB.example:80/debian/dists/x/Release",
                file(0, "dists/x/Release"),
            ),
            (
                Method::GET,
                "http://mirror.example:8080/deb/pool/a.deb",
                file(0, "pool/a.deb"),
            ),
            (
                Method::GET,
                "http://HTTPS///sec.example/debian-security/dists/x/InRelease",
                file(1, "dists/x/InRelease"),
            ),
            (
                Method::GET,
                "http://root.example/dists/x/InRelease",
                file(2, "dists/x/InRelease"),
            ),
            (Method::GET, "/root/pool/a.deb", file(2, "pool/a.deb")),
            (Method::GET, "/root/./InRelease", file(2, "InRelease")),
            (
                Method::GET,
                "http://deb.example/other/x",
                Route::Refuse(StatusCode::FORBIDDEN, ""),
            ),
            (
                Method::GET,
                "http://deb.example:81/debian/x",
                Route::Refuse(StatusCode::FORBIDDEN, ""),
            ),
            (
                Method::GET,
                "http://evil.example/debian/x",
                Route::Refuse(StatusCode::FORBIDDEN, ""),
            ),
            (
                Method::GET,
                "http://sec.example/debian-security/x",
                Route::Refuse(StatusCode::FORBIDDEN, ""),
            ),
            (
                Method::GET,
                "/nope/x",
                Route::Refuse(StatusCode::NOT_FOUND, ""),
            ),
            (
                Method::GET,
                "/debian/../etc/passwd",
                Route::Refuse(StatusCode::BAD_REQUEST, ""),
            ),
            (
                Method::GET,
                "/debian/pool/%2e%2e/%2e%2e/x",
                Route::Refuse(StatusCode::BAD_REQUEST, ""),
            ),
            (
                Method::GET,
                "/debian/pool/%2",
                Route::Refuse(StatusCode::BAD_REQUEST, ""),
            ),
            (
                Method::GET,
                "/debian/",
                Route::Refuse(StatusCode::BAD_REQUEST, ""),
            ),
            (
                Method::GET,
                "/debian//x",
                Route::Refuse(StatusCode::BAD_REQUEST, ""),
            ),
            (
                Method::GET,
                "/debian/pool/a%0A2026-11-27T00:00:00Z%20ERROR%20forged.deb",
                Route::Refuse(StatusCode::BAD_REQUEST, ""),
            ),
            (
                Method::GET,
                "/debian/pool/a%0d.deb",
                Route::Refuse(StatusCode::BAD_REQUEST, ""),
            ),
            (
                Method::GET,
                "/debian/pool/a%09b.deb",
                Route::Refuse(StatusCode::BAD_REQUEST, ""),
            ),
            (
                Method::GET,
                "/debian/pool/a%7f.deb",
                Route::Refuse(StatusCode::BAD_REQUEST, ""),
            ),
            (
                Method::GET,
                "/debian/pool/a%+1.deb",
                Route::Refuse(StatusCode::BAD_REQUEST, ""),
            ),
            (
                Method::GET,
                "http://deb.example/debian/pool/a%0A.deb",
                Route::Refuse(StatusCode::BAD_REQUEST, ""),
            ),
            (
                Method::POST,
                "/debian/x",
                Route::Refuse(StatusCode::NOT_IMPLEMENTED, ""),
            ),
            (
                Method::CONNECT,
                "tunnel.example:443",
                Route::Connect("tunnel.example:443".into()),
            ),
            (
                Method::CONNECT,
                "other.example:443",
                Route::Refuse(StatusCode::FORBIDDEN, ""),
            ),
        ];
        for (method, uri, want) in cases {
            let got = route(method.clone(), uri);
            match (&got, want) {
                (Route::Refuse(a, _), Route::Refuse(b, _)) => {
                    assert_eq!(a, b, "{method} {uri}: {got:?}")
                }
                _ => assert_eq!(&got, want, "{method} {uri}"),
            }
        }
    }

    #[test]
    fn proxy_form_to_the_cacher_itself_is_the_prefix_form() {
        let mut r = router();
        r.set_self_port(3142);
        let uri: Uri = "http://cacher.example:3142/debian/pool/a.deb"
            .parse()
            .unwrap();
        assert_eq!(r.route(&Method::GET, &uri), file(0, "pool/a.deb"));
        let uri: Uri = "http://cacher.example:3142/nope/x".parse().unwrap();
        assert!(matches!(
            r.route(&Method::GET, &uri),
            Route::Refuse(StatusCode::FORBIDDEN, _)
        ));
    }

    #[test]
    fn ipv6_upstreams_and_several_self_ports() {
        let m = |p: &str, u: &str| Mapping {
            prefix: p.into(),
            url: parse_upstream_url(u).unwrap(),
            aliases: Vec::new(),
            redirect_hosts: Vec::new(),
            fallbacks: Vec::new(),
            keyrings: Vec::new(),
            local: None,
        };
        let mut r = Router::new(
            vec![
                m("six", "http://[::1]:8080/debian"),
                m("sixs", "https://[2001:db8::1]/debian"),
            ],
            Vec::new(),
        );
        r.set_self_port(3142);
        r.set_self_port(3143);
        let route = |uri: &str| r.route(&Method::GET, &uri.parse::<Uri>().unwrap());
        assert_eq!(
            route("http://[::1]:8080/debian/pool/a.deb"),
            file(0, "pool/a.deb")
        );
        assert_eq!(route("http://[0:0::1]:8080/debian/x"), file(0, "x"));
        assert!(matches!(
            route("http://[::1]:8081/debian/pool/a.deb"),
            Route::Refuse(StatusCode::FORBIDDEN, _)
        ));
        assert_eq!(
            route("http://HTTPS///[2001:db8::1]/debian/pool/a.deb"),
            file(1, "pool/a.deb")
        );
        // The cacher itself, on either of its ports, by an IPv6 address.
        assert_eq!(route("http://[::1]:3142/six/y"), file(0, "y"));
        assert_eq!(route("http://[::1]:3143/six/y"), file(0, "y"));
        assert_eq!(
            r.upstream_url(0, "dists/x/InRelease").unwrap().as_str(),
            "http://[::1]:8080/debian/dists/x/InRelease"
        );
    }

    #[test]
    fn proxy_form_naming_a_fallback_is_the_mapping() {
        let m = Mapping {
            prefix: "debian".into(),
            url: parse_upstream_url("http://a.example/debian").unwrap(),
            aliases: Vec::new(),
            redirect_hosts: Vec::new(),
            fallbacks: vec![parse_upstream_url("http://b.example:8080/mirror/debian").unwrap()],
            keyrings: Vec::new(),
            local: None,
        };
        let r = Router::new(vec![m], Vec::new());
        let route = |uri: &str| r.route(&Method::GET, &uri.parse::<Uri>().unwrap());
        assert_eq!(
            route("http://b.example:8080/mirror/debian/pool/a.deb"),
            file(0, "pool/a.deb")
        );
        assert_eq!(
            route("http://a.example/debian/pool/a.deb"),
            file(0, "pool/a.deb")
        );
        assert!(matches!(
            route("http://b.example/mirror/debian/pool/a.deb"),
            Route::Refuse(StatusCode::FORBIDDEN, _)
        ));
        // Requests go to `url`; failover.rs moves them to the fallback.
        assert_eq!(
            r.upstream_url(0, "pool/a.deb").unwrap().as_str(),
            "http://a.example/debian/pool/a.deb"
        );
    }

    #[test]
    fn upstream_urls_are_escaped() {
        let r = router();
        assert_eq!(
            r.upstream_url(0, "pool/a_1:2+b~1.deb").unwrap().as_str(),
            "http://deb.example/debian/pool/a_1:2+b~1.deb"
        );
        assert_eq!(
            r.upstream_url(2, "dists/x/InRelease").unwrap().as_str(),
            "http://root.example/dists/x/InRelease"
        );
        assert_eq!(
            r.upstream_url(0, "pool/a b#c.deb").unwrap().as_str(),
            "http://deb.example/debian/pool/a%20b%23c.deb"
        );
        assert_eq!(
            r.upstream_url(0, "pool/a%b?c\u{e9}.deb").unwrap().as_str(),
            "http://deb.example/debian/pool/a%25b%3Fc%C3%A9.deb"
        );
        assert_eq!(
            r.upstream_url(0, "").unwrap().as_str(),
            "http://deb.example/debian/"
        );
    }
}
