//! The Prometheus text exposition (format 0.0.4) of one cacher's counters,
//! served at `/~/metrics`. The counters live in [`crate::metrics`] (atomics
//! shared with the status page); this file only describes them to
//! `prometheus-client`, which writes the text (names, `# HELP`/`# TYPE`
//! lines, label escaping). It is a collector over a point-in-time copy, so
//! the page and the status page read the same figures, in a fixed order.
//! Names, labels and types are what dashboards rely on: change none.

use crate::metrics::{Counters, Gauges, Outcome};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The `Content-Type` of the page.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One scrape: the counters and gauges read for it.
#[derive(Debug)]
struct Scrape {
    counters: Counters,
    gauges: Gauges,
}

/// A metric without labels: its name (counters without `_total`, which
/// the encoder appends), help, type and value.
type Single = (&'static str, &'static str, MetricType, u64);

/// A counter whose samples differ by one label.
fn family<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    samples: impl Iterator<Item = (&'a str, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, n) in samples {
        let labels = [(label, value)];
        ConstCounter::new(n).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes one metric without labels.
fn single(encoder: &mut DescriptorEncoder, s: Single) -> Result<(), std::fmt::Error> {
    let (name, help, kind, value) = s;
    let metric = encoder.encode_descriptor(name, help, None, kind)?;
    match kind {
        MetricType::Counter => ConstCounter::new(value).encode(metric),
        _ => ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(metric),
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (c, g) = (&self.counters, &self.gauges);
        family(
            &mut encoder,
            "apt_cacher_requests",
            "Requests by how they were answered.",
            "result",
            Outcome::ALL.iter().map(|o| (o.as_str(), c.requests_of(*o))),
        )?;
        let counter = MetricType::Counter;
        let gauge = MetricType::Gauge;
        for s in [
            (
                "apt_cacher_served_from_cache_bytes",
                "Body bytes sent to clients from the cache.",
                counter,
                c.bytes_from_cache,
            ),
            (
                "apt_cacher_served_from_upstream_bytes",
                "Body bytes sent to clients as they came from upstream.",
                counter,
                c.bytes_from_upstream,
            ),
        ] {
            single(&mut encoder, s)?;
        }
        family(
            &mut encoder,
            "apt_cacher_upstream_requests",
            "Requests sent upstream, by host.",
            "host",
            c.upstream.iter().map(|(h, n)| (h.as_str(), n.requests)),
        )?;
        family(
            &mut encoder,
            "apt_cacher_upstream_errors",
            "Upstream requests that failed, by host.",
            "host",
            c.upstream.iter().map(|(h, n)| (h.as_str(), n.errors)),
        )?;
        family(
            &mut encoder,
            "apt_cacher_release_revalidations",
            "Re-checks of a suite's upstream Release (a client's revalidation or the background check), by result.",
            "result",
            c.release_revalidations.iter().map(|(r, n)| (*r, *n)),
        )?;

        family(
            &mut encoder,
            "apt_cacher_upstream_failovers",
            "Requests moved to a mapping's next upstream URL after a failure, by mapping.",
            "mapping",
            c.failovers.iter().map(|(m, n)| (m.as_str(), *n)),
        )?;
        let singles: [Single; 18] = [
            (
                "apt_cacher_verification_failures",
                "Downloads that did not match the expected size or hashes.",
                counter,
                c.verification_failures,
            ),
            (
                "apt_cacher_unverified_downloads",
                "Downloads with nothing to verify against: files no index of any served suite names.",
                counter,
                c.unverified_downloads,
            ),
            (
                "apt_cacher_local_mismatches",
                "Files of a local mirror that did not match their index entry (fetched upstream instead).",
                counter,
                c.local_mismatches,
            ),
            ("apt_cacher_cache_bytes", "Bytes in the cache.", gauge, g.cache_bytes),
            ("apt_cacher_cache_files", "Files in the cache.", gauge, g.cache_files),
            (
                "apt_cacher_cache_capacity_bytes",
                "Capacity of the cache.",
                gauge,
                g.cache_capacity,
            ),
            (
                "apt_cacher_evictions",
                "Files evicted from the cache.",
                counter,
                c.evictions,
            ),
            (
                "apt_cacher_disk_full",
                "Writes that failed on a full file system (ENOSPC) or quota (EDQUOT).",
                counter,
                c.disk_full,
            ),
            (
                "apt_cacher_generation_swaps",
                "Metadata generations swapped in.",
                counter,
                c.generation_swaps,
            ),
            (
                "apt_cacher_index_quarantines",
                "Indices quarantined (unreadable or over a cap), never used.",
                counter,
                c.index_quarantines,
            ),
            (
                "apt_cacher_index_entries_skipped",
                "Index entries skipped as bad (unsafe path, bad size or digest).",
                counter,
                c.index_entries_skipped,
            ),
            (
                "apt_cacher_retention_reclaimable_bytes",
                "Bytes of cached files no kept generation references, waiting for their retention.",
                gauge,
                g.retention_reclaimable_bytes,
            ),
            (
                "apt_cacher_retention_reclaimable_files",
                "Cached files no kept generation references, waiting for their retention.",
                gauge,
                g.retention_reclaimable_files,
            ),
            (
                "apt_cacher_retention_reclaimed_bytes",
                "Bytes of cached files removed after their retention (unreferenced).",
                counter,
                c.retention_reclaimed_bytes,
            ),
            (
                "apt_cacher_retention_reclaimed_files",
                "Cached files removed after their retention (unreferenced).",
                counter,
                c.retention_reclaimed_files,
            ),
            (
                "apt_cacher_retention_suites_dropped",
                "Suites dropped from meta_dir because no client asked for them during retention.",
                counter,
                c.retention_suites_dropped,
            ),
            (
                "apt_cacher_release_signature_failures",
                "Release sets refused because they do not verify against the mapping's keyring.",
                counter,
                c.release_signature_failures,
            ),
            (
                "apt_cacher_log_dropped_lines",
                "Log lines dropped because the log destination failed.",
                counter,
                g.dropped_log_lines,
            ),
        ];
        for s in singles {
            single(&mut encoder, s)?;
        }
        Ok(())
    }
}

/// The Prometheus text exposition (format 0.0.4) of `c` and `g`.
pub fn render(c: &Counters, g: &Gauges) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape {
        counters: c.clone(),
        gauges: *g,
    }));
    let mut out = String::with_capacity(4096);
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry) {
        // Writing into a String does not fail; say so if it ever does.
        out.push_str(&format!("# encoding failed: {e}\n"));
    }
    out
}
