//! An in-process HTTP/1.1 (or HTTPS) file server with fault switches, standing in for an
//! APT upstream.
//!
//! [`Upstream::serve`] serves a directory on `127.0.0.1:<random port>` from its own small tokio
//! runtime (so it works from plain `#[test]`s and from async tests alike; it stops when
//! dropped). It answers GET and HEAD with `Content-Length`, `Last-Modified`, `Accept-Ranges`,
//! `ETag`, single `Range` requests (206/416) with `If-Range`, `If-None-Match` and
//! `If-Modified-Since` (304, decided as nginx does: `If-None-Match` first) and keep-alive.
//!
//! Everything it does can be observed and perturbed at runtime: request counts (total, per
//! path, by pattern) and a request log; faults per path pattern ([`Fault`]: status codes,
//! truncated or corrupted bodies, redirects, delays, throttling, stalls, a chunked body without
//! `Content-Length`), applied N times or always; and
//! one-shot hooks that run between two requests ([`Upstream::on_request`]), which is how a test
//! makes "the upstream changes between apt's InRelease and Packages requests" happen.
//!
//! Patterns are matched against the decoded request path (`/dists/stable/InRelease`): `*`
//! matches any run of characters including `/`, everything else is literal; so `"*/InRelease"`,
//! `"*.deb"`, `"/pool/main/h/hello/*"` and `"*"` work as expected.
//!
//! [`Upstream::serve_https`] does the same over TLS with a certificate from a fresh test CA
//! ([`TestCa`]); clients trust it through [`Upstream::ca_cert_path`] (apt:
//! `Acquire::https::CaInfo`; rustls-native-certs / reqwest: `SSL_CERT_FILE`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use tokio::net::TcpListener;

mod paths;
mod serve;
mod tls;

use paths::resolve;
pub use paths::wildcard_match;
use serve::accept_loop;
pub use tls::TestCa;

type Body = BoxBody<Bytes, std::io::Error>;

/// A perturbation applied to responses whose path matches a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (e.g. 404, 500, 503) and a short text body instead of the file.
    Status(u16),
    /// Send the full headers (true `Content-Length`), then only this many body bytes, then
    /// close the connection.
    Truncate {
        /// Body bytes sent before the connection is closed.
        after: u64,
    },
    /// Flip the bits of one byte of the body. `offset` is the file offset of the byte
    /// (`None`: the middle of the file).
    Corrupt {
        /// File offset of the corrupted byte.
        offset: Option<u64>,
    },
    /// Wait this long before sending the response headers.
    Delay(Duration),
    /// Send the body at about this many bytes per second.
    Throttle {
        /// Rate limit.
        bytes_per_sec: u64,
    },
    /// Send the headers, then nothing, keeping the connection open until the server stops.
    Stall,
    /// Close the connection without sending any response.
    Reset,
    /// Send the body without `Content-Length` (chunked transfer coding): only its end tells the
    /// client where the file ends, so a file cut short upstream arrives as a complete response.
    Chunked,
    /// Send the body in chunks of 64 KiB, waiting this long before each.
    ChunkDelay(Duration),
    /// Answer with this redirect status (301, 302, 307...) and `Location: location` instead
    /// of the file.
    Redirect {
        /// The status.
        status: u16,
        /// The `Location` header, sent as it is.
        location: String,
    },
    /// Answer 200 with an endless body (zeros, chunked, no `Content-Length`), whether or not
    /// the file exists: a hostile or broken upstream.
    Endless,
    /// Answer 200 with a captive portal's login page (`Content-Type: text/html`), whether or
    /// not the file exists.
    Html,
}

/// How many matching requests a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Times {
    /// Every matching request until [`Upstream::clear_faults`].
    Always,
    /// Only the next matching request.
    Once,
    /// The next `n` matching requests.
    N(usize),
}

/// One request as the upstream saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// Decoded path, e.g. `/dists/stable/InRelease` (query removed).
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The `Host` header, if any.
    pub host: Option<String>,
    /// The `Referer` header, if any.
    pub referer: Option<String>,
    /// The status answered (`None` while the response is being prepared, or when the
    /// connection was reset).
    pub status: Option<u16>,
}

struct FaultRule {
    pattern: String,
    fault: Fault,
    remaining: Option<usize>,
}

type Hook = Box<dyn FnOnce() + Send + 'static>;

struct HookRule {
    pattern: String,
    nth: usize,
    seen: usize,
    hook: Option<Hook>,
}

#[derive(Default)]
struct Inner {
    total: usize,
    per_path: HashMap<String, usize>,
    log: Vec<RequestRecord>,
    faults: Vec<FaultRule>,
    hooks: Vec<HookRule>,
    armed: Vec<Hook>,
    connections: usize,
    in_flight: usize,
    max_in_flight: usize,
}

struct State {
    root: PathBuf,
    inner: Mutex<Inner>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking hook must not take the whole server down with a poisoned lock.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running upstream server; stops when dropped (the port then refuses connections and
/// open connections are closed).
pub struct Upstream {
    addr: SocketAddr,
    tls: bool,
    state: Arc<State>,
    ca: Option<TestCa>,
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: tokio::sync::watch::Sender<bool>,
    closed: std::sync::mpsc::Receiver<()>,
}

impl Upstream {
    /// Serves `root` over plain HTTP on `127.0.0.1:0`.
    pub fn serve(root: impl Into<PathBuf>) -> Result<Upstream> {
        Self::start(root.into(), None, "127.0.0.1:0".parse()?)
    }

    /// Serves `root` over plain HTTP on a given address, e.g. the [`Upstream::addr`] of an
    /// upstream that was dropped to simulate an outage and now comes back.
    pub fn serve_at(root: impl Into<PathBuf>, addr: SocketAddr) -> Result<Upstream> {
        Self::start(root.into(), None, addr)
    }

    /// Serves `root` over HTTPS with a certificate from a new [`TestCa`].
    pub fn serve_https(root: impl Into<PathBuf>) -> Result<Upstream> {
        let ca = TestCa::generate(&[])?;
        Self::start(root.into(), Some(ca), "127.0.0.1:0".parse()?)
    }

    /// Serves `root` over HTTPS with a certificate from the given CA.
    pub fn serve_https_with(root: impl Into<PathBuf>, ca: TestCa) -> Result<Upstream> {
        Self::start(root.into(), Some(ca), "127.0.0.1:0".parse()?)
    }

    fn start(root: PathBuf, ca: Option<TestCa>, bind: SocketAddr) -> Result<Upstream> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("testkit-upstream")
            .enable_all()
            .build()
            .context("upstream runtime")?;
        // Bind with std so that this also works when called from inside another runtime.
        let std_listener =
            std::net::TcpListener::bind(bind).with_context(|| format!("binding {bind}"))?;
        std_listener
            .set_nonblocking(true)
            .context("non-blocking listener")?;
        let addr = std_listener.local_addr().context("local address")?;
        let listener = {
            let _enter = runtime.enter();
            TcpListener::from_std(std_listener).context("registering the listener")?
        };
        let state = Arc::new(State {
            root,
            inner: Mutex::new(Inner::default()),
        });
        let acceptor = match &ca {
            Some(ca) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(
                ca.server_config()?,
            ))),
            None => None,
        };
        let st = state.clone();
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let (closed_tx, closed) = std::sync::mpsc::channel();
        runtime.spawn(accept_loop(listener, st, acceptor, shutdown_rx, closed_tx));
        Ok(Upstream {
            addr,
            tls: ca.is_some(),
            state,
            ca,
            runtime: Some(runtime),
            shutdown,
            closed,
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
    /// Base URL without trailing slash: `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
    /// The served directory.
    pub fn root(&self) -> &Path {
        &self.state.root
    }
    /// The test CA of an HTTPS upstream.
    pub fn ca(&self) -> Option<&TestCa> {
        self.ca.as_ref()
    }
    /// Path of the CA certificate PEM of an HTTPS upstream.
    pub fn ca_cert_path(&self) -> Option<PathBuf> {
        self.ca.as_ref().map(TestCa::ca_cert_path)
    }

    // ---- observation ----

    /// Number of requests received (all methods, all paths).
    pub fn requests_total(&self) -> usize {
        self.state.lock().total
    }
    /// Number of requests for exactly this decoded path (e.g. `/dists/stable/InRelease`).
    pub fn requests(&self, path: &str) -> usize {
        self.state.lock().per_path.get(path).copied().unwrap_or(0)
    }
    /// Number of requests whose path matches `pattern` (`*` wildcard).
    pub fn requests_matching(&self, pattern: &str) -> usize {
        self.state
            .lock()
            .log
            .iter()
            .filter(|r| wildcard_match(pattern, &r.path))
            .count()
    }
    /// All requests so far, in arrival order.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.state.lock().log.clone()
    }
    /// Number of TCP connections accepted.
    pub fn connections_total(&self) -> usize {
        self.state.lock().connections
    }
    /// The largest number of requests that were being answered at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.state.lock().max_in_flight
    }
    /// Resets counters and the request log (faults and hooks stay).
    pub fn reset_counts(&self) {
        let mut s = self.state.lock();
        s.total = 0;
        s.per_path.clear();
        s.log.clear();
        s.connections = 0;
        s.max_in_flight = s.in_flight;
    }

    // ---- faults ----

    /// Applies `fault` to requests matching `pattern`, `times` times. Several faults can apply
    /// to one request (e.g. a delay and a corruption); a status fault replaces the file.
    pub fn fault(&self, pattern: &str, fault: Fault, times: Times) {
        let remaining = match times {
            Times::Always => None,
            Times::Once => Some(1),
            Times::N(n) => Some(n),
        };
        self.state.lock().faults.push(FaultRule {
            pattern: pattern.to_string(),
            fault,
            remaining,
        });
    }
    /// Answers `status` (404, 500, 503, ...) for matching requests.
    pub fn fail_status(&self, pattern: &str, status: u16, times: Times) {
        self.fault(pattern, Fault::Status(status), times)
    }
    /// Closes the connection after `after` body bytes for matching requests.
    pub fn truncate(&self, pattern: &str, after: u64, times: Times) {
        self.fault(pattern, Fault::Truncate { after }, times)
    }
    /// Flips one byte in the middle of matching files.
    pub fn corrupt(&self, pattern: &str, times: Times) {
        self.fault(pattern, Fault::Corrupt { offset: None }, times)
    }
    /// Delays the headers of matching responses.
    pub fn delay(&self, pattern: &str, delay: Duration, times: Times) {
        self.fault(pattern, Fault::Delay(delay), times)
    }
    /// Throttles the body of matching responses.
    pub fn throttle(&self, pattern: &str, bytes_per_sec: u64, times: Times) {
        self.fault(pattern, Fault::Throttle { bytes_per_sec }, times)
    }
    /// Closes the connection without a response for matching requests.
    pub fn reset(&self, pattern: &str, times: Times) {
        self.fault(pattern, Fault::Reset, times)
    }
    /// Sends headers and then nothing for matching requests.
    pub fn stall(&self, pattern: &str, times: Times) {
        self.fault(pattern, Fault::Stall, times)
    }
    /// Sends matching bodies chunked, without `Content-Length`.
    pub fn chunked(&self, pattern: &str, times: Times) {
        self.fault(pattern, Fault::Chunked, times)
    }
    /// Waits `delay` before each 64 KiB chunk of matching bodies.
    pub fn chunk_delay(&self, pattern: &str, delay: Duration, times: Times) {
        self.fault(pattern, Fault::ChunkDelay(delay), times)
    }
    /// Answers requests matching `pattern` with `302 Location: location`.
    pub fn redirect(&self, pattern: &str, location: &str, times: Times) {
        let location = location.to_string();
        self.fault(
            pattern,
            Fault::Redirect {
                status: 302,
                location,
            },
            times,
        )
    }
    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    // ---- content ----

    /// Replaces (or creates) the file served at the decoded URL path `path` (e.g.
    /// `/dists/stable/Release`) with `data`, atomically: written to a temporary file next to it,
    /// then renamed over it, so a response already under way keeps sending the old bytes and
    /// the next request gets the new ones.
    pub fn put(&self, path: &str, data: impl AsRef<[u8]>) -> Result<()> {
        let target = resolve(&self.state.root, path)
            .with_context(|| format!("{path}: not a path under the served directory"))?;
        let dir = target
            .parent()
            .with_context(|| format!("{path}: no parent directory"))?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("temporary file in {}", dir.display()))?;
        std::io::Write::write_all(&mut tmp, data.as_ref())
            .with_context(|| format!("writing {}", tmp.path().display()))?;
        tmp.persist(&target)
            .with_context(|| format!("renaming onto {}", target.display()))?;
        Ok(())
    }

    // ---- hooks ----

    /// Runs `hook` once, after the `nth` (1-based) request matching `pattern` has arrived and
    /// its response was fixed (the file is open, so its bytes are the old ones), and before any
    /// later request is answered. Typical use: `up.on_request("*/InRelease", 1, move ||
    /// { repo.publish().unwrap(); })` to change the repository in the middle of an update.
    /// The hook runs on a blocking thread of the server; requests wait for it.
    pub fn on_request(&self, pattern: &str, nth: usize, hook: impl FnOnce() + Send + 'static) {
        self.state.lock().hooks.push(HookRule {
            pattern: pattern.to_string(),
            nth: nth.max(1),
            seen: 0,
            hook: Some(Box::new(hook)),
        });
    }
    /// Whether every registered hook has run.
    pub fn hooks_done(&self) -> bool {
        let s = self.state.lock();
        s.armed.is_empty() && s.hooks.iter().all(|h| h.hook.is_none())
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        // Close the listener (and the open connections) before returning, so that the port
        // refuses connections as soon as the upstream is dropped.
        let _ = self.shutdown.send(true);
        let _ = self.closed.recv_timeout(Duration::from_secs(5));
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests;
