//! The configuration file: go-apt-cacher's TOML format, read unchanged
//! (`listen_address`, `check_interval`, `cache_period`, `meta_dir`,
//! `cache_dir`, `cache_capacity`, `max_conns`, `[log]`, `[mapping]`), plus a
//! few optional keys of our own (`listen_address` may also be an array,
//! `connect_allow`, `generation_grace`,
//! `status_allow`, `max_clients`, `max_clients_per_host`, `[timeouts]`). Unknown keys are errors,
//! and every error names the key, the line and the reason. Every duration
//! is at most [`MAX_DURATION`] (so no deadline computed from one can
//! overflow).

pub use crate::listen_address::ListenAddr;
mod values;
use reqwest::Url;
use runtime::config::{key_span, line_of, Location, OneOrMany, TomlProblem};
pub use runtime::http::RedirectHost;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
pub use values::{
    parse_listen, parse_network, parse_upstream_url, valid_prefix, ValueError, ValueErrorKind,
};

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on (at least one).
    pub listen: Vec<ListenAddr>,
    /// How often a Release is re-checked upstream.
    pub check_interval: Duration,
    /// How long a bad upstream answer (404, 5xx, timeout) is remembered.
    pub cache_period: Duration,
    /// Directory for metadata generations (Release files and indices).
    pub meta_dir: PathBuf,
    /// Directory for other cached files (pool files).
    pub cache_dir: PathBuf,
    /// Capacity of `cache_dir`, in bytes.
    pub cache_capacity: u64,
    /// Maximum concurrent connections per upstream host (0 = unlimited).
    pub max_conns: usize,
    /// Maximum simultaneous client connections (at least 1); further
    /// clients wait in the kernel's listen backlog.
    pub max_clients: usize,
    /// Maximum simultaneous connections from one client address (at least
    /// 1); a connection beyond it is refused at once.
    pub max_clients_per_host: usize,
    /// Logging.
    pub log: LogConfig,
    /// Prefix → upstream mappings, in file order.
    pub mappings: Vec<Mapping>,
    /// `host:port` pairs that `CONNECT` may tunnel to.
    pub connect_allow: Vec<String>,
    /// How long the previous metadata generation stays available after a swap.
    pub generation_grace: Duration,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Client networks allowed to read `/~/metrics` and `/~/status`
    /// (`None`: loopback only, `127.0.0.0/8` and `::1`).
    pub status_allow: Option<Vec<ipnet::IpNet>>,
    /// Most entries (files named) one index may have; a bigger one is
    /// quarantined (default [`aptindex::index::bounded::DEFAULT_MAX_ENTRIES`]).
    pub max_index_entries: u64,
    /// Files no index lists: their size cap, budget and lifetime.
    pub unverified: Unverified,
    /// A client's request for a Release file re-checks upstream (one
    /// conditional GET per suite, shared by every client) when the last
    /// check is older than this (`revalidate_interval`, default 1 s; 0:
    /// every request).
    pub revalidate_interval: Duration,
    /// Cached files no kept generation references are removed after this
    /// long (`retention`, default 7 days).
    pub retention: Duration,
}

/// `max_unverified_size`, `unverified_capacity`, `unverified_ttl`: what a
/// pool file no index lists may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Unverified {
    /// Cap on one such download, in bytes (`None`: twice the largest listed
    /// file requested so far, at least [`UNVERIFIED_FLOOR`]; before any,
    /// [`UNVERIFIED_DEFAULT`]).
    pub max_size: Option<u64>,
    /// Bytes they may take together in `cache_dir`, besides
    /// `cache_capacity` (`None`: 5 % of `cache_capacity`).
    pub capacity: Option<u64>,
    /// How long one is kept (`None`: one day).
    pub ttl: Option<Duration>,
}

/// The smallest derived `max_unverified_size`: 64 MiB.
pub const UNVERIFIED_FLOOR: u64 = 64 << 20;

/// `max_unverified_size` before any listed file was seen: 256 MiB.
pub const UNVERIFIED_DEFAULT: u64 = 256 << 20;

/// The longest duration any key accepts: 7 days.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The default of `max_clients`.
pub const DEFAULT_MAX_CLIENTS: usize = 4096;

/// The default of `max_clients_per_host`: one address may hold at most this
/// many of the `max_clients` places (a NAT gateway of a few dozen apt
/// clients still fits; one host cannot starve the others).
pub const DEFAULT_MAX_CLIENTS_PER_HOST: usize = 64;

/// The largest `max_clients` accepted.
pub const MAX_CLIENTS_LIMIT: usize = 1 << 20;

/// `[log]`: where and how to log (the same table in both binaries).
pub use runtime::logging::LogConfig;

/// Timeouts, all in seconds in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// Upstream connect.
    pub connect: Duration,
    /// Upstream idle read (no byte for this long).
    pub idle_read: Duration,
    /// Overall cap on one upstream download.
    pub overall: Duration,
    /// Client request-header read (slowloris).
    pub header_read: Duration,
    /// Client idle keep-alive: an idle connection is closed after this long.
    pub client_idle: Duration,
    /// While every `max_clients` place is taken and another client waits,
    /// keep-alive connections idle for at least this long are closed to
    /// make room.
    pub idle_reap: Duration,
    /// On SIGTERM/SIGINT, how long in-flight responses and downloads may
    /// take to finish before the cacher exits anyway.
    pub shutdown_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            idle_read: Duration::from_secs(60),
            overall: Duration::from_secs(30 * 60),
            header_read: Duration::from_secs(30),
            client_idle: Duration::from_secs(120),
            idle_reap: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// One `[mapping]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The path prefix (`^[a-z0-9._-]+$`).
    pub prefix: String,
    /// The upstream URL (http or https), without a trailing slash in its path.
    pub url: Url,
    /// Other URLs of the same repository; they share the cache.
    pub aliases: Vec<Url>,
    /// Hosts (`host` or `host:port`) upstream may redirect to, besides the
    /// URL's and the aliases' own (`redirect_hosts`; same scheme only).
    pub redirect_hosts: Vec<RedirectHost>,
    /// More upstream URLs of the same archive, tried in order after `url`
    /// when it fails to connect or answers 5xx (`url = [...]`).
    pub fallbacks: Vec<Url>,
    /// OpenPGP keyring files a Release must verify against (`keyring`,
    /// absolute; empty: the suite is served unsigned).
    pub keyrings: Vec<PathBuf>,
    /// A local apt-mirror snapshot of this archive (`local`), served from
    /// when a file there matches the current generation's index.
    pub local: Option<PathBuf>,
}

/// A configuration error: where and why.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// The key (or `-` when the error is not about one key).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl ConfigError {
    fn render(&self) -> String {
        let place = Location {
            file: self.file.clone(),
            line: self.line,
        };
        if self.key == "-" {
            format!("{place}: {}", self.reason)
        } else {
            format!("{place}: {}: {}", self.key, self.reason)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen_address: Option<Spanned<OneOrMany>>,
    check_interval: Option<Spanned<u64>>,
    cache_period: Option<Spanned<u64>>,
    meta_dir: Option<Spanned<String>>,
    cache_dir: Option<Spanned<String>>,
    cache_capacity: Option<Spanned<u64>>,
    max_conns: Option<Spanned<u64>>,
    max_clients: Option<Spanned<u64>>,
    max_clients_per_host: Option<Spanned<u64>>,
    max_index_entries: Option<Spanned<u64>>,
    #[serde(default)]
    log: LogConfig,
    #[serde(default)]
    mapping: BTreeMap<Spanned<String>, Spanned<RawMapping>>,
    #[serde(default)]
    connect_allow: Vec<Spanned<String>>,
    generation_grace: Option<Spanned<u64>>,
    timeouts: Option<Spanned<RawTimeouts>>,
    status_allow: Option<Vec<Spanned<String>>>,
    max_unverified_size: Option<Spanned<u64>>,
    unverified_capacity: Option<Spanned<u64>>,
    unverified_ttl: Option<Spanned<u64>>,
    revalidate_interval: Option<Spanned<u64>>,
    retention: Option<Spanned<u64>>,
}

mod raw_mapping;
use raw_mapping::RawMapping;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    connect: Option<u64>,
    idle_read: Option<u64>,
    overall: Option<u64>,
    header_read: Option<u64>,
    client_idle: Option<u64>,
    idle_reap: Option<u64>,
    shutdown_grace: Option<u64>,
}

/// The default config path.
pub const DEFAULT_PATH: &str = "/etc/apt-cacher.toml";

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: 0,
            key: "-".into(),
            reason: format!("cannot read: {e}"),
        })?;
        Config::parse(&file, &text)
    }

    /// Parses and validates configuration `text`; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        let err = |span: Option<std::ops::Range<usize>>, key: &str, reason: String| ConfigError {
            file: file.to_string(),
            line: span.map(|s| line_of(text, s.start)).unwrap_or(0),
            key: key.to_string(),
            reason,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let problem = TomlProblem::of(text, e.span(), e.message());
            ConfigError {
                file: file.to_string(),
                line: problem.line,
                key: problem.dotted_key().unwrap_or_else(|| "-".into()),
                reason: problem.message,
            }
        })?;

        let listen = match &raw.listen_address {
            Some(s) if s.get_ref().0.is_empty() => {
                return Err(err(
                    Some(s.span()),
                    "listen_address",
                    "the list is empty: give at least one address (\":3142\": all of them)".into(),
                ))
            }
            Some(s) => s
                .get_ref()
                .0
                .iter()
                .map(|one| {
                    parse_listen(one).map_err(|r| {
                        // The entry's own line, when the array spans several.
                        let span = element_span(text, s.span(), one);
                        err(Some(span), "listen_address", r.to_string())
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![ListenAddr::Any(3142)],
        };
        let secs = |v: &Option<Spanned<u64>>, default: u64| {
            v.as_ref().map(|s| *s.get_ref()).unwrap_or(default)
        };
        // A duration in seconds, at most MAX_DURATION.
        let duration =
            |v: &Option<Spanned<u64>>, default: u64, key: &str| -> Result<Duration, ConfigError> {
                let d = Duration::from_secs(secs(v, default));
                if d > MAX_DURATION {
                    return Err(err(
                        v.as_ref().map(|s| s.span()),
                        key,
                        too_long(d.as_secs()),
                    ));
                }
                Ok(d)
            };
        let dir = |v: &Option<Spanned<String>>, key: &str| -> Result<PathBuf, ConfigError> {
            let s = v
                .as_ref()
                .ok_or_else(|| err(None, key, "is required".into()))?;
            let p = PathBuf::from(s.get_ref());
            if !p.is_absolute() {
                return Err(err(
                    Some(s.span()),
                    key,
                    format!("{:?} must be an absolute path", s.get_ref()),
                ));
            }
            Ok(p)
        };
        let meta_dir = dir(&raw.meta_dir, "meta_dir")?;
        let cache_dir = dir(&raw.cache_dir, "cache_dir")?;
        if normalize(&meta_dir) == normalize(&cache_dir) {
            return Err(err(
                raw.cache_dir.as_ref().map(|s| s.span()),
                "cache_dir",
                "must differ from meta_dir".into(),
            ));
        }
        if normalize(&meta_dir).starts_with(normalize(&cache_dir))
            || normalize(&cache_dir).starts_with(normalize(&meta_dir))
        {
            return Err(err(
                raw.cache_dir.as_ref().map(|s| s.span()),
                "cache_dir",
                "must not contain or be contained in meta_dir".into(),
            ));
        }
        let capacity_gib = secs(&raw.cache_capacity, 1);
        let cache_capacity = capacity_gib.checked_mul(1 << 30).ok_or_else(|| {
            err(
                raw.cache_capacity.as_ref().map(|s| s.span()),
                "cache_capacity",
                "too large".into(),
            )
        })?;
        if capacity_gib == 0 {
            return Err(err(
                raw.cache_capacity.as_ref().map(|s| s.span()),
                "cache_capacity",
                "must be at least 1 (GiB)".into(),
            ));
        }
        let max_conns = usize::try_from(secs(&raw.max_conns, 10)).map_err(|_| {
            err(
                raw.max_conns.as_ref().map(|s| s.span()),
                "max_conns",
                "too large".into(),
            )
        })?;
        let max_clients = secs(&raw.max_clients, DEFAULT_MAX_CLIENTS as u64);
        if max_clients == 0 || max_clients > MAX_CLIENTS_LIMIT as u64 {
            return Err(err(
                raw.max_clients.as_ref().map(|s| s.span()),
                "max_clients",
                format!("{max_clients} must be between 1 and {MAX_CLIENTS_LIMIT}"),
            ));
        }
        let max_clients = max_clients as usize;
        let per_host = secs(
            &raw.max_clients_per_host,
            DEFAULT_MAX_CLIENTS_PER_HOST as u64,
        );
        if per_host == 0 || per_host > MAX_CLIENTS_LIMIT as u64 {
            return Err(err(
                raw.max_clients_per_host.as_ref().map(|s| s.span()),
                "max_clients_per_host",
                format!("{per_host} must be between 1 and {MAX_CLIENTS_LIMIT}"),
            ));
        }
        let max_clients_per_host = per_host as usize;
        let max_index_entries = secs(
            &raw.max_index_entries,
            aptindex::index::bounded::DEFAULT_MAX_ENTRIES,
        );
        if max_index_entries == 0 {
            return Err(err(
                raw.max_index_entries.as_ref().map(|s| s.span()),
                "max_index_entries",
                "must be at least 1".into(),
            ));
        }

        if let Some(level) = &raw.log.level {
            if !runtime::logging::LEVEL_NAMES.contains(&level.as_str()) {
                return Err(err(
                    key_span(text, "level"),
                    "log.level",
                    format!("{level:?}: expected one of critical, error, warning, info, debug"),
                ));
            }
        }
        if let Some(format) = &raw.log.format {
            if !matches!(format.as_str(), "plain" | "logfmt" | "json") {
                return Err(err(
                    key_span(text, "format"),
                    "log.format",
                    format!("{format:?}: expected one of plain, logfmt, json"),
                ));
            }
        }

        let mut mappings = Vec::new();
        for (prefix, value) in &raw.mapping {
            let key = format!("mapping.{}", prefix.get_ref());
            if matches!(prefix.get_ref().as_str(), "." | ".." | ".tmp") {
                return Err(err(
                    Some(prefix.span()),
                    &key,
                    format!(
                        "prefix {:?} is reserved (it would name a directory of the cache itself)",
                        prefix.get_ref()
                    ),
                ));
            }
            if !valid_prefix(prefix.get_ref()) {
                return Err(err(
                    Some(prefix.span()),
                    &key,
                    format!("prefix {:?} must match ^[a-z0-9._-]+$", prefix.get_ref()),
                ));
            }
            let (urls, aliases, redirect_hosts, keyring, local) = match value.get_ref() {
                RawMapping::Url(u) => (vec![u.clone()], Vec::new(), Vec::new(), Vec::new(), None),
                RawMapping::Table(t) => (
                    t.url.0.clone(),
                    t.aliases.clone(),
                    t.redirect_hosts.clone(),
                    t.keyring.as_ref().map(|k| k.0.clone()).unwrap_or_default(),
                    t.local.clone(),
                ),
            };
            let mut urls = urls
                .iter()
                .map(|u| parse_upstream_url(u))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|r| err(Some(value.span()), &key, r.to_string()))?
                .into_iter();
            let url = urls.next().ok_or_else(|| {
                err(
                    Some(value.span()),
                    &format!("{key}.url"),
                    "the list is empty: give at least one upstream URL".into(),
                )
            })?;
            let fallbacks: Vec<Url> = urls.collect();
            // Relative keyring and local paths are relative to the config file.
            let base = Path::new(file).parent().unwrap_or(Path::new(""));
            let keyrings = keyring
                .iter()
                .map(|k| {
                    if k.is_empty() {
                        return Err(err(
                            Some(value.span()),
                            &format!("{key}.keyring"),
                            "is empty: give a keyring file".into(),
                        ));
                    }
                    Ok(base.join(k))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let local = match local {
                Some(l) if l.is_empty() => {
                    return Err(err(
                        Some(value.span()),
                        &format!("{key}.local"),
                        "is empty: give the directory of a local mirror".into(),
                    ))
                }
                Some(l) => Some(base.join(l)),
                None => None,
            };
            let aliases = aliases
                .iter()
                .map(|a| parse_upstream_url(a))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|r| err(Some(value.span()), &key, format!("alias {r}")))?;
            let redirect_hosts = redirect_hosts
                .iter()
                .map(|h| RedirectHost::parse(h))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|r| {
                    err(
                        Some(value.span()),
                        &format!("{key}.redirect_hosts"),
                        r.to_string(),
                    )
                })?;
            mappings.push(Mapping {
                prefix: prefix.get_ref().clone(),
                url,
                aliases,
                redirect_hosts,
                fallbacks,
                keyrings,
                local,
            });
        }
        // File order is friendlier in logs; BTreeMap sorted them, so re-sort by span.
        let order: BTreeMap<String, usize> = raw
            .mapping
            .keys()
            .map(|k| (k.get_ref().clone(), k.span().start))
            .collect();
        mappings.sort_by_key(|m| order.get(&m.prefix).copied().unwrap_or(0));

        let mut connect_allow = Vec::new();
        for entry in &raw.connect_allow {
            let v = entry.get_ref();
            let ok = v
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !ok {
                return Err(err(
                    Some(entry.span()),
                    "connect_allow",
                    format!("{v:?} must be host:port"),
                ));
            }
            connect_allow.push(v.to_ascii_lowercase());
        }

        let status_allow = match &raw.status_allow {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|entry| {
                        parse_network(entry.get_ref())
                            .map_err(|r| err(Some(entry.span()), "status_allow", r.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };

        let mut timeouts = Timeouts::default();
        if let Some(t) = &raw.timeouts {
            let table = t.span();
            let t = t.get_ref();
            let set =
                |slot: &mut Duration, v: Option<u64>, name: &str| -> Result<(), ConfigError> {
                    let Some(v) = v else {
                        return Ok(());
                    };
                    // The key's own line when it is written `name = ...`.
                    let span = key_span(text.get(table.clone()).unwrap_or(""), name)
                        .map(|s| s.start + table.start..s.end + table.start)
                        .or(Some(table.clone()));
                    let key = format!("timeouts.{name}");
                    if v == 0 {
                        return Err(err(span, &key, "must be at least 1 second".into()));
                    }
                    if Duration::from_secs(v) > MAX_DURATION {
                        return Err(err(span, &key, too_long(v)));
                    }
                    *slot = Duration::from_secs(v);
                    Ok(())
                };
            set(&mut timeouts.connect, t.connect, "connect")?;
            set(&mut timeouts.idle_read, t.idle_read, "idle_read")?;
            set(&mut timeouts.overall, t.overall, "overall")?;
            set(&mut timeouts.header_read, t.header_read, "header_read")?;
            set(&mut timeouts.client_idle, t.client_idle, "client_idle")?;
            set(&mut timeouts.idle_reap, t.idle_reap, "idle_reap")?;
            set(
                &mut timeouts.shutdown_grace,
                t.shutdown_grace,
                "shutdown_grace",
            )?;
        }

        let mib = |v: &Option<Spanned<u64>>, key: &str| -> Result<Option<u64>, ConfigError> {
            v.as_ref()
                .map(|s| {
                    s.get_ref()
                        .checked_mul(1 << 20)
                        .ok_or_else(|| err(Some(s.span()), key, "too large (MiB)".into()))
                })
                .transpose()
        };
        let unverified = Unverified {
            max_size: mib(&raw.max_unverified_size, "max_unverified_size")?,
            capacity: mib(&raw.unverified_capacity, "unverified_capacity")?,
            ttl: match &raw.unverified_ttl {
                Some(_) => Some(duration(&raw.unverified_ttl, 0, "unverified_ttl")?),
                None => None,
            },
        };
        Ok(Config {
            listen,
            check_interval: duration(&raw.check_interval, 600, "check_interval")?,
            cache_period: duration(&raw.cache_period, 3, "cache_period")?,
            meta_dir,
            cache_dir,
            cache_capacity,
            max_conns,
            max_clients,
            max_clients_per_host,
            log: raw.log,
            mappings,
            connect_allow,
            generation_grace: duration(&raw.generation_grace, 600, "generation_grace")?,
            timeouts,
            status_allow,
            max_index_entries,
            unverified,
            revalidate_interval: duration(&raw.revalidate_interval, 1, "revalidate_interval")?,
            retention: duration(&raw.retention, MAX_DURATION.as_secs(), "retention")?,
        })
    }
}

/// The error for a duration above [`MAX_DURATION`].
fn too_long(secs: u64) -> String {
    format!(
        "{secs} seconds is too long: at most {} (7 days)",
        MAX_DURATION.as_secs()
    )
}

/// The span of the string `value` inside the array at `array` (the whole
/// array when it is not found, e.g. written with escapes).
fn element_span(text: &str, array: std::ops::Range<usize>, value: &str) -> std::ops::Range<usize> {
    let quoted = [format!("\"{value}\""), format!("'{value}'")];
    text.get(array.clone())
        .and_then(|inner| quoted.iter().find_map(|q| inner.find(q.as_str())))
        .map_or(array.clone(), |at| array.start + at..array.start + at + 1)
}

/// Removes `.` components and trailing slashes (no file-system access).
fn normalize(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_type_errors;
