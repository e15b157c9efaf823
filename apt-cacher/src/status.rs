//! The status page, `/~/status` (HTML, readable without JavaScript, no
//! external assets) and `/~/status.json` (the same data): the key figures
//! (hit ratio, bytes saved, cache use, requests), the mappings, requests by
//! result, upstream hosts, the current metadata generation of every suite
//! (with who signed it, or that it is unsigned, and its last refused
//! Release) and the recent failures. It renders a [`StatusSnapshot`], plain data
//! that `pages.rs` reads from a running cacher; nothing here knows the
//! cacher itself.

use crate::failover::UpstreamState;
use crate::generation::signed::{SignatureInfo, SignatureState};
use crate::generation::GenInfo;
use crate::metrics::{Counters, Failure, Gauges, Outcome};
use serde::Serialize;
use std::fmt::Write;

/// One mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappingInfo {
    /// The path prefix.
    pub prefix: String,
    /// The upstream URL.
    pub url: String,
    /// The local mirror tree served from first (`local`), if any.
    pub local: Option<String>,
    /// With fallbacks (`url = [...]`): every upstream URL in configuration
    /// order, and which are remembered as failing (empty otherwise).
    pub upstreams: Vec<UpstreamState>,
}

/// Everything the status page shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusSnapshot {
    /// The cacher's version.
    pub version: String,
    /// When it started (seconds since the Unix epoch).
    pub started_unix: u64,
    /// Seconds since it started.
    pub uptime_secs: u64,
    /// Requests for files answered from the cache (hit or revalidated) over
    /// all file requests (hit, revalidated, miss, coalesced, pass); `null`
    /// before the first one.
    pub hit_ratio: Option<f64>,
    /// All requests, whatever their result.
    pub requests_total: u64,
    /// Cache use and capacity, dropped log lines.
    pub gauges: Gauges,
    /// The counters (requests by result, bytes, upstream hosts, ...).
    pub counters: Counters,
    /// The mappings, in configuration order.
    pub mappings: Vec<MappingInfo>,
    /// The current metadata generation of each suite.
    pub generations: Vec<GenInfo>,
    /// The last failures, newest first.
    pub recent_failures: Vec<Failure>,
}

/// A mapping's upstreams, in the order configured, one a line: each
/// `ok`, or failing (why, and when it is asked first again).
fn upstreams_html(upstreams: &[UpstreamState]) -> String {
    upstreams
        .iter()
        .map(|u| match &u.failing {
            None => format!("{} (ok)", esc(&u.url)),
            Some(why) => format!(
                "{} (failing, asked last for {} s more: {})",
                esc(&u.url),
                u.retry_in_secs,
                esc(why)
            ),
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

/// `n` bytes in a unit a person reads at a glance (`1.5 GiB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// A ratio as a percentage with one decimal (`66.7%`), `-` when unknown.
pub fn percent(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_string(), |r| format!("{:.1}%", r * 100.0))
}

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The signature cell of a suite: signed by whom, unsigned, what was
/// left out, the last refusal.
fn signature_cell(s: &SignatureInfo) -> String {
    let mut cell = match (&s.state, &s.signed_by) {
        (SignatureState::Unsigned, _) => "unsigned (no keyring)".to_string(),
        (SignatureState::Signed, Some(by)) => format!(
            "signed ({}) by {} {}",
            esc(&by.file),
            esc(by.user_id.as_deref().unwrap_or("key")),
            esc(&by.fingerprint)
        ),
        _ => "signer unknown".to_string(),
    };
    for w in &s.withheld {
        let _ = write!(cell, "<br>withheld: {}", esc(w));
    }
    if let Some(r) = &s.last_refusal {
        let _ = write!(
            cell,
            "<br><span class=\"refused\">last refused {}: {}</span>",
            esc(&r.time),
            esc(&r.reason)
        );
    }
    cell
}

/// Seconds as `3d 4h`, `5h 6m`, `7m 8s` or `9s`.
fn human_secs(s: u64) -> String {
    let (d, h, m) = (s / 86400, s % 86400 / 3600, s % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", s % 60)
    } else {
        format!("{s}s")
    }
}

const STYLE: &str = "
body{font-family:'DejaVu Sans',Arial,Helvetica,sans-serif;margin:2em;color:#111;background:#fff;max-width:72em}
h1{font-size:1.8em;margin:0 0 .2em}
h2{font-size:1.3em;margin:1.6em 0 .5em;border-bottom:2px solid #ddd;padding-bottom:.2em}
.sub{color:#555;margin:0 0 1.5em}
.figures{display:flex;flex-wrap:wrap;gap:1.2em}
.figure{border:2px solid #222;border-radius:8px;padding:.8em 1.2em;min-width:11em}
.figure .label{font-size:1.1em;color:#333}
.figure .value{font-size:3em;font-weight:bold;line-height:1.2}
.figure .note{font-size:1em;color:#444}
table{border-collapse:collapse;margin:.3em 0}
th,td{text-align:left;padding:.3em .9em;border-bottom:1px solid #ddd;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.none{color:#666;font-style:italic}
.fail td,.refused{color:#8a1010;overflow-wrap:anywhere}
table.failures{max-width:100%}
td.t{white-space:nowrap}
";

impl StatusSnapshot {
    /// The JSON document of `/~/status.json`.
    pub fn json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"{}\"}}", esc(&e.to_string())));
        s.push('\n');
        s
    }

    /// The HTML page of `/~/status`.
    pub fn html(&self) -> String {
        let c = &self.counters;
        let g = &self.gauges;
        let mut h = String::with_capacity(8192);
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>apt-cacher status</title><style>{STYLE}</style></head><body>\n\
             <h1>apt-cacher status</h1>\n<p class=\"sub\">version {} &middot; up {} &middot; \
             this page: <a href=\"status.json\">JSON</a>, <a href=\"metrics\">Prometheus metrics</a></p>\n",
            esc(&self.version),
            human_secs(self.uptime_secs)
        );
        let use_ratio =
            (g.cache_capacity > 0).then(|| g.cache_bytes as f64 / g.cache_capacity as f64);
        let figures = [
            (
                "Hit ratio",
                percent(self.hit_ratio),
                format!(
                    "{} of {} file requests",
                    c.requests_of(Outcome::Hit) + c.requests_of(Outcome::Revalidated),
                    c.file_requests()
                ),
            ),
            (
                "Requests",
                self.requests_total.to_string(),
                "since start".to_string(),
            ),
            (
                "Bytes saved",
                human_bytes(c.bytes_from_cache),
                format!("{} from upstream", human_bytes(c.bytes_from_upstream)),
            ),
            (
                "Cache use",
                percent(use_ratio),
                format!(
                    "{} of {}, {} files",
                    human_bytes(g.cache_bytes),
                    human_bytes(g.cache_capacity),
                    g.cache_files
                ),
            ),
        ];
        h.push_str("<div class=\"figures\">\n");
        for (label, value, note) in figures {
            let _ = writeln!(
                h,
                "<div class=\"figure\"><div class=\"label\">{}</div><div class=\"value\">{}</div><div class=\"note\">{}</div></div>",
                esc(label),
                esc(&value),
                esc(&note)
            );
        }
        h.push_str("</div>\n");

        h.push_str(
            "<h2>Requests by result</h2>\n<table><tr><th>result</th><th>requests</th></tr>\n",
        );
        for o in Outcome::ALL {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
                o.as_str(),
                c.requests_of(o)
            );
        }
        let _ = writeln!(
            h,
            "</table>\n<p>Verification failures: {} &middot; unverified downloads: {} &middot; evictions: {} &middot; generation swaps: {} &middot; indices quarantined: {} &middot; index entries skipped: {} &middot; local mirror mismatches: {} &middot; dropped log lines: {}</p>",
            c.verification_failures, c.unverified_downloads, c.evictions, c.generation_swaps, c.index_quarantines, c.index_entries_skipped, c.local_mismatches, g.dropped_log_lines
        );
        let _ = writeln!(
            h,
            "<p class=\"retention\">Retention: {} in {} files reclaimable (unreferenced, waiting for their retention) &middot; {} in {} files reclaimed since start &middot; suites dropped: {}</p>",
            human_bytes(g.retention_reclaimable_bytes),
            g.retention_reclaimable_files,
            human_bytes(c.retention_reclaimed_bytes),
            c.retention_reclaimed_files,
            c.retention_suites_dropped
        );
        match &c.last_disk_full {
            Some(f) => {
                let _ = writeln!(
                    h,
                    "<p class=\"diskfull\">Disk full: {} times, last at {}: {} ({})</p>",
                    c.disk_full,
                    esc(&f.time),
                    esc(&f.url),
                    esc(&f.what)
                );
            }
            None => h.push_str("<p>Disk full: never</p>\n"),
        }

        h.push_str("<h2>Mappings</h2>\n");
        if self.mappings.is_empty() {
            h.push_str("<p class=\"none\">none configured</p>\n");
        } else {
            h.push_str("<table><tr><th>prefix</th><th>upstream</th><th>local mirror</th></tr>\n");
            for m in &self.mappings {
                let upstream = if m.upstreams.is_empty() {
                    esc(&m.url)
                } else {
                    upstreams_html(&m.upstreams)
                };
                let _ = writeln!(
                    h,
                    "<tr><td>/{}/</td><td>{}</td><td>{}</td></tr>",
                    esc(&m.prefix),
                    upstream,
                    esc(m.local.as_deref().unwrap_or("none"))
                );
            }
            h.push_str("</table>\n");
        }

        h.push_str("<h2>Current generations</h2>\n");
        if self.generations.is_empty() {
            h.push_str("<p class=\"none\">no suite fetched yet</p>\n");
        } else {
            h.push_str(
                "<table><tr><th>mapping</th><th>suite</th><th>generation</th><th>Release date</th>\
                 <th>fetched</th><th>indices held / listed</th><th>signature</th></tr>\n",
            );
            for gen in &self.generations {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{} / {}</td><td>{}</td></tr>",
                    esc(&gen.mapping),
                    esc(if gen.suite.is_empty() { "(flat)" } else { &gen.suite }),
                    gen.generation,
                    esc(gen.release_date.as_deref().unwrap_or("-")),
                    esc(&gen.fetched),
                    gen.indices,
                    gen.listed,
                    signature_cell(&gen.signature)
                );
            }
            h.push_str("</table>\n");
        }
        let _ = writeln!(
            h,
            "<p>Release signatures refused: {}</p>",
            c.release_signature_failures
        );

        h.push_str("<h2>Upstream hosts</h2>\n");
        if c.upstream.is_empty() {
            h.push_str("<p class=\"none\">no upstream request yet</p>\n");
        } else {
            h.push_str("<table><tr><th>host</th><th>requests</th><th>errors</th></tr>\n");
            for (host, n) in &c.upstream {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    esc(host),
                    n.requests,
                    n.errors
                );
            }
            h.push_str("</table>\n");
        }

        h.push_str("<h2>Recent failures</h2>\n");
        if self.recent_failures.is_empty() {
            h.push_str("<p class=\"none\">none</p>\n");
        } else {
            h.push_str("<table class=\"failures\"><tr><th>time</th><th>URL</th><th>what went wrong</th></tr>\n");
            for f in &self.recent_failures {
                let _ = writeln!(
                    h,
                    "<tr class=\"fail\"><td class=\"t\">{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&f.time),
                    esc(&f.url),
                    esc(&f.what)
                );
            }
            h.push_str("</table>\n");
        }
        h.push_str("</body></html>\n");
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn sample() -> StatusSnapshot {
        let m = Metrics::new();
        for o in [Outcome::Hit, Outcome::Hit, Outcome::Miss] {
            m.request(o);
        }
        m.sent(Outcome::Hit, 3 << 20);
        m.failure("http://up.example/d/pool/<x>.deb", "sha256 mismatch & more");
        StatusSnapshot {
            version: "1.0".into(),
            started_unix: 1_700_000_000,
            uptime_secs: 3725,
            hit_ratio: m.counters().hit_ratio(),
            requests_total: 3,
            gauges: Gauges {
                cache_bytes: 512 << 20,
                cache_files: 7,
                cache_capacity: 1 << 30,
                dropped_log_lines: 0,
                retention_reclaimable_bytes: 5 << 20,
                retention_reclaimable_files: 3,
            },
            counters: m.counters(),
            mappings: vec![
                MappingInfo {
                    prefix: "debian".into(),
                    url: "http://deb.example/debian".into(),
                    local: None,
                    upstreams: Vec::new(),
                },
                MappingInfo {
                    prefix: "two".into(),
                    url: "http://a.example/debian".into(),
                    local: None,
                    upstreams: vec![
                        UpstreamState {
                            url: "http://a.example/debian/".into(),
                            failing: Some("HTTP status 503 <&>".into()),
                            retry_in_secs: 42,
                        },
                        UpstreamState {
                            url: "http://b.example/debian/".into(),
                            failing: None,
                            retry_in_secs: 0,
                        },
                    ],
                },
            ],
            generations: vec![GenInfo {
                mapping: "debian".into(),
                suite: "dists/stable".into(),
                generation: 2,
                release_date: Some("Sat, 01 Jan 2000 00:00:00 UTC".into()),
                fetched_unix: 1_700_000_100,
                fetched: "Tue, 14 Nov 2023 22:15:00 GMT".into(),
                indices: 1,
                listed: 12,
                signature: SignatureInfo::unsigned(),
            }],
            recent_failures: m.recent_failures(),
        }
    }

    #[test]
    fn json_has_the_figures() {
        let s = sample();
        let v: serde_json::Value = serde_json::from_str(&s.json()).unwrap();
        assert_eq!(v["requests_total"], 3);
        assert!((v["hit_ratio"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(v["counters"]["requests"]["hit"], 2);
        assert_eq!(v["counters"]["requests"]["miss"], 1);
        assert_eq!(v["counters"]["bytes_from_cache"], 3 << 20);
        assert_eq!(v["gauges"]["cache_capacity"], 1u64 << 30);
        assert_eq!(v["gauges"]["retention_reclaimable_bytes"], 5u64 << 20);
        assert_eq!(v["counters"]["retention_reclaimed_bytes"], 0);
        assert_eq!(v["mappings"][0]["prefix"], "debian");
        assert_eq!(v["generations"][0]["suite"], "dists/stable");
        assert_eq!(v["generations"][0]["listed"], 12);
        assert_eq!(v["generations"][0]["signature"]["state"], "unsigned");
        assert_eq!(
            v["recent_failures"][0]["url"],
            "http://up.example/d/pool/<x>.deb"
        );
    }

    #[test]
    fn html_shows_figures_escaped_without_scripts() {
        let h = sample().html();
        assert!(h.contains(">66.7%<"), "{h}");
        assert!(h.contains(">3.0 MiB<"), "{h}");
        assert!(h.contains(">50.0%<"), "cache use: {h}");
        assert!(h.contains("pool/&lt;x&gt;.deb") && h.contains("mismatch &amp; more"));
        assert!(!h.contains("<script") && !h.contains("src=") && !h.contains("http://fonts"));
        assert!(h.contains("dists/stable") && h.contains("1h 2m"));
        assert!(
            h.contains("Retention: 5.0 MiB in 3 files reclaimable"),
            "{h}"
        );
        assert!(h.contains("unsigned (no keyring)"), "{h}");
        // A mapping's several upstreams, the failing one marked.
        assert!(
            h.contains("http://a.example/debian/ (failing, asked last for 42 s more: HTTP status 503 &lt;&amp;&gt;)<br>http://b.example/debian/ (ok)"),
            "{h}"
        );
    }

    #[test]
    fn json_has_each_upstream_of_a_mapping() {
        let v: serde_json::Value = serde_json::from_str(&sample().json()).unwrap();
        assert_eq!(v["mappings"][0]["upstreams"], serde_json::json!([]));
        let ups = &v["mappings"][1]["upstreams"];
        assert_eq!(ups[0]["url"], "http://a.example/debian/");
        assert_eq!(ups[0]["retry_in_secs"], 42);
        assert_eq!(ups[1]["failing"], serde_json::Value::Null);
    }

    #[test]
    fn signature_cells_say_who_signed_what_was_left_out_and_the_last_refusal() {
        use crate::generation::signed::{Refusal, SignedBy};
        let signed = SignatureInfo {
            state: SignatureState::Signed,
            signed_by: Some(SignedBy {
                file: "InRelease".into(),
                fingerprint: "4CB5".into(),
                primary_fingerprint: "B8B8".into(),
                user_id: Some("Archive <a@example.org>".into()),
            }),
            withheld: vec!["http://up.example/d/Release.gpg: BAD signature".into()],
            last_refusal: Some(Refusal {
                unix_time: 1,
                time: "Thu, 01 Jan 1970 00:00:01 GMT".into(),
                url: "http://up.example/d/InRelease".into(),
                reason: "no signature by a key in the keyring".into(),
            }),
        };
        let cell = signature_cell(&signed);
        assert!(
            cell.starts_with("signed (InRelease) by Archive &lt;a@example.org&gt; 4CB5"),
            "{cell}"
        );
        assert!(cell.contains("withheld: http://up.example/d/Release.gpg: BAD signature"));
        assert!(cell.contains("last refused Thu, 01 Jan 1970 00:00:01 GMT: no signature"));
        assert_eq!(
            signature_cell(&SignatureInfo::unsigned()),
            "unsigned (no keyring)"
        );
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(1 << 30), "1.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
        assert_eq!(percent(None), "-");
        assert_eq!(percent(Some(1.0)), "100.0%");
    }
}
