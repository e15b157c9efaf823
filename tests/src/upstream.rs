//! An in-process HTTP/1.1 (or HTTPS) file server with fault switches, standing in for an
//! APT upstream.
//!
//! [`Upstream::serve`] serves a directory on `127.0.0.1:<random port>` from its own small tokio
//! runtime (so it works from plain `#[test]`s and from async tests alike; it stops when
//! dropped). It answers GET and HEAD with `Content-Length`, `Last-Modified`, `Accept-Ranges`,
//! `ETag`, single `Range` requests (206/416) with `If-Range`, `If-Modified-Since` (304) and
//! keep-alive.
//!
//! Everything it does can be observed and perturbed at runtime: request counts (total, per
//! path, by pattern) and a request log; faults per path pattern ([`Fault`]: status codes,
//! truncated or corrupted bodies, delays, throttling, stalls, a chunked body without
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
use std::io::SeekFrom;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Channel, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::TcpListener;

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

/// A test certificate authority and a server certificate for `127.0.0.1` and `localhost`.
pub struct TestCa {
    ca_pem: String,
    server_cert_der: Vec<u8>,
    server_key_der: Vec<u8>,
    dir: tempfile::TempDir,
}

impl TestCa {
    /// Generates a CA and a server certificate signed by it (valid for `127.0.0.1`, `::1`,
    /// `localhost` and the extra DNS `names`), and writes the CA certificate to a temporary
    /// `ca.pem`.
    pub fn generate(names: &[&str]) -> Result<TestCa> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "testkit CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().context("CA key")?;
        let ca_cert = ca_params.self_signed(&ca_key).context("CA certificate")?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut sans: Vec<String> = vec!["127.0.0.1".into(), "::1".into(), "localhost".into()];
        sans.extend(names.iter().map(|s| s.to_string()));
        let mut params = CertificateParams::new(sans)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "testkit upstream");
        params.use_authority_key_identifier_extension = true;
        params
            .extended_key_usages
            .push(rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        let key = KeyPair::generate().context("server key")?;
        let cert = params
            .signed_by(&key, &issuer)
            .context("server certificate")?;

        let dir = tempfile::tempdir().context("CA temp dir")?;
        let ca_pem = ca_cert.pem();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).context("writing ca.pem")?;
        Ok(TestCa {
            ca_pem,
            server_cert_der: cert.der().to_vec(),
            server_key_der: key.serialize_der(),
            dir,
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Path of a file holding the CA certificate (PEM); lives as long as the `TestCa`.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A rustls server configuration presenting the server certificate (HTTP/1.1 ALPN).
    pub fn server_config(&self) -> Result<rustls::ServerConfig> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.server_cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone())),
            )
            .context("TLS server certificate")?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
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

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    closed: std::sync::mpsc::Sender<()>,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        let (stream, _) = match accepted {
            Ok(x) => x,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        state.lock().connections += 1;
        let st = state.clone();
        let tls = tls.clone();
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
            let builder = {
                let mut b = hyper::server::conn::http1::Builder::new();
                b.keep_alive(true);
                b
            };
            let serve = async {
                match tls {
                    Some(acc) => {
                        if let Ok(s) = acc.accept(stream).await {
                            let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    }
                }
            };
            // On shutdown the connection is dropped, i.e. closed.
            tokio::select! {
                _ = serve => {}
                _ = conn_shutdown.changed() => {}
            }
        });
    }
    drop(listener);
    let _ = closed.send(());
}

struct InFlight(Arc<State>);
impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> std::result::Result<Response<Body>, std::io::Error> {
    let path = percent_decode(req.uri().path());
    let record = RequestRecord {
        method: req.method().to_string(),
        path: path.clone().unwrap_or_else(|| req.uri().path().to_string()),
        range: header_str(&req, header::RANGE),
        host: header_str(&req, header::HOST),
        status: None,
    };
    // Count, pick faults, take hooks that are due before this request.
    let (armed, faults, guard, log_index) = {
        let mut s = state.lock();
        s.total += 1;
        *s.per_path.entry(record.path.clone()).or_insert(0) += 1;
        s.log.push(record.clone());
        let log_index = s.log.len() - 1;
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        let armed: Vec<Hook> = std::mem::take(&mut s.armed);
        let mut faults = Vec::new();
        for rule in s.faults.iter_mut() {
            if wildcard_match(&rule.pattern, &record.path) && rule.remaining != Some(0) {
                if let Some(n) = rule.remaining.as_mut() {
                    *n -= 1;
                }
                faults.push(rule.fault.clone());
            }
        }
        s.faults.retain(|r| r.remaining != Some(0));
        (armed, faults, InFlight(state.clone()), log_index)
    };
    for hook in armed {
        let _ = tokio::task::spawn_blocking(hook).await;
    }
    let resp = respond(&state, &req, path.as_deref(), &faults).await;
    // Arm hooks triggered by this request: they run before the next request is answered.
    {
        let mut s = state.lock();
        let mut due = Vec::new();
        for h in s.hooks.iter_mut() {
            if h.hook.is_some() && wildcard_match(&h.pattern, &record.path) {
                h.seen += 1;
                if h.seen == h.nth {
                    if let Some(f) = h.hook.take() {
                        due.push(f);
                    }
                }
            }
        }
        s.armed.extend(due);
        if !faults.contains(&Fault::Reset) {
            // The log may have been reset meanwhile: only touch the entry if it is ours.
            if let Some(r) = s.log.get_mut(log_index) {
                if r.path == record.path && r.status.is_none() {
                    r.status = Some(resp.status().as_u16());
                }
            }
        }
    }
    drop(guard);
    if faults.contains(&Fault::Reset) {
        // An error from the service makes hyper close the connection without a response.
        return Err(std::io::Error::other("testkit fault: connection reset"));
    }
    Ok(resp)
}

fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn text(status: StatusCode, msg: &str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(format!("{msg}\n")))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn respond(
    state: &State,
    req: &Request<Incoming>,
    path: Option<&str>,
    faults: &[Fault],
) -> Response<Body> {
    for f in faults {
        if let Fault::Delay(d) = f {
            tokio::time::sleep(*d).await;
        }
    }
    for f in faults {
        if let Fault::Status(code) = f {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return text(status, &format!("testkit fault: status {code}"));
        }
    }
    let is_head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !is_head {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD");
    }
    let Some(path) = path else {
        return text(StatusCode::BAD_REQUEST, "bad percent-encoding");
    };
    let Some(file_path) = resolve(&state.root, path) else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let file = match tokio::fs::File::open(&file_path).await {
        Ok(f) => f,
        Err(_) => return text(StatusCode::NOT_FOUND, "not found"),
    };
    let meta = match file.metadata().await {
        Ok(m) if m.is_file() => m,
        _ => return text(StatusCode::NOT_FOUND, "not found"),
    };
    let len = meta.len();
    let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let last_modified = httpdate::fmt_http_date(mtime);

    if faults.is_empty() {
        if let Some(ims) = header_str(req, header::IF_MODIFIED_SINCE)
            .and_then(|v| httpdate::parse_http_date(&v).ok())
        {
            let secs = |t: SystemTime| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
            };
            if secs(mtime) <= secs(ims) {
                let mut r = text(StatusCode::NOT_MODIFIED, "");
                *r.body_mut() = Full::new(Bytes::new()).map_err(|n| match n {}).boxed();
                r.headers_mut().remove(header::CONTENT_TYPE);
                if let Ok(v) = HeaderValue::from_str(&last_modified) {
                    r.headers_mut().insert(header::LAST_MODIFIED, v);
                }
                return r;
            }
        }
    }

    let etag = {
        use std::os::unix::fs::MetadataExt;
        let nanos = mtime
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("\"{:x}-{:x}-{:x}\"", nanos, len, meta.ino())
    };
    // If-Range: the range applies only if the client's validator still matches (a date only
    // counts if it is a strong validator: at least a second older than now, RFC 9110 8.8.2.2).
    let range = match header_str(req, header::IF_RANGE) {
        None => header_str(req, header::RANGE),
        Some(v) if v == etag => header_str(req, header::RANGE),
        Some(v) => {
            let strong_date = httpdate::parse_http_date(&v).is_ok_and(|d| {
                v == last_modified
                    && SystemTime::now()
                        .duration_since(mtime)
                        .is_ok_and(|age| age >= Duration::from_secs(2))
                    && d <= mtime + Duration::from_secs(1)
            });
            if strong_date {
                header_str(req, header::RANGE)
            } else {
                None
            }
        }
    };
    let (status, start, count) = match range {
        None => (StatusCode::OK, 0, len),
        Some(r) => match parse_range(&r, len) {
            RangeResult::Full => (StatusCode::OK, 0, len),
            RangeResult::Partial(s, e) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
            RangeResult::Unsatisfiable => {
                let mut resp = text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return resp;
            }
        },
    };

    let mut builder = Response::builder().status(status);
    if !faults.contains(&Fault::Chunked) {
        builder = builder.header(header::CONTENT_LENGTH, count);
    }
    builder = builder
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::LAST_MODIFIED, last_modified)
        .header(header::ETAG, etag);
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", start, start + count - 1, len),
        );
    }
    let body: Body = if is_head {
        Full::new(Bytes::new()).map_err(|n| match n {}).boxed()
    } else {
        let (tx, body) = Channel::<Bytes, std::io::Error>::new(4);
        let plan = BodyPlan::new(faults, start, count, len);
        tokio::spawn(send_body(file, tx, plan));
        body.boxed()
    };
    builder
        .body(body)
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}

struct BodyPlan {
    start: u64,
    count: u64,
    truncate: Option<u64>,
    corrupt: Option<u64>,
    throttle: Option<u64>,
    chunk_delay: Option<Duration>,
    stall: bool,
}

impl BodyPlan {
    fn new(faults: &[Fault], start: u64, count: u64, len: u64) -> BodyPlan {
        let mut p = BodyPlan {
            start,
            count,
            truncate: None,
            corrupt: None,
            throttle: None,
            chunk_delay: None,
            stall: false,
        };
        for f in faults {
            match f {
                Fault::Truncate { after } => p.truncate = Some(*after),
                Fault::Corrupt { offset } => p.corrupt = Some(offset.unwrap_or(len / 2)),
                Fault::Throttle { bytes_per_sec } => p.throttle = Some((*bytes_per_sec).max(1)),
                Fault::Stall => p.stall = true,
                Fault::ChunkDelay(d) => p.chunk_delay = Some(*d),
                Fault::Status(_) | Fault::Delay(_) | Fault::Reset | Fault::Chunked => {}
            }
        }
        p
    }
}

async fn send_body(
    mut file: tokio::fs::File,
    mut tx: http_body_util::channel::Sender<Bytes, std::io::Error>,
    plan: BodyPlan,
) {
    if plan.stall {
        // Keep the sender (and so the connection) alive until the server shuts down.
        std::future::pending::<()>().await;
    }
    if plan.start > 0 && file.seek(SeekFrom::Start(plan.start)).await.is_err() {
        tx.abort(std::io::Error::other("seek failed"));
        return;
    }
    let chunk_size: u64 = match plan.throttle {
        Some(bps) => (bps / 20).clamp(1, 64 * 1024),
        None => 64 * 1024,
    };
    let mut sent: u64 = 0;
    let mut pos = plan.start;
    while sent < plan.count {
        let mut want = chunk_size.min(plan.count - sent);
        if let Some(t) = plan.truncate {
            if sent >= t {
                tx.abort(std::io::Error::other("testkit fault: truncated"));
                return;
            }
            want = want.min(t - sent);
        }
        if let Some(d) = plan.chunk_delay {
            tokio::time::sleep(d).await;
        }
        let mut buf = vec![0u8; want as usize];
        if let Err(e) = file.read_exact(&mut buf).await {
            tx.abort(e);
            return;
        }
        if let Some(off) = plan.corrupt {
            if off >= pos && off < pos + want {
                if let Some(b) = buf.get_mut((off - pos) as usize) {
                    *b ^= 0xff;
                }
            }
        }
        if tx.send_data(Bytes::from(buf)).await.is_err() {
            return;
        }
        sent += want;
        pos += want;
        if let Some(bps) = plan.throttle {
            tokio::time::sleep(Duration::from_secs_f64(want as f64 / bps as f64)).await;
        }
    }
    if let Some(t) = plan.truncate {
        if t < plan.count {
            tx.abort(std::io::Error::other("testkit fault: truncated"));
        }
    }
}

enum RangeResult {
    Full,
    Partial(u64, u64),
    Unsatisfiable,
}

/// Parses a single `bytes=` range; multi-ranges and junk are answered in full.
fn parse_range(value: &str, len: u64) -> RangeResult {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeResult::Full;
    };
    if spec.contains(',') {
        return RangeResult::Full;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeResult::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // suffix: last b bytes
        let Ok(n) = b.parse::<u64>() else {
            return RangeResult::Full;
        };
        if n == 0 || len == 0 {
            return RangeResult::Unsatisfiable;
        }
        let n = n.min(len);
        return RangeResult::Partial(len - n, len - 1);
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeResult::Full;
    };
    if start >= len {
        return RangeResult::Unsatisfiable;
    }
    let end = if b.is_empty() {
        len - 1
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e.min(len - 1),
            _ => return RangeResult::Full,
        }
    };
    RangeResult::Partial(start, end)
}

/// Maps a decoded URL path to a file under `root`, refusing anything that escapes it.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = Path::new(path.trim_start_matches('/'));
    let mut out = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (also `/`).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*/InRelease", "/dists/stable/InRelease"));
        assert!(!wildcard_match("*/InRelease", "/dists/stable/Release"));
        assert!(wildcard_match("*", "/x"));
        assert!(wildcard_match(
            "/pool/*.deb",
            "/pool/main/h/hello/hello_1_amd64.deb"
        ));
        assert!(!wildcard_match(
            "/pool/*.deb",
            "/pool/main/h/hello/hello.dsc"
        ));
        assert!(wildcard_match("/a*b*c", "/abc"));
        assert!(!wildcard_match("/a*a", "/a"));
        assert!(wildcard_match("/exact", "/exact"));
    }

    #[test]
    fn ranges() {
        assert!(matches!(
            parse_range("bytes=0-9", 100),
            RangeResult::Partial(0, 9)
        ));
        assert!(matches!(
            parse_range("bytes=90-", 100),
            RangeResult::Partial(90, 99)
        ));
        assert!(matches!(
            parse_range("bytes=-10", 100),
            RangeResult::Partial(90, 99)
        ));
        assert!(matches!(
            parse_range("bytes=100-", 100),
            RangeResult::Unsatisfiable
        ));
        assert!(matches!(
            parse_range("bytes=5-500", 100),
            RangeResult::Partial(5, 99)
        ));
    }

    #[test]
    fn resolve_refuses_escapes() {
        let root = Path::new("/srv");
        assert_eq!(resolve(root, "/a/b"), Some(PathBuf::from("/srv/a/b")));
        assert_eq!(resolve(root, "/a/../../etc/passwd"), None);
    }
}
