//! The configuration file, `mirror.toml`: the go-apt-mirror format unchanged
//! (`dir`, `max_conns`, `[log]`, `[mirror.ID]` with `url`, `suites`,
//! `sections`, `architectures`, `mirror_source`) plus optional keys
//! (`keyring`, `languages`, `contents`, `keep`, `check_valid_until` per
//! mirror; an `[http]` table of
//! timeouts and retries; `progress_interval`).
//!
//! Parsing is strict: unknown keys are errors, and every error names the file,
//! the line, and where it applies the mirror and the key.

use runtime::config::{line_of, Location, OneOrMany, TomlProblem};
use runtime::http::RedirectHost;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// The default configuration file.
pub const DEFAULT_PATH: &str = "/etc/apt/mirror.toml";

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The mirror root: `<dir>/.lock`, `<dir>/<ID>` symlinks, snapshots.
    pub dir: PathBuf,
    /// Maximum concurrent connections per upstream host; 0 = unlimited.
    pub max_conns: usize,
    /// `[log]`.
    pub log: LogConfig,
    /// `[http]`: timeouts and retries.
    pub http: HttpConfig,
    /// Interval between progress log lines when not on a terminal.
    pub progress_interval: Duration,
    /// The mirrors, by ID.
    pub mirrors: BTreeMap<String, MirrorConfig>,
}

/// `[log]`, as go-apt-mirror (cybozu-go/well) has it (the same table in both binaries).
pub use runtime::logging::LogConfig;

/// `[http]`: how upstreams are contacted.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Longest wait for response headers or for the next body chunk.
    pub read_timeout: Duration,
    /// Overall cap for one file's download (one attempt).
    pub download_timeout: Duration,
    /// Retries after a network error, a timeout or a 5xx.
    pub retries: u32,
    /// First backoff delay; doubles at each retry.
    pub retry_delay: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            download_timeout: Duration::from_secs(3600),
            retries: 3,
            retry_delay: Duration::from_millis(500),
        }
    }
}

/// One `[mirror.ID]`.
#[derive(Debug, Clone)]
pub struct MirrorConfig {
    /// The ID (`^[a-z0-9_-]+$`).
    pub id: String,
    /// Upstream repository root.
    pub url: reqwest::Url,
    /// Suites; one ending in `/` is a flat repository (`/` is the root).
    pub suites: Vec<String>,
    /// Components (may contain `/`, e.g. `main/debian-installer`).
    pub sections: Vec<String>,
    /// Architectures, always including `all`.
    pub architectures: Vec<String>,
    /// Mirror source packages too.
    pub mirror_source: bool,
    /// Keyring files; empty = signatures not checked.
    pub keyring: Vec<PathBuf>,
    /// Translation languages to keep; `None` = all.
    pub languages: Option<Vec<String>>,
    /// Keep `Contents-*` indices.
    pub contents: bool,
    /// Previous snapshots kept on disk.
    pub keep: usize,
    /// Hosts (`host` or `host:port`) upstream may redirect to besides the
    /// URL's own (`redirect_hosts`; same scheme only).
    pub redirect_hosts: Vec<RedirectHost>,
    /// Most entries (files named) one index may have; a bigger one fails
    /// the run (default [`aptindex::index::bounded::DEFAULT_MAX_ENTRIES`]).
    pub max_index_entries: u64,
    /// Refuse a Release whose `Valid-Until` has passed (apt's
    /// `check-valid-until`); `false` publishes it with a warning.
    pub check_valid_until: bool,
}

impl MirrorConfig {
    /// True when the mirror's suites are flat repositories.
    pub fn is_flat(&self) -> bool {
        self.suites.iter().any(|s| aptindex::release::is_flat(s))
    }
}

/// A configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The content is invalid.
    #[error("{}: {}{message}", Location { file: path.display().to_string(), line: *line }, where_prefix(.mirror, .key))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// The mirror the error is in, if any.
        mirror: Option<String>,
        /// The key the error is about, if known.
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
}

fn where_prefix(mirror: &Option<String>, key: &Option<String>) -> String {
    match (mirror, key) {
        (Some(m), Some(k)) => format!("mirror {m:?}, key {k:?}: "),
        (Some(m), None) => format!("mirror {m:?}: "),
        (None, Some(k)) => format!("key {k:?}: "),
        (None, None) => String::new(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    dir: Option<Spanned<String>>,
    max_conns: Option<Spanned<i64>>,
    log: Option<RawLog>,
    http: Option<RawHttp>,
    progress_interval: Option<Spanned<f64>>,
    #[serde(default)]
    mirror: BTreeMap<Spanned<String>, Spanned<RawMirror>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    filename: Option<String>,
    level: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    connect_timeout: Option<Spanned<f64>>,
    read_timeout: Option<Spanned<f64>>,
    download_timeout: Option<Spanned<f64>>,
    retries: Option<Spanned<i64>>,
    retry_delay: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMirror {
    url: Option<Spanned<String>>,
    #[serde(default)]
    suites: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    sections: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    architectures: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    mirror_source: bool,
    keyring: Option<Spanned<OneOrMany>>,
    languages: Option<Spanned<Vec<String>>>,
    contents: Option<bool>,
    keep: Option<Spanned<i64>>,
    redirect_hosts: Option<Spanned<Vec<String>>>,
    max_index_entries: Option<Spanned<i64>>,
    check_valid_until: Option<bool>,
}

/// The `[mirror.ID]` table that encloses line `line`, if any (for parse
/// errors, which toml reports by position only).
fn mirror_at_line(text: &str, line: usize) -> Option<String> {
    let mut found = None;
    for l in text.lines().take(line) {
        let t = l.trim();
        if let Some(rest) = t.strip_prefix('[') {
            let name = rest
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim();
            found = name
                .strip_prefix("mirror.")
                .map(|id| id.trim().trim_matches('"').to_string());
        }
    }
    found
}

/// True when `id` matches `^[a-z0-9_-]+$`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Config {
    /// Reads and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// Parses and validates configuration `text`; `path` is used in errors
    /// and to resolve relative keyring paths.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let invalid = |span: Option<std::ops::Range<usize>>,
                       mirror: Option<&str>,
                       key: Option<&str>,
                       message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: span.map(|s| line_of(text, s.start)).unwrap_or(0),
            mirror: mirror.map(str::to_string),
            key: key.map(str::to_string),
            message,
        };

        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let problem = TomlProblem::of(text, e.span(), e.message());
            // `mirror.ID.key`: the mirror and its key; else the whole key.
            let (mirror, key) = match problem.key.as_deref() {
                Some([table, id, rest @ ..]) if table == "mirror" => {
                    (Some(id.clone()), (!rest.is_empty()).then(|| rest.join(".")))
                }
                Some(_) => (None, problem.dotted_key()),
                None if problem.line > 0 => (mirror_at_line(text, problem.line), None),
                None => (None, None),
            };
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line: problem.line,
                mirror,
                key,
                message: problem.message,
            }
        })?;

        let dir = match raw.dir {
            Some(d) if !d.get_ref().is_empty() => PathBuf::from(d.get_ref()),
            Some(d) => {
                return Err(invalid(
                    Some(d.span()),
                    None,
                    Some("dir"),
                    "is empty".into(),
                ))
            }
            None => return Err(invalid(None, None, Some("dir"), "is not set".into())),
        };
        let max_conns = match raw.max_conns {
            None => 10,
            Some(m) => usize::try_from(*m.get_ref()).map_err(|_| {
                invalid(
                    Some(m.span()),
                    None,
                    Some("max_conns"),
                    "must be 0 (unlimited) or more".into(),
                )
            })?,
        };
        let log = match raw.log {
            None => LogConfig::default(),
            Some(l) => {
                if let Some(level) = &l.level {
                    if !runtime::logging::LEVEL_NAMES.contains(&level.get_ref().as_str()) {
                        return Err(invalid(
                            Some(level.span()),
                            None,
                            Some("log.level"),
                            format!(
                                "unknown level {:?} (error, warning, info, debug)",
                                level.get_ref()
                            ),
                        ));
                    }
                }
                if let Some(format) = &l.format {
                    if !["plain", "logfmt", "json"].contains(&format.get_ref().as_str()) {
                        return Err(invalid(
                            Some(format.span()),
                            None,
                            Some("log.format"),
                            format!(
                                "unknown format {:?} (plain, logfmt, json)",
                                format.get_ref()
                            ),
                        ));
                    }
                }
                LogConfig {
                    filename: l.filename.filter(|f| !f.is_empty()).map(PathBuf::from),
                    level: l.level.map(Spanned::into_inner),
                    format: l.format.map(Spanned::into_inner),
                }
            }
        };

        let secs = |v: &Option<Spanned<f64>>,
                    key: &str,
                    default: Duration|
         -> Result<Duration, ConfigError> {
            match v {
                None => Ok(default),
                Some(s) => {
                    let x = *s.get_ref();
                    if x.is_finite() && x > 0.0 && x < 1e9 {
                        Ok(Duration::from_secs_f64(x))
                    } else {
                        Err(invalid(
                            Some(s.span()),
                            None,
                            Some(key),
                            "must be a positive number of seconds".into(),
                        ))
                    }
                }
            }
        };
        let mut http = HttpConfig::default();
        if let Some(h) = &raw.http {
            http.connect_timeout = secs(
                &h.connect_timeout,
                "http.connect_timeout",
                http.connect_timeout,
            )?;
            http.read_timeout = secs(&h.read_timeout, "http.read_timeout", http.read_timeout)?;
            http.download_timeout = secs(
                &h.download_timeout,
                "http.download_timeout",
                http.download_timeout,
            )?;
            http.retry_delay = secs(&h.retry_delay, "http.retry_delay", http.retry_delay)?;
            if let Some(r) = &h.retries {
                http.retries = u32::try_from(*r.get_ref())
                    .ok()
                    .filter(|&r| r <= 100)
                    .ok_or_else(|| {
                        invalid(
                            Some(r.span()),
                            None,
                            Some("http.retries"),
                            "must be 0..=100".into(),
                        )
                    })?;
            }
        }
        let progress_interval = secs(
            &raw.progress_interval,
            "progress_interval",
            Duration::from_secs(60),
        )?;

        let base_dir = path.parent().unwrap_or(Path::new("."));
        let mut mirrors = BTreeMap::new();
        for (id, m) in raw.mirror {
            let id_span = id.span();
            let id = id.into_inner();
            let m_span = m.span();
            let m = m.into_inner();
            if !is_valid_id(&id) {
                return Err(invalid(
                    Some(id_span),
                    Some(&id),
                    None,
                    "invalid mirror ID: it must match ^[a-z0-9_-]+$".into(),
                ));
            }
            let err = |span: std::ops::Range<usize>, key: &str, msg: &str| {
                invalid(Some(span), Some(&id), Some(key), msg.to_string())
            };
            let url = match &m.url {
                None => return Err(err(m_span.clone(), "url", "is not set")),
                Some(u) => {
                    let parsed = reqwest::Url::parse(u.get_ref()).map_err(|e| {
                        err(
                            u.span(),
                            "url",
                            &format!("invalid URL {:?}: {e}", u.get_ref()),
                        )
                    })?;
                    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                        return Err(err(
                            u.span(),
                            "url",
                            "only http:// and https:// URLs with a host are supported",
                        ));
                    }
                    if parsed.query().is_some() || parsed.fragment().is_some() {
                        return Err(err(u.span(), "url", "must not have a query or fragment"));
                    }
                    parsed
                }
            };
            let suites = match &m.suites {
                Some(s) if !s.get_ref().is_empty() => s,
                Some(s) => return Err(err(s.span(), "suites", "is empty")),
                None => return Err(err(m_span.clone(), "suites", "is not set")),
            };
            let flat_count = suites
                .get_ref()
                .iter()
                .filter(|s| aptindex::release::is_flat(s))
                .count();
            if flat_count != 0 && flat_count != suites.get_ref().len() {
                return Err(err(
                    suites.span(),
                    "suites",
                    "mixes flat (ending in '/') and normal suites",
                ));
            }
            for s in suites.get_ref() {
                let body = s.trim_end_matches('/');
                let ok = if body.is_empty() {
                    s == "/"
                } else {
                    aptindex::path::is_safe_relative(body)
                };
                if !ok || s.chars().any(char::is_whitespace) {
                    return Err(err(
                        suites.span(),
                        "suites",
                        &format!("invalid suite {s:?}"),
                    ));
                }
            }
            let flat = flat_count != 0;
            let sections: Vec<String> = m
                .sections
                .as_ref()
                .map(|s| s.get_ref().clone())
                .unwrap_or_default();
            let sections_span = m
                .sections
                .as_ref()
                .map(|s| s.span())
                .unwrap_or(m_span.clone());
            if flat && !sections.is_empty() {
                return Err(err(
                    sections_span,
                    "sections",
                    "must be empty for a flat repository",
                ));
            }
            if !flat && sections.is_empty() {
                return Err(err(sections_span, "sections", "is not set or empty"));
            }
            for s in &sections {
                if !aptindex::path::is_safe_relative(s) || s.chars().any(char::is_whitespace) {
                    return Err(err(
                        sections_span.clone(),
                        "sections",
                        &format!("invalid section {s:?}"),
                    ));
                }
            }
            let mut architectures: Vec<String> = m
                .architectures
                .as_ref()
                .map(|a| a.get_ref().clone())
                .unwrap_or_default();
            if !flat && architectures.is_empty() {
                return Err(err(
                    m.architectures
                        .as_ref()
                        .map(|a| a.span())
                        .unwrap_or(m_span.clone()),
                    "architectures",
                    "is not set or empty",
                ));
            }
            for a in &architectures {
                if a.is_empty()
                    || !a
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(err(
                        m.architectures
                            .as_ref()
                            .map(|a| a.span())
                            .unwrap_or(m_span.clone()),
                        "architectures",
                        &format!("invalid architecture {a:?}"),
                    ));
                }
            }
            if !architectures.iter().any(|a| a == "all") {
                architectures.push("all".to_string());
            }
            let keyring = match &m.keyring {
                None => Vec::new(),
                Some(k) => {
                    let list = k.get_ref().0.clone();
                    if list.is_empty() || list.iter().any(String::is_empty) {
                        return Err(err(k.span(), "keyring", "must name one or more files"));
                    }
                    list.into_iter().map(|f| base_dir.join(f)).collect()
                }
            };
            let keep = match &m.keep {
                None => 1,
                Some(k) => usize::try_from(*k.get_ref())
                    .ok()
                    .filter(|&k| k <= 1000)
                    .ok_or_else(|| err(k.span(), "keep", "must be 0..=1000"))?,
            };
            let redirect_hosts = match &m.redirect_hosts {
                None => Vec::new(),
                Some(h) => h
                    .get_ref()
                    .iter()
                    .map(|e| RedirectHost::parse(e))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| err(h.span(), "redirect_hosts", &e.to_string()))?,
            };
            let max_index_entries = match &m.max_index_entries {
                None => aptindex::index::bounded::DEFAULT_MAX_ENTRIES,
                Some(k) => u64::try_from(*k.get_ref())
                    .ok()
                    .filter(|&k| k >= 1)
                    .ok_or_else(|| err(k.span(), "max_index_entries", "must be at least 1"))?,
            };
            mirrors.insert(
                id.clone(),
                MirrorConfig {
                    id: id.clone(),
                    url,
                    suites: suites.get_ref().clone(),
                    sections,
                    architectures,
                    mirror_source: m.mirror_source,
                    keyring,
                    languages: m.languages.map(Spanned::into_inner),
                    contents: m.contents.unwrap_or(true),
                    keep,
                    redirect_hosts,
                    max_index_entries,
                    check_valid_until: m.check_valid_until.unwrap_or(true),
                },
            );
        }

        Ok(Config {
            dir,
            max_conns,
            log,
            http,
            progress_interval,
            mirrors,
        })
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_type_errors;
