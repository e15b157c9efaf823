//! The embedded default configuration used when no config file exists:
//! listen on 127.0.0.1:3142, cache under a per-user directory, and one
//! mapping per repository URI found in this machine's apt sources
//! (`sources.list`, `sources.list.d/*.list` one-line entries and deb822
//! `*.sources` files), each checking Release signatures with the keyring
//! files its sources name in `signed-by=` / `Signed-By:` (the union over
//! the sources of one URI; fingerprints and inline key blocks are not
//! keyring files and are not used). Also renders the lines a client puts
//! in its apt configuration, for both ways in.

use crate::config::{parse_upstream_url, Config, LogConfig, Mapping, Timeouts};
use aptindex::deb822::Deb822Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One repository found in the apt sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `deb` or `deb-src`.
    pub kind: String,
    /// The repository URI.
    pub uri: String,
    /// The suite.
    pub suite: String,
    /// The components.
    pub components: Vec<String>,
    /// The keyring files its `signed-by` option / `Signed-By` field names.
    pub signed_by: Vec<PathBuf>,
}

/// The keyring files among the values of a `signed-by` option or
/// `Signed-By` field: absolute paths (apt's rule for files; other values are
/// fingerprints, which select keys, or an inline key block, which is not a
/// file: neither is used).
pub fn signed_by_files(value: &str) -> Vec<PathBuf> {
    if value.contains("-----BEGIN PGP") {
        return Vec::new();
    }
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|v| v.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// Reads the apt sources under `etc_apt` (normally `/etc/apt`).
pub fn read_sources(etc_apt: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    if let Ok(text) = std::fs::read_to_string(etc_apt.join("sources.list")) {
        out.extend(parse_one_line(&text));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(etc_apt.join("sources.list.d"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        match f.extension().and_then(|e| e.to_str()) {
            Some("list") => out.extend(parse_one_line(&text)),
            Some("sources") => match parse_deb822(&text) {
                Ok(sources) => out.extend(sources),
                Err(e) => tracing::warn!(file = %f.display(), error = %e, "apt sources: not used"),
            },
            _ => {}
        }
    }
    out
}

/// Parses one-line-style entries: `deb [opts] uri suite [component...]`.
pub fn parse_one_line(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut rest = line;
        let Some((kind, r)) = rest.split_once(char::is_whitespace) else {
            continue;
        };
        if kind != "deb" && kind != "deb-src" {
            continue;
        }
        rest = r.trim_start();
        let mut signed_by = Vec::new();
        if rest.starts_with('[') {
            let Some(end) = rest.find(']') else { continue };
            for option in rest.get(1..end).unwrap_or("").split_whitespace() {
                if let Some(v) = option.strip_prefix("signed-by=") {
                    signed_by.extend(signed_by_files(v));
                }
            }
            rest = rest.get(end + 1..).unwrap_or("").trim_start();
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        out.push(Source {
            kind: kind.into(),
            uri: uri.into(),
            suite: suite.into(),
            components: words.map(str::to_string).collect(),
            signed_by,
        });
    }
    out
}

/// Parses deb822-style `.sources` paragraphs (with `aptindex::deb822`);
/// like apt, a file with a syntax error is not used at all.
pub fn parse_deb822(text: &str) -> Result<Vec<Source>, Deb822Error> {
    let mut out = Vec::new();
    for para in aptindex::deb822::paragraphs(text.as_bytes()) {
        let para = para?;
        let get = |k: &str| para.get(k).unwrap_or("");
        if get("Enabled").eq_ignore_ascii_case("no") {
            continue;
        }
        let components: Vec<String> = get("Components")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let signed_by = signed_by_files(get("Signed-By"));
        for kind in get("Types").split_whitespace() {
            for uri in get("URIs").split_whitespace() {
                for suite in get("Suites").split_whitespace() {
                    out.push(Source {
                        kind: kind.into(),
                        uri: uri.into(),
                        suite: suite.into(),
                        components: components.clone(),
                        signed_by: signed_by.clone(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// A mapping prefix for an upstream URL: host and path, sanitized to `[a-z0-9._-]`.
pub fn prefix_for(url: &reqwest::Url) -> String {
    let raw = format!("{}{}", url.host_str().unwrap_or("host"), url.path());
    let mut p: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    while p.contains("--") {
        p = p.replace("--", "-");
    }
    let p = p.trim_matches('-').to_string();
    if p.is_empty() {
        "repo".into()
    } else {
        p
    }
}

/// The per-user cache directory.
pub fn user_cache_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("apt-cacher");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h).join(".cache/apt-cacher");
    }
    PathBuf::from("/var/cache/apt-cacher")
}

/// Mappings for the http/https sources, one per distinct URI, each with
/// the union of its sources' `Signed-By` keyring files.
pub fn mappings_for(sources: &[Source]) -> Vec<Mapping> {
    let mut mappings: Vec<Mapping> = Vec::new();
    for s in sources {
        let Ok(url) = parse_upstream_url(&s.uri) else {
            continue;
        };
        if let Some(m) = mappings.iter_mut().find(|m| m.url == url) {
            for k in &s.signed_by {
                if !m.keyrings.contains(k) {
                    m.keyrings.push(k.clone());
                }
            }
            continue;
        }
        let base = prefix_for(&url);
        let mut prefix = base.clone();
        let mut n = 2;
        while mappings.iter().any(|m| m.prefix == prefix) {
            prefix = format!("{base}-{n}");
            n += 1;
        }
        mappings.push(Mapping {
            prefix,
            url,
            aliases: Vec::new(),
            redirect_hosts: Vec::new(),
            fallbacks: Vec::new(),
            keyrings: s.signed_by.clone(),
            local: None,
        });
    }
    mappings
}

/// The embedded default configuration, for the sources under `etc_apt`, caching under `dir`.
pub fn default_config(etc_apt: &Path, dir: &Path) -> (Config, Vec<Source>) {
    let sources = read_sources(etc_apt);
    let config = Config {
        listen: vec![std::net::SocketAddr::from(([127, 0, 0, 1], 3142)).into()],
        check_interval: Duration::from_secs(600),
        cache_period: Duration::from_secs(3),
        meta_dir: dir.join("meta"),
        cache_dir: dir.join("cache"),
        cache_capacity: 1 << 30,
        max_conns: 10,
        max_clients: crate::config::DEFAULT_MAX_CLIENTS,
        max_clients_per_host: crate::config::DEFAULT_MAX_CLIENTS_PER_HOST,
        log: LogConfig::default(),
        mappings: mappings_for(&sources),
        connect_allow: Vec::new(),
        generation_grace: Duration::from_secs(600),
        timeouts: Timeouts::default(),
        status_allow: None,
        max_index_entries: aptindex::index::bounded::DEFAULT_MAX_ENTRIES,
        unverified: Default::default(),
        revalidate_interval: std::time::Duration::from_secs(1),
        retention: crate::config::MAX_DURATION,
    };
    (config, sources)
}

/// The lines a client puts in its apt configuration, for both ways in.
pub fn client_lines(config: &Config, sources: &[Source]) -> String {
    let (host, port) = match config.listen.first() {
        Some(crate::config::ListenAddr::At(a)) if !a.ip().is_unspecified() => {
            // A URL's host: an IPv6 address in brackets.
            let host = match a.ip() {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            };
            (host, a.port())
        }
        Some(other) => ("CACHER-HOST".to_string(), other.port()),
        None => ("CACHER-HOST".to_string(), 3142),
    };
    let base = format!("http://{host}:{port}");
    let mut s = String::from("Path-prefix mode (in /etc/apt/sources.list):\n");
    for src in sources {
        let Ok(url) = parse_upstream_url(&src.uri) else {
            continue;
        };
        if let Some(m) = config.mappings.iter().find(|m| m.url == url) {
            s.push_str(&format!(
                "  {} {base}/{} {} {}\n",
                src.kind,
                m.prefix,
                src.suite,
                src.components.join(" ")
            ));
        }
    }
    if sources.is_empty() {
        for m in &config.mappings {
            s.push_str(&format!(
                "  deb {base}/{} SUITE COMPONENTS   # for {}\n",
                m.prefix, m.url
            ));
        }
    }
    s.push_str(&format!(
        "Proxy mode (in /etc/apt/apt.conf.d/01proxy; keep your sources as they are):\n  Acquire::http::Proxy \"{base}/\";\n"
    ));
    if config.mappings.iter().any(|m| m.url.scheme() == "https") {
        s.push_str("  (https sources in proxy mode: write them as http://HTTPS///host/path)\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_both_formats() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("sources.list"),
            "# c\ndeb http://deb.example/debian bookworm main contrib\ndeb [arch=amd64 signed-by=/k.gpg] https://Sec.example/debian-security/ bookworm-security main\ndeb cdrom:[x]/ bookworm main\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("sources.list.d")).unwrap();
        std::fs::write(
            dir.path().join("sources.list.d/debian.sources"),
            "Types: deb deb-src\nURIs: http://deb.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/x.gpg\n\nTypes: deb\nURIs: http://off.example/x\nSuites: s\nEnabled: no\n",
        )
        .unwrap();
        let (config, sources) = default_config(dir.path(), Path::new("/tmp/ac"));
        assert_eq!(sources.len(), 3 + 4);
        let prefixes: Vec<_> = config.mappings.iter().map(|m| m.prefix.as_str()).collect();
        assert_eq!(
            prefixes,
            ["deb.example-debian", "sec.example-debian-security"]
        );
        let lines = client_lines(&config, &sources);
        assert!(
            lines.contains("deb http://127.0.0.1:3142/deb.example-debian bookworm main contrib"),
            "{lines}"
        );
        assert!(
            lines.contains("Acquire::http::Proxy \"http://127.0.0.1:3142/\";"),
            "{lines}"
        );
        for m in &config.mappings {
            assert!(crate::config::valid_prefix(&m.prefix));
        }
        // Signed-By: the files, the union over one URI's sources.
        assert_eq!(
            config.mappings[0].keyrings,
            [PathBuf::from("/usr/share/keyrings/x.gpg")]
        );
        assert_eq!(config.mappings[1].keyrings, [PathBuf::from("/k.gpg")]);
    }

    #[test]
    fn signed_by_files_only() {
        assert_eq!(
            signed_by_files("/a.gpg,/b.asc 0123456789ABCDEF0123456789ABCDEF01234567"),
            [PathBuf::from("/a.gpg"), PathBuf::from("/b.asc")]
        );
        assert!(signed_by_files("-----BEGIN PGP PUBLIC KEY BLOCK-----\n.\nmQINBF...").is_empty());
        let one_line = parse_one_line(
            "deb [signed-by=/x.gpg,/y.gpg arch=amd64] http://a.example/d s main\ndeb http://b.example/d s main\n",
        );
        assert_eq!(
            one_line[0].signed_by,
            [PathBuf::from("/x.gpg"), PathBuf::from("/y.gpg")]
        );
        assert!(one_line[1].signed_by.is_empty());
        let union = mappings_for(&[
            one_line[0].clone(),
            Source {
                signed_by: vec![PathBuf::from("/z.gpg"), PathBuf::from("/x.gpg")],
                ..one_line[0].clone()
            },
        ]);
        assert_eq!(
            union[0].keyrings,
            ["/x.gpg", "/y.gpg", "/z.gpg"].map(PathBuf::from)
        );
    }
}
