//! The cacher's counters: requests by result, bytes served from the cache
//! and from upstream, upstream requests and errors per host, verification
//! failures, evictions and generation swaps, plus a short list of recent
//! failures for the status page. One [`Metrics`] of atomics belongs to one
//! running cacher (several run in one test process), shared by the handler,
//! the store, the downloads and the generations. `exposition.rs` writes
//! them in the Prometheus text format served at `/~/metrics`.

use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// How many recent failures are kept.
pub const RECENT_FAILURES: usize = 20;
/// Longest URL or message kept for a failure, in characters.
const FAILURE_TEXT: usize = 600;
/// At most this many upstream hosts get their own counters (mappings name
/// a bounded set of hosts; the cap keeps memory bounded regardless).
const MAX_HOSTS: usize = 1000;

/// How a request was answered (the `result` of its access-log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Served from the cache (or the current metadata generation) without asking upstream.
    Hit,
    /// A Release file served after upstream was asked and its Release was unchanged.
    Revalidated,
    /// Fetched from upstream (a new Release, an index, a pool file).
    Miss,
    /// Joined a download of the same file already in flight.
    Coalesced,
    /// Answered from the negative cache (a recent upstream failure, `cache_period`).
    Negative,
    /// Passed through without caching (not under `pool/`, listed by no index).
    Pass,
    /// Refused (unknown prefix, not a mapped upstream, bad path, status page denied).
    Refused,
    /// Failed locally or upstream's metadata was unusable.
    Error,
    /// A `CONNECT` tunnel.
    Tunnel,
    /// The cacher's own pages (`/~/metrics`, `/~/status`).
    Local,
    /// A pool file served from the mapping's local mirror (`local`), its
    /// digest matching the index, without asking upstream.
    Mirror,
}

impl Outcome {
    /// Every outcome, in rendering order.
    pub const ALL: [Outcome; 11] = [
        Outcome::Hit,
        Outcome::Revalidated,
        Outcome::Miss,
        Outcome::Coalesced,
        Outcome::Negative,
        Outcome::Pass,
        Outcome::Refused,
        Outcome::Error,
        Outcome::Tunnel,
        Outcome::Local,
        Outcome::Mirror,
    ];

    /// The label value (`hit`, `miss`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Revalidated => "revalidated",
            Outcome::Miss => "miss",
            Outcome::Coalesced => "coalesced",
            Outcome::Negative => "negative",
            Outcome::Pass => "pass",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
            Outcome::Tunnel => "tunnel",
            Outcome::Local => "local",
            Outcome::Mirror => "mirror",
        }
    }

    /// True when the bytes of such an answer come from the cache (or the
    /// local mirror: bytes upstream did not send either).
    pub fn from_cache(self) -> bool {
        matches!(self, Outcome::Hit | Outcome::Revalidated | Outcome::Mirror)
    }

    /// True when the bytes of such an answer come from upstream.
    pub fn from_upstream(self) -> bool {
        matches!(self, Outcome::Miss | Outcome::Coalesced | Outcome::Pass)
    }

    fn index(self) -> usize {
        Outcome::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

/// How re-checking a suite's upstream Release ended (the `result` of
/// `apt_cacher_release_revalidations_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revalidation {
    /// Upstream's Release is the current generation's (304, or the same bytes).
    Unchanged,
    /// A new generation was swapped in.
    Changed,
    /// The check failed: the current generation stays.
    Failed,
}

impl Revalidation {
    /// Every result, in rendering order.
    pub const ALL: [Revalidation; 3] = [
        Revalidation::Unchanged,
        Revalidation::Changed,
        Revalidation::Failed,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Revalidation::Unchanged => "unchanged",
            Revalidation::Changed => "changed",
            Revalidation::Failed => "failed",
        }
    }
}

/// One recent failure, for the status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// When, in seconds since the Unix epoch.
    pub unix_time: u64,
    /// When, as an HTTP date.
    pub time: String,
    /// The URL (or mapping and path) concerned.
    pub url: String,
    /// What went wrong.
    pub what: String,
}

/// Upstream request and error counts of one host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HostCounts {
    /// Requests sent (answers from the negative cache are not requests).
    pub requests: u64,
    /// Requests that failed (status, connection, timeout, broken body).
    pub errors: u64,
}

/// A point-in-time copy of the counters (also the JSON of the status page).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Requests by result label.
    pub requests: BTreeMap<&'static str, u64>,
    /// Body bytes sent to clients from the cache (hits): the bytes saved.
    pub bytes_from_cache: u64,
    /// Body bytes sent to clients as they came from upstream.
    pub bytes_from_upstream: u64,
    /// Upstream requests and errors by `host:port`.
    pub upstream: BTreeMap<String, HostCounts>,
    /// Downloads whose size or hashes did not match what the indices say.
    pub verification_failures: u64,
    /// Downloads with nothing to verify against: files no index of any
    /// served suite names (pool files cached so, others passed through).
    pub unverified_downloads: u64,
    /// Files evicted from the cache to stay within capacity.
    pub evictions: u64,
    /// Metadata generations swapped in (the first one of a suite included).
    pub generation_swaps: u64,
    /// Indices quarantined: unreadable (entry cap, decompression cap,
    /// syntax), so deleted and never used.
    pub index_quarantines: u64,
    /// Index entries skipped as bad (unsafe path, bad size or digest).
    pub index_entries_skipped: u64,
    /// Release sets refused because they do not verify against the
    /// mapping's keyring (the current generation stayed).
    pub release_signature_failures: u64,
    /// Writes that failed because the file system was full (ENOSPC) or the
    /// quota exhausted (EDQUOT).
    pub disk_full: u64,
    /// The last of them: when, the file, what was being written.
    pub last_disk_full: Option<Failure>,
    /// Bytes of cached files removed because no kept generation referenced
    /// them for `retention` (cache/retention.rs).
    pub retention_reclaimed_bytes: u64,
    /// Those files.
    pub retention_reclaimed_files: u64,
    /// Suites dropped from `meta_dir` because no client asked for them
    /// during `retention`.
    pub retention_suites_dropped: u64,
    /// Files of a local mirror (`local`) whose size or digest did not match
    /// the index (each counted once; fetched upstream instead).
    pub local_mismatches: u64,
    /// Requests moved to a mapping's next upstream after a failure, by
    /// mapping prefix (failover.rs).
    pub failovers: BTreeMap<String, u64>,
    /// Re-checks of suites' upstream Release files by result
    /// ([`Revalidation`]: `unchanged`, `changed`, `failed`).
    pub release_revalidations: BTreeMap<&'static str, u64>,
}

impl Counters {
    /// Requests with result `o`.
    pub fn requests_of(&self, o: Outcome) -> u64 {
        self.requests.get(o.as_str()).copied().unwrap_or(0)
    }

    /// Requests for files: hits, revalidations, misses, coalesced and passed-through.
    pub fn file_requests(&self) -> u64 {
        Outcome::ALL
            .iter()
            .filter(|o| o.from_cache() || o.from_upstream())
            .map(|o| self.requests_of(*o))
            .sum()
    }

    /// Share of file requests answered from the cache (hit or revalidated)
    /// or the local mirror, `None` before the first file request.
    pub fn hit_ratio(&self) -> Option<f64> {
        let all = self.file_requests();
        let hits: u64 = Outcome::ALL
            .iter()
            .filter(|o| o.from_cache())
            .map(|o| self.requests_of(*o))
            .sum();
        (all > 0).then(|| hits as f64 / all as f64)
    }
}

/// Values read at rendering time rather than counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Gauges {
    /// Bytes in the cache.
    pub cache_bytes: u64,
    /// Files in the cache.
    pub cache_files: u64,
    /// The cache's capacity in bytes.
    pub cache_capacity: u64,
    /// Log lines dropped because the log destination failed.
    pub dropped_log_lines: u64,
    /// Bytes of cached files no kept generation references, waiting for
    /// their `retention` to pass (as of the retention sweeper's last pass).
    pub retention_reclaimable_bytes: u64,
    /// Those files.
    pub retention_reclaimable_files: u64,
}

/// The counters of one cacher.
#[derive(Debug)]
pub struct Metrics {
    started: SystemTime,
    requests: [AtomicU64; Outcome::ALL.len()],
    bytes_from_cache: AtomicU64,
    bytes_from_upstream: AtomicU64,
    hosts: Mutex<BTreeMap<String, HostCounts>>,
    verification_failures: AtomicU64,
    unverified_downloads: AtomicU64,
    evictions: AtomicU64,
    generation_swaps: AtomicU64,
    index_quarantines: AtomicU64,
    index_entries_skipped: AtomicU64,
    release_signature_failures: AtomicU64,
    disk_full: AtomicU64,
    last_disk_full: Mutex<Option<Failure>>,
    retention_reclaimed_bytes: AtomicU64,
    retention_reclaimed_files: AtomicU64,
    retention_suites_dropped: AtomicU64,
    retention_reclaimable_bytes: AtomicU64,
    retention_reclaimable_files: AtomicU64,
    local_mismatches: AtomicU64,
    release_revalidations: [AtomicU64; Revalidation::ALL.len()],
    failures: Mutex<VecDeque<Failure>>,
    failovers: Mutex<BTreeMap<String, u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Seconds since the Unix epoch of `t` (0 before it).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The `host:port` an upstream URL's counters are kept under (the same
/// key as the per-host connection limits).
pub use runtime::http::host_key as host_of;

impl Metrics {
    /// All counters at zero.
    pub fn new() -> Metrics {
        Metrics {
            started: SystemTime::now(),
            requests: Default::default(),
            bytes_from_cache: AtomicU64::new(0),
            bytes_from_upstream: AtomicU64::new(0),
            hosts: Mutex::new(BTreeMap::new()),
            verification_failures: AtomicU64::new(0),
            unverified_downloads: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            generation_swaps: AtomicU64::new(0),
            index_quarantines: AtomicU64::new(0),
            index_entries_skipped: AtomicU64::new(0),
            release_signature_failures: AtomicU64::new(0),
            disk_full: AtomicU64::new(0),
            last_disk_full: Mutex::new(None),
            retention_reclaimed_bytes: AtomicU64::new(0),
            retention_reclaimed_files: AtomicU64::new(0),
            retention_suites_dropped: AtomicU64::new(0),
            retention_reclaimable_bytes: AtomicU64::new(0),
            retention_reclaimable_files: AtomicU64::new(0),
            local_mismatches: AtomicU64::new(0),
            release_revalidations: Default::default(),
            failures: Mutex::new(VecDeque::new()),
            failovers: Mutex::new(BTreeMap::new()),
        }
    }

    /// When these counters started.
    pub fn started(&self) -> SystemTime {
        self.started
    }

    /// Counts one request answered with `o`.
    pub fn request(&self, o: Outcome) {
        self.requests[o.index()].fetch_add(1, Relaxed);
    }

    /// Counts `bytes` of body sent for an answer with `o`.
    pub fn sent(&self, o: Outcome, bytes: u64) {
        if o.from_cache() {
            self.bytes_from_cache.fetch_add(bytes, Relaxed);
        } else if o.from_upstream() {
            self.bytes_from_upstream.fetch_add(bytes, Relaxed);
        }
    }

    fn host(&self, host: &str, f: impl FnOnce(&mut HostCounts)) {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = hosts.get_mut(host) {
            f(h);
        } else if hosts.len() < MAX_HOSTS {
            f(hosts.entry(host.to_string()).or_default());
        } else {
            f(hosts.entry("other".to_string()).or_default());
        }
    }

    /// Counts one failover of mapping `prefix` (a request moved to its
    /// next upstream); prefixes come from the configuration, so the map
    /// stays bounded.
    pub fn failover(&self, prefix: &str) {
        let mut f = self.failovers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = f.get_mut(prefix) {
            *n += 1;
        } else if f.len() < MAX_HOSTS {
            f.insert(prefix.to_string(), 1);
        }
    }

    /// Counts one request sent to `url`'s host.
    pub fn upstream_request(&self, url: &reqwest::Url) {
        self.host(&host_of(url), |h| h.requests += 1);
    }

    /// Counts a failed upstream request to `url` (see [`Self::failure`] to
    /// also show it among the recent failures).
    pub fn upstream_error(&self, url: &reqwest::Url) {
        self.host(&host_of(url), |h| h.errors += 1);
    }

    /// Counts a verification failure of `url` and remembers it.
    pub fn verification_failure(&self, url: &str, what: &str) {
        self.verification_failures.fetch_add(1, Relaxed);
        self.failure(url, what);
    }

    /// Counts one download started with nothing to verify against.
    pub fn unverified_download(&self) {
        self.unverified_downloads.fetch_add(1, Relaxed);
    }

    /// Counts `n` evicted files.
    pub fn evicted(&self, n: u64) {
        self.evictions.fetch_add(n, Relaxed);
    }

    /// Counts a write of `what` to `path` that failed on a full file
    /// system (or quota), remembers it as the last one and among the recent
    /// failures.
    pub fn disk_full(&self, path: &str, what: &str) {
        self.disk_full.fetch_add(1, Relaxed);
        self.failure(path, what);
        let newest = self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .back()
            .cloned();
        *self
            .last_disk_full
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = newest;
    }

    /// Counts `files` of `bytes` removed by the retention sweeper.
    pub fn retention_removed(&self, files: u64, bytes: u64) {
        self.retention_reclaimed_files.fetch_add(files, Relaxed);
        self.retention_reclaimed_bytes.fetch_add(bytes, Relaxed);
    }

    /// Sets what waits for its retention to pass (the sweeper's last pass).
    pub fn retention_reclaimable(&self, files: u64, bytes: u64) {
        self.retention_reclaimable_files.store(files, Relaxed);
        self.retention_reclaimable_bytes.store(bytes, Relaxed);
    }

    /// (files, bytes) waiting for their retention to pass.
    pub fn reclaimable(&self) -> (u64, u64) {
        (
            self.retention_reclaimable_files.load(Relaxed),
            self.retention_reclaimable_bytes.load(Relaxed),
        )
    }

    /// Counts a suite dropped from `meta_dir` for want of clients.
    pub fn suite_dropped(&self) {
        self.retention_suites_dropped.fetch_add(1, Relaxed);
    }

    /// Counts a file of a local mirror that did not match its index entry
    /// (`file`: where; `what`: how), and remembers it.
    pub fn local_mismatch(&self, file: &str, what: &str) {
        self.local_mismatches.fetch_add(1, Relaxed);
        self.failure(file, what);
    }

    /// Counts a generation swap.
    pub fn generation_swapped(&self) {
        self.generation_swaps.fetch_add(1, Relaxed);
    }

    /// Counts one re-check of a suite's upstream Release ending with `r`.
    pub fn release_revalidated(&self, r: Revalidation) {
        let i = Revalidation::ALL.iter().position(|x| *x == r).unwrap_or(0);
        self.release_revalidations[i].fetch_add(1, Relaxed);
    }

    /// Counts a quarantined index.
    pub fn index_quarantined(&self) {
        self.index_quarantines.fetch_add(1, Relaxed);
    }

    /// Counts `n` index entries skipped as bad.
    pub fn index_entries_skipped(&self, n: u64) {
        self.index_entries_skipped.fetch_add(n, Relaxed);
    }

    /// Counts a Release set refused by its signature (`url`: the file
    /// that decided) and remembers it.
    pub fn release_signature_failure(&self, url: &str, what: &str) {
        self.release_signature_failures.fetch_add(1, Relaxed);
        self.failure(url, what);
    }

    /// Remembers a failure (keeping the last [`RECENT_FAILURES`]).
    pub fn failure(&self, url: &str, what: &str) {
        let now = SystemTime::now();
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        while f.len() >= RECENT_FAILURES {
            f.pop_front();
        }
        let cut = |s: &str| -> String {
            match s.char_indices().nth(FAILURE_TEXT) {
                Some((i, _)) => format!("{}…", s.get(..i).unwrap_or("")),
                None => s.to_string(),
            }
        };
        f.push_back(Failure {
            unix_time: unix_secs(now),
            time: crate::time::http_date(now),
            url: cut(url),
            what: cut(what),
        });
    }

    /// The recent failures, newest first.
    pub fn recent_failures(&self) -> Vec<Failure> {
        let f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        f.iter().rev().cloned().collect()
    }

    /// A copy of the counters.
    pub fn counters(&self) -> Counters {
        Counters {
            requests: Outcome::ALL
                .iter()
                .map(|o| (o.as_str(), self.requests[o.index()].load(Relaxed)))
                .collect(),
            bytes_from_cache: self.bytes_from_cache.load(Relaxed),
            bytes_from_upstream: self.bytes_from_upstream.load(Relaxed),
            upstream: self.hosts.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            verification_failures: self.verification_failures.load(Relaxed),
            unverified_downloads: self.unverified_downloads.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
            generation_swaps: self.generation_swaps.load(Relaxed),
            index_quarantines: self.index_quarantines.load(Relaxed),
            index_entries_skipped: self.index_entries_skipped.load(Relaxed),
            release_signature_failures: self.release_signature_failures.load(Relaxed),
            disk_full: self.disk_full.load(Relaxed),
            last_disk_full: self
                .last_disk_full
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            retention_reclaimed_bytes: self.retention_reclaimed_bytes.load(Relaxed),
            retention_reclaimed_files: self.retention_reclaimed_files.load(Relaxed),
            retention_suites_dropped: self.retention_suites_dropped.load(Relaxed),
            local_mismatches: self.local_mismatches.load(Relaxed),
            failovers: self
                .failovers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            release_revalidations: Revalidation::ALL
                .iter()
                .zip(&self.release_revalidations)
                .map(|(r, n)| (r.as_str(), n.load(Relaxed)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_rendering() {
        let m = Metrics::new();
        for o in [Outcome::Hit, Outcome::Hit, Outcome::Miss, Outcome::Negative] {
            m.request(o);
        }
        m.sent(Outcome::Hit, 1000);
        m.sent(Outcome::Miss, 300);
        m.sent(Outcome::Refused, 7); // error texts count as neither
        let url = reqwest::Url::parse("http://deb.example/debian/x").unwrap();
        m.upstream_request(&url);
        m.upstream_request(&url);
        m.upstream_error(&url);
        let odd = reqwest::Url::parse("https://h\"q.example:8443/").unwrap_or(url.clone());
        m.upstream_request(&odd);
        m.failover("debian");
        m.failover("debian");
        m.verification_failure("http://deb.example/debian/pool/a.deb", "sha256 mismatch");
        m.evicted(3);
        m.generation_swapped();
        m.release_signature_failure("http://deb.example/debian/dists/s/InRelease", "refused");
        m.release_revalidated(Revalidation::Unchanged);
        m.release_revalidated(Revalidation::Unchanged);
        m.release_revalidated(Revalidation::Failed);
        m.unverified_download();
        m.disk_full(
            "/var/cache/x/.tmp/dl-1",
            "writing m/pool/a.deb: No space left on device",
        );
        let g = Gauges {
            cache_bytes: 1234,
            cache_files: 2,
            cache_capacity: 1 << 30,
            dropped_log_lines: 5,
            retention_reclaimable_bytes: 4096,
            retention_reclaimable_files: 1,
        };
        m.retention_removed(2, 3000);
        m.suite_dropped();
        let text = crate::exposition::render(&m.counters(), &g);
        for line in [
            "# HELP apt_cacher_requests_total Requests by how they were answered.",
            "# TYPE apt_cacher_requests_total counter",
            "apt_cacher_requests_total{result=\"hit\"} 2",
            "apt_cacher_requests_total{result=\"miss\"} 1",
            "apt_cacher_requests_total{result=\"negative\"} 1",
            "apt_cacher_requests_total{result=\"coalesced\"} 0",
            "apt_cacher_served_from_cache_bytes_total 1000",
            "apt_cacher_served_from_upstream_bytes_total 300",
            "apt_cacher_upstream_requests_total{host=\"deb.example:80\"} 2",
            "apt_cacher_upstream_errors_total{host=\"deb.example:80\"} 1",
            "apt_cacher_upstream_failovers_total{mapping=\"debian\"} 2",
            "apt_cacher_verification_failures_total 1",
            "apt_cacher_unverified_downloads_total 1",
            "# TYPE apt_cacher_cache_bytes gauge",
            "apt_cacher_cache_bytes 1234",
            "apt_cacher_cache_files 2",
            "apt_cacher_cache_capacity_bytes 1073741824",
            "apt_cacher_evictions_total 3",
            "apt_cacher_generation_swaps_total 1",
            "apt_cacher_log_dropped_lines_total 5",
            "apt_cacher_disk_full_total 1",
            "apt_cacher_retention_reclaimable_bytes 4096",
            "apt_cacher_retention_reclaimable_files 1",
            "apt_cacher_retention_reclaimed_bytes_total 3000",
            "apt_cacher_retention_reclaimed_files_total 2",
            "apt_cacher_retention_suites_dropped_total 1",
            "apt_cacher_release_signature_failures_total 1",
            "apt_cacher_release_revalidations_total{result=\"unchanged\"} 2",
            "apt_cacher_release_revalidations_total{result=\"changed\"} 0",
            "apt_cacher_release_revalidations_total{result=\"failed\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample line is `name{labels} value` with a numeric value,
        // and every metric has HELP and TYPE before its samples.
        let mut typed = std::collections::HashSet::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap().to_string());
                continue;
            }
            if l.starts_with('#') {
                continue;
            }
            let (name, value) = l.rsplit_once(' ').unwrap();
            value.parse::<u64>().unwrap();
            let base = name.split('{').next().unwrap();
            assert!(typed.contains(base), "{l}");
        }
        // Label values are escaped (`"`, `\`, newline).
        let mut odd = m.counters();
        odd.upstream
            .insert("a\"b\\c\nd".to_string(), HostCounts::default());
        let text = crate::exposition::render(&odd, &g);
        assert!(
            text.lines()
                .any(|l| l == "apt_cacher_upstream_requests_total{host=\"a\\\"b\\\\c\\nd\"} 0"),
            "{text}"
        );
        // Failures: newest first, at most RECENT_FAILURES.
        for i in 0..30 {
            m.failure(&format!("u{i}"), "x");
        }
        let f = m.recent_failures();
        assert_eq!(f.len(), RECENT_FAILURES);
        assert_eq!(f[0].url, "u29");
        m.failure(&"é".repeat(1000), "x");
        assert_eq!(m.recent_failures()[0].url.chars().count(), FAILURE_TEXT + 1);
    }

    #[test]
    fn hit_ratio_counts_file_requests_only() {
        let m = Metrics::new();
        assert_eq!(m.counters().hit_ratio(), None);
        for o in [
            Outcome::Hit,
            Outcome::Revalidated,
            Outcome::Miss,
            Outcome::Coalesced,
            Outcome::Refused,
            Outcome::Negative,
            Outcome::Local,
        ] {
            m.request(o);
        }
        let c = m.counters();
        assert_eq!(c.file_requests(), 4);
        assert_eq!(c.hit_ratio(), Some(0.5));
    }
}
