//! Upstream failover: a mapping may list several upstream URLs of one
//! archive (`url = ["http://a.example/debian", "http://b.example/debian"]`,
//! `config::Mapping::url` then `fallbacks`). This file decides, for one
//! upstream URL, which upstreams to ask and in which order; the upstream
//! client (`upstream.rs`) asks them, so every request of the mapping
//! (Release files, indices, by-hash objects, patches, pool files) fails
//! over the same way.
//!
//! The rule: a connect failure, a connect timeout, a timeout before the
//! response headers, or a 5xx of one upstream tries the same path on the
//! next. A 404 (or 410) keeps its meaning: the file is not there, and the
//! caller tries its next candidate path (by-hash, then the plain name) on
//! the upstreams again, so every candidate is tried on the first healthy
//! upstream before the next upstream is asked, as apt does per source.
//!
//! Such a failure is remembered for that upstream (its base URL) for
//! `cache_period`: meanwhile its mapping's requests go to the other
//! upstreams first, in configuration order, and to it only when all of
//! them fail too; after `cache_period` it is first again. (Failures of
//! single URLs stay in the upstream client's negative cache, by URL, so a
//! failure on one upstream is never answered for another.)
//!
//! Which upstream answered changes nothing about trust: every file is
//! verified against the same Release (the expected size and digests come
//! from the generation, not from the upstream), and the Release files of a
//! new generation are checked to agree with each other wherever each came
//! from (generation/fetch.rs).
//!
//! An upstream URL belongs to the mapping whose `url` (or fallback) it lies
//! under; the longest base wins when bases nest.

use crate::config::Mapping;
use reqwest::Url;
use runtime::http::{HttpError, HttpErrorKind};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many upstreams are remembered as failing (mappings name a
/// bounded set; the cap keeps memory bounded regardless).
const MAX_REMEMBERED: usize = 1024;

/// The upstreams of one mapping that has fallbacks.
#[derive(Debug)]
struct Set {
    /// The mapping's prefix (for logs and the metric).
    prefix: String,
    /// Each upstream's repository root, ending in `/`: `url` first, then
    /// the fallbacks.
    roots: Vec<String>,
}

/// An upstream remembered as failing.
#[derive(Debug, Clone)]
struct Down {
    since: Instant,
    reason: String,
}

/// One request to make: the URL, and the upstream (repository root) it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The URL to ask.
    pub url: Url,
    /// The upstream's repository root (its key in the failure memory).
    pub root: String,
}

/// The upstreams to ask for one URL, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The mapping's prefix.
    pub prefix: String,
    /// The requests, in order (at least two).
    pub attempts: Vec<Attempt>,
}

/// One upstream of a mapping as the status page shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UpstreamState {
    /// The upstream's repository URL.
    pub url: String,
    /// Why it is remembered as failing, if it is (`None`: healthy).
    pub failing: Option<String>,
    /// Seconds until it is asked first again (0 when healthy).
    pub retry_in_secs: u64,
}

/// The failover table of a cacher's mappings and the memory of failing upstreams.
#[derive(Debug)]
pub struct Failover {
    sets: Vec<Set>,
    cache_period: Duration,
    down: Mutex<HashMap<String, Down>>,
}

/// The repository root of `base`, ending in `/` (the URL
/// [`runtime::http::join`] puts paths under).
fn root_of(base: &Url) -> Option<String> {
    runtime::http::join(base, "").ok().map(|u| u.to_string())
}

/// True when `e` makes the next upstream worth asking: the upstream could
/// not be reached or did not answer in time, or answered 5xx.
pub fn worth_failover(e: &HttpError) -> bool {
    match e.kind {
        HttpErrorKind::Connect | HttpErrorKind::ConnectTimeout | HttpErrorKind::Timeout => true,
        HttpErrorKind::Status(s) => (500..600).contains(&s),
        _ => false,
    }
}

impl Failover {
    /// The table of `mappings` (only those with fallbacks fail over);
    /// failures are remembered for `cache_period` (0: never).
    pub fn new(mappings: &[Mapping], cache_period: Duration) -> Failover {
        let sets = mappings
            .iter()
            .filter(|m| !m.fallbacks.is_empty())
            .map(|m| Set {
                prefix: m.prefix.clone(),
                roots: std::iter::once(&m.url)
                    .chain(&m.fallbacks)
                    .filter_map(root_of)
                    .collect(),
            })
            .filter(|s| s.roots.len() > 1)
            .collect();
        Failover {
            sets,
            cache_period,
            down: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Down>> {
        self.down.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why `root` is remembered as failing, and since when, if it still is.
    fn down_of(&self, root: &str) -> Option<Down> {
        let mut map = self.lock();
        match map.get(root) {
            Some(d) if d.since.elapsed() < self.cache_period => Some(d.clone()),
            Some(_) => {
                map.remove(root);
                None
            }
            None => None,
        }
    }

    /// The upstreams to ask for `url`: `None` when its mapping has no
    /// fallbacks (ask `url` alone). The upstreams not remembered as
    /// failing come first, in configuration order, then the others.
    pub fn plan(&self, url: &Url) -> Option<Plan> {
        let s = url.as_str();
        let (set, rest) = self
            .sets
            .iter()
            .flat_map(|set| set.roots.iter().map(move |r| (set, r)))
            .filter(|(_, r)| s.starts_with(r.as_str()))
            .max_by_key(|(_, r)| r.len())
            .map(|(set, r)| (set, &s[r.len()..]))?;
        let mut attempts: Vec<(bool, Attempt)> = set
            .roots
            .iter()
            .filter_map(|root| {
                let url = Url::parse(&format!("{root}{rest}")).ok()?;
                let down = self.down_of(root).is_some();
                Some((
                    down,
                    Attempt {
                        url,
                        root: root.clone(),
                    },
                ))
            })
            .collect();
        // Stable: configuration order within the healthy and the failing.
        attempts.sort_by_key(|(down, _)| *down);
        Some(Plan {
            prefix: set.prefix.clone(),
            attempts: attempts.into_iter().map(|(_, a)| a).collect(),
        })
    }

    /// Remembers that the upstream `root` failed with `e` (a failure
    /// [`worth_failover`]) for `cache_period`. True when it was not
    /// remembered yet (the caller logs that once).
    pub fn failed(&self, root: &str, e: &HttpError) -> bool {
        if self.cache_period.is_zero() {
            return false;
        }
        let fresh = self.down_of(root).is_none();
        let mut map = self.lock();
        if map.len() >= MAX_REMEMBERED && !map.contains_key(root) {
            let period = self.cache_period;
            map.retain(|_, d| d.since.elapsed() < period);
            if map.len() >= MAX_REMEMBERED {
                return false;
            }
        }
        map.insert(
            root.to_string(),
            Down {
                since: Instant::now(),
                reason: e.to_string(),
            },
        );
        fresh
    }

    /// Each upstream of mapping `prefix` and whether it is remembered as
    /// failing (empty for a mapping without fallbacks).
    pub fn states(&self, prefix: &str) -> Vec<UpstreamState> {
        let Some(set) = self.sets.iter().find(|s| s.prefix == prefix) else {
            return Vec::new();
        };
        set.roots
            .iter()
            .map(|root| {
                let down = self.down_of(root);
                UpstreamState {
                    url: root.clone(),
                    retry_in_secs: down.as_ref().map_or(0, |d| {
                        self.cache_period
                            .saturating_sub(d.since.elapsed())
                            .as_secs()
                    }),
                    failing: down.map(|d| d.reason),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_upstream_url;

    fn mapping(prefix: &str, urls: &[&str]) -> Mapping {
        let mut urls = urls.iter().map(|u| parse_upstream_url(u).unwrap());
        Mapping {
            prefix: prefix.into(),
            url: urls.next().unwrap(),
            aliases: Vec::new(),
            redirect_hosts: Vec::new(),
            fallbacks: urls.collect(),
            keyrings: Vec::new(),
            local: None,
        }
    }

    fn table(period: Duration) -> Failover {
        Failover::new(
            &[
                mapping("one", &["http://solo.example/debian"]),
                mapping(
                    "deb",
                    &[
                        "http://a.example/debian",
                        "http://b.example:8080/mirror/debian/",
                        "http://c.example/",
                    ],
                ),
                mapping(
                    "nested",
                    &["http://a.example/debian/sub", "http://d.example/sub"],
                ),
            ],
            period,
        )
    }

    fn urls(plan: &Plan) -> Vec<&str> {
        plan.attempts.iter().map(|a| a.url.as_str()).collect()
    }

    #[test]
    fn same_path_on_every_upstream_in_order() {
        let f = table(Duration::from_secs(60));
        let url = runtime::http::join(
            &parse_upstream_url("http://a.example/debian").unwrap(),
            "pool/a b_1:2.deb",
        )
        .unwrap();
        let plan = f.plan(&url).unwrap();
        assert_eq!(plan.prefix, "deb");
        assert_eq!(
            urls(&plan),
            [
                "http://a.example/debian/pool/a%20b_1:2.deb",
                "http://b.example:8080/mirror/debian/pool/a%20b_1:2.deb",
                "http://c.example/pool/a%20b_1:2.deb",
            ]
        );
        // A mapping without fallbacks, and a URL under no mapping.
        assert_eq!(
            f.plan(&Url::parse("http://solo.example/debian/x").unwrap()),
            None
        );
        assert_eq!(
            f.plan(&Url::parse("http://other.example/debian/x").unwrap()),
            None
        );
        // Nested bases: the longest wins.
        let plan = f
            .plan(&Url::parse("http://a.example/debian/sub/dists/x/InRelease").unwrap())
            .unwrap();
        assert_eq!(plan.prefix, "nested");
        assert_eq!(
            urls(&plan)[1],
            "http://d.example/sub/dists/x/InRelease",
            "{plan:?}"
        );
    }

    #[test]
    fn a_failing_upstream_goes_last_until_cache_period_ends() {
        let f = table(Duration::from_millis(200));
        let url = Url::parse("http://a.example/debian/dists/x/InRelease").unwrap();
        let e = HttpError::status(&url, 503);
        assert!(f.failed("http://a.example/debian/", &e));
        assert!(!f.failed("http://a.example/debian/", &e), "already known");
        let plan = f.plan(&url).unwrap();
        assert_eq!(
            urls(&plan),
            [
                "http://b.example:8080/mirror/debian/dists/x/InRelease",
                "http://c.example/dists/x/InRelease",
                "http://a.example/debian/dists/x/InRelease",
            ]
        );
        let states = f.states("deb");
        assert!(states[0].failing.as_deref().unwrap().contains("503"));
        assert_eq!(states[1].failing, None);
        assert!(f.states("one").is_empty());
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(
            urls(&f.plan(&url).unwrap())[0],
            "http://a.example/debian/dists/x/InRelease"
        );
        assert_eq!(f.states("deb")[0].failing, None);
    }

    #[test]
    fn the_url_list_of_a_config_file() {
        let text = |url: &str| {
            format!(
                "meta_dir = \"/m\"\ncache_dir = \"/c\"\n[mapping]\ndeb = {{ url = {url} }}\nsolo = \"http://solo.example/debian\"\n"
            )
        };
        let c = crate::Config::parse(
            "t.toml",
            &text(r#"["http://a.example/debian", "http://b.example/debian"]"#),
        )
        .unwrap();
        let f = Failover::new(&c.mappings, c.cache_period);
        let plan = f
            .plan(&Url::parse("http://a.example/debian/dists/x/InRelease").unwrap())
            .unwrap();
        assert_eq!(
            urls(&plan),
            [
                "http://a.example/debian/dists/x/InRelease",
                "http://b.example/debian/dists/x/InRelease"
            ]
        );
        assert_eq!(f.states("deb").len(), 2);
        assert!(f.states("solo").is_empty());
        let e = crate::Config::parse("t.toml", &text("[]")).unwrap_err();
        assert!(e.to_string().contains("at least one upstream URL"), "{e}");
    }

    #[test]
    fn zero_cache_period_remembers_nothing() {
        let f = table(Duration::ZERO);
        let url = Url::parse("http://a.example/debian/x").unwrap();
        assert!(!f.failed("http://a.example/debian/", &HttpError::status(&url, 500)));
        assert_eq!(urls(&f.plan(&url).unwrap())[0], url.as_str());
    }

    #[test]
    fn which_failures_fail_over() {
        let url = Url::parse("http://a.example/x").unwrap();
        for (kind, want) in [
            (HttpErrorKind::Connect, true),
            (HttpErrorKind::ConnectTimeout, true),
            (HttpErrorKind::Timeout, true),
            (HttpErrorKind::Status(500), true),
            (HttpErrorKind::Status(503), true),
            (HttpErrorKind::Status(404), false),
            (HttpErrorKind::Status(403), false),
            (HttpErrorKind::Transport, false),
            (HttpErrorKind::TooLarge(1), false),
        ] {
            assert_eq!(
                worth_failover(&HttpError::new(url.as_str(), kind, "")),
                want,
                "{kind:?}"
            );
        }
    }
}
