//! The one redirect policy both binaries' clients follow. reqwest's
//! default follows 10 hops to any host and sends a `Referer`, so an
//! upstream (or whoever answers in its name) could make a program fetch an
//! internal URL and serve or publish it. Here a redirect is followed only
//! to an origin (scheme, host, port) the original request's mapping or
//! mirror allows: its own upstream, its aliases, or the hosts its
//! `redirect_hosts` names; never to another scheme (http→https of an
//! allowed host included: configure the https URL instead), for at most
//! [`DEFAULT_HOP_LIMIT`] hops. Every hop is logged (info when followed,
//! warn when refused); a refusal is a [`RedirectRefused`] error the
//! client turns into [`super::HttpErrorKind::Redirect`]. The `Referer`
//! header is switched off where the client is built.

use reqwest::Url;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Hops followed at most when the rules do not say otherwise.
pub const DEFAULT_HOP_LIMIT: usize = 5;

/// Where a URL points: scheme, host (lower case, IPv6 without brackets)
/// and port (the scheme's default when none is given).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: String,
    /// The host name or address.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl Origin {
    /// The origin of `url`; `None` without a host or known port.
    pub fn of(url: &Url) -> Option<Origin> {
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        Some(Origin {
            scheme: url.scheme().to_ascii_lowercase(),
            host,
            port: url.port_or_known_default()?,
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

/// A `redirect_hosts` entry that is not `host` or `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redirect host {entry:?} must be host or host:port, or *.domain[:port] for the hosts under a domain (no scheme, path or user)")]
pub struct InvalidRedirectHost {
    /// The entry as written.
    pub entry: String,
}

/// One `redirect_hosts` entry: a host (or, written `*.domain`, every host
/// under a domain: mirror networks hand out varying hosts), and a port or
/// none (then the scheme's default port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectHost {
    host: String,
    port: Option<u16>,
    scope: HostScope,
}

/// Which hosts a [`RedirectHost`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostScope {
    /// Its host only.
    Exact,
    /// Any host under its domain (`*.example.org`: `a.example.org`,
    /// `a.b.example.org`; not `example.org` itself).
    Subdomains,
}

impl RedirectHost {
    /// Parses `host` or `host:port` (`[v6]` or `[v6]:port` for IPv6), or
    /// `*.domain` / `*.domain:port`.
    pub fn parse(written: &str) -> Result<RedirectHost, InvalidRedirectHost> {
        let invalid = || InvalidRedirectHost {
            entry: written.to_string(),
        };
        let (entry, scope) = match written.strip_prefix("*.") {
            Some(domain) => (domain, HostScope::Subdomains),
            None => (written, HostScope::Exact),
        };
        if entry.contains('*') {
            return Err(invalid());
        }
        if entry.is_empty() || entry.contains(['/', '@', '?', '#', ' ']) {
            return Err(invalid());
        }
        let url = Url::parse(&format!("http://{entry}/")).map_err(|_| invalid())?;
        let host = url
            .host_str()
            .ok_or_else(invalid)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        // `Url` drops an explicit :80 for http; keep what was written.
        let port = match entry.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && !p.contains(']') => {
                Some(p.parse::<u16>().map_err(|_| invalid())?)
            }
            _ => None,
        };
        Ok(RedirectHost { host, port, scope })
    }

    fn matches(&self, origin: &Origin) -> bool {
        let default = if origin.scheme == "https" { 443 } else { 80 };
        let host = match self.scope {
            HostScope::Exact => self.host == origin.host,
            HostScope::Subdomains => origin
                .host
                .strip_suffix(self.host.as_str())
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        };
        host && self.port.unwrap_or(default) == origin.port
    }
}

/// What one origin's requests may be redirected to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Allowed {
    /// The mappings or mirrors this origin serves (for the logs).
    names: Vec<String>,
    /// Upstream URLs and aliases of those mappings.
    origins: Vec<Origin>,
    /// Their `redirect_hosts`.
    hosts: Vec<RedirectHost>,
}

/// Why a redirect was not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectRefusal {
    /// More hops than this limit.
    TooManyHops(usize),
    /// The target's scheme differs from the original request's.
    SchemeChange,
    /// The target's host (or port) is not allowed for the mapping.
    HostNotAllowed,
    /// The target has no host or known port.
    BadTarget,
}

impl fmt::Display for RedirectRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedirectRefusal::TooManyHops(n) => write!(f, "more than {n} redirects"),
            RedirectRefusal::SchemeChange => f.write_str("redirect changes the scheme"),
            RedirectRefusal::HostNotAllowed => f.write_str(
                "redirect to a host that is neither the upstream, an alias nor in redirect_hosts",
            ),
            RedirectRefusal::BadTarget => f.write_str("redirect target has no host or port"),
        }
    }
}

/// A redirect that was not followed: the URL that answered, the status,
/// the `Location` it gave, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{from} answered {status} Location: {location}: refused: {reason}")]
pub struct RedirectRefused {
    /// The URL that answered with the redirect.
    pub from: String,
    /// The status (301, 302, 303, 307, 308).
    pub status: u16,
    /// Where it pointed.
    pub location: String,
    /// Why it was not followed.
    pub reason: RedirectRefusal,
}

/// The allowed redirect targets per upstream origin, and the hop limit.
/// An origin not registered may be redirected within itself only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRules {
    hop_limit: usize,
    table: HashMap<Origin, Allowed>,
}

impl Default for RedirectRules {
    fn default() -> Self {
        RedirectRules::new(DEFAULT_HOP_LIMIT)
    }
}

impl RedirectRules {
    /// No registered upstreams; at most `hop_limit` hops.
    pub fn new(hop_limit: usize) -> RedirectRules {
        RedirectRules {
            hop_limit,
            table: HashMap::new(),
        }
    }

    /// Registers mapping (or mirror) `name`: requests to any of `upstreams`
    /// (its URL and aliases) may be redirected to any of them, or to
    /// `hosts` (same scheme). Several mappings on one origin share their
    /// allowances.
    pub fn add(&mut self, name: &str, upstreams: &[&Url], hosts: &[RedirectHost]) {
        let origins: Vec<Origin> = upstreams.iter().filter_map(|u| Origin::of(u)).collect();
        for origin in &origins {
            let entry = self.table.entry(origin.clone()).or_default();
            if !entry.names.iter().any(|n| n == name) {
                entry.names.push(name.to_string());
            }
            for o in &origins {
                if !entry.origins.contains(o) {
                    entry.origins.push(o.clone());
                }
            }
            for h in hosts {
                if !entry.hosts.contains(h) {
                    entry.hosts.push(h.clone());
                }
            }
        }
    }

    /// The mappings registered for `url`'s origin, `,`-separated (`-`
    /// when none).
    pub fn names_for(&self, url: &Url) -> String {
        Origin::of(url)
            .and_then(|o| self.table.get(&o))
            .map_or_else(|| "-".to_string(), |a| a.names.join(","))
    }

    /// Whether a redirect to `next` may be followed, given the chain so
    /// far (`previous`: the original URL first, the URL that answered
    /// last).
    pub fn check(&self, next: &Url, previous: &[Url]) -> Result<(), RedirectRefusal> {
        if previous.len() > self.hop_limit {
            return Err(RedirectRefusal::TooManyHops(self.hop_limit));
        }
        let Some(original) = previous.first().and_then(Origin::of) else {
            return Err(RedirectRefusal::BadTarget);
        };
        let Some(target) = Origin::of(next) else {
            return Err(RedirectRefusal::BadTarget);
        };
        if target.scheme != original.scheme {
            return Err(RedirectRefusal::SchemeChange);
        }
        if target == original {
            return Ok(());
        }
        let allowed = self.table.get(&original).is_some_and(|a| {
            a.origins.contains(&target) || a.hosts.iter().any(|h| h.matches(&target))
        });
        if allowed {
            Ok(())
        } else {
            Err(RedirectRefusal::HostNotAllowed)
        }
    }

    /// The reqwest policy applying these rules, logging every hop.
    pub fn policy(&self) -> reqwest::redirect::Policy {
        let rules = Arc::new(self.clone());
        reqwest::redirect::Policy::custom(move |attempt| {
            let status = attempt.status().as_u16();
            let previous = attempt.previous();
            let from = previous.last().map_or_else(String::new, Url::to_string);
            let mapping = previous
                .first()
                .map_or_else(|| "-".to_string(), |u| rules.names_for(u));
            match rules.check(attempt.url(), previous) {
                Ok(()) => {
                    tracing::info!(mapping = %mapping, from = %from, to = %attempt.url(), status, "following upstream redirect");
                    attempt.follow()
                }
                Err(reason) => {
                    let refused = RedirectRefused {
                        from,
                        status,
                        location: attempt.url().to_string(),
                        reason,
                    };
                    tracing::warn!(mapping = %mapping, from = %refused.from, to = %refused.location, status, reason = %reason, "upstream redirect refused");
                    attempt.error(refused)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
