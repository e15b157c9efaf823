//! The cacher's own pages under `/~/`: `/~/metrics` (Prometheus text,
//! `exposition.rs`), `/~/status` and `/~/status.json` (`status.rs`). This
//! file reads a running cacher into the plain [`StatusSnapshot`] and
//! gauges those renderers take, and answers the requests `routes.rs`
//! hands it (after its guard checked the method and `status_allow`).

use crate::access_log::{noted, AccessNote};
use crate::handler::App;
use crate::metrics::{unix_secs, Gauges, Outcome};
use crate::response::{self, Body};
use crate::status::{MappingInfo, StatusSnapshot};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode, Uri};
use std::time::SystemTime;

/// The prefix of the cacher's own pages; `~` is not allowed in mapping
/// prefixes (`^[a-z0-9._-]+$`), so it never collides with one.
pub const RESERVED: &str = "/~/";

/// The page under [`RESERVED`] that `uri` asks for, if it is for this
/// cacher: origin-form, or absolute-form to this cacher's port.
pub fn reserved_page<'u>(uri: &'u Uri, self_ports: &[u16]) -> Option<&'u str> {
    let page = uri.path().strip_prefix(RESERVED)?;
    match uri.scheme_str() {
        None => Some(page),
        Some("http") if self_ports.contains(&uri.port_u16().unwrap_or(80)) => Some(page),
        Some(_) => None,
    }
}

/// The gauges of a running cacher.
pub fn gauges(app: &App) -> Gauges {
    let (files, bytes) = app.store.usage();
    let (reclaimable_files, reclaimable_bytes) = app.metrics.reclaimable();
    Gauges {
        cache_bytes: bytes,
        cache_files: files as u64,
        cache_capacity: app.store.capacity(),
        dropped_log_lines: crate::logging::dropped_lines(),
        retention_reclaimable_bytes: reclaimable_bytes,
        retention_reclaimable_files: reclaimable_files,
    }
}

/// What the status page shows of a running cacher, now.
pub fn snapshot(app: &App) -> StatusSnapshot {
    let counters = app.metrics.counters();
    let started = app.metrics.started();
    StatusSnapshot {
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_unix: unix_secs(started),
        uptime_secs: SystemTime::now()
            .duration_since(started)
            .map_or(0, |d| d.as_secs()),
        hit_ratio: counters.hit_ratio(),
        requests_total: counters.requests.values().sum(),
        gauges: gauges(app),
        mappings: app
            .router
            .mappings()
            .iter()
            .map(|m| MappingInfo {
                prefix: m.prefix.clone(),
                url: m.url.to_string(),
                local: m.local.as_ref().map(|l| l.display().to_string()),
                upstreams: app.downloads.upstream().upstream_states(&m.prefix),
            })
            .collect(),
        generations: app.gens.current_generations(),
        recent_failures: app.metrics.recent_failures(),
        counters,
    }
}

/// A small complete response of the cacher's own.
fn page(content_type: &'static str, body: String, method: &Method) -> Response<Body> {
    let len = body.len();
    let body = if method == Method::HEAD {
        response::empty()
    } else {
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed()
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    noted(r, AccessNote::of(Outcome::Local))
}

/// `/~/metrics`.
pub fn metrics(app: &App, method: &Method) -> Response<Body> {
    page(
        crate::exposition::CONTENT_TYPE,
        crate::exposition::render(&app.metrics.counters(), &gauges(app)),
        method,
    )
}

/// `/~/status`.
pub fn status_html(app: &App, method: &Method) -> Response<Body> {
    page("text/html; charset=utf-8", snapshot(app).html(), method)
}

/// `/~/status.json`.
pub fn status_json(app: &App, method: &Method) -> Response<Body> {
    page("application/json", snapshot(app).json(), method)
}

/// Any other page under `/~/`.
pub fn not_found() -> Response<Body> {
    refused(
        StatusCode::NOT_FOUND,
        "no such page (try /~/status, /~/status.json, /~/metrics)".to_string(),
    )
}

/// A refusal of a request for a page.
pub fn refused(status: StatusCode, message: String) -> Response<Body> {
    noted(
        response::text(status, message),
        AccessNote::of(Outcome::Refused),
    )
}
