//! What to do with one request: answer the cacher's own pages
//! (`/~/metrics`, `/~/status`, `/~/status.json`, see [`crate::status`]),
//! otherwise route it, then serve a Release file from the suite's current
//! generation, an index or by-hash file from a generation (fetching and
//! verifying it first if needed), or any other file from the cache when it
//! still matches what the current indices say, otherwise through a
//! coalesced, verified download.
//!
//! Every request gets one access-log line (tracing target `access`) when
//! its response ends: the body is wrapped so that the line is written when
//! the body finishes or is dropped early, with the body bytes handed to
//! hyper (for an aborted transfer, some may still have been in its buffers
//! or the socket's, not received by the client), the time the whole
//! transfer took and `complete=false` for an aborted one.
use crate::cache::{Cache, CacheError, CacheKey, Found, InFlight, Storage, UpstreamNote};
use crate::config::Config;
use crate::generation::{Generations, MetaError, RELEASE_FILES};
use crate::mapping::{Route, Router};
use crate::metrics::{Metrics, Outcome};
use crate::response::{self, Body};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// Everything a request needs.
#[derive(Debug)]
pub struct App {
    /// Routing table.
    pub router: Router,
    /// The pool-file cache (over `store` and `downloads`).
    pub cache: Cache,
    /// The files of the pool-file cache.
    pub store: Arc<Storage>,
    /// Downloads in flight.
    pub downloads: Arc<InFlight>,
    /// Metadata generations.
    pub gens: Arc<Generations>,
    /// The configuration.
    pub config: Config,
    /// The counters behind `/~/metrics` and `/~/status`.
    pub metrics: Arc<Metrics>,
    /// The ports the cacher listens on: proxy requests to them for `/~/...`
    /// reach its own pages.
    pub self_ports: Vec<u16>,
}

/// The prefix of the cacher's own pages; `~` is not allowed in mapping
/// prefixes (`^[a-z0-9._-]+$`), so it never collides with one.
pub const RESERVED: &str = "/~/";

/// The page under [`RESERVED`] that `uri` asks for, if it is for this
/// cacher: origin-form, or absolute-form to this cacher's port.
fn reserved_page<'u>(uri: &'u Uri, self_ports: &[u16]) -> Option<&'u str> {
    let page = uri.path().strip_prefix(RESERVED)?;
    match uri.scheme_str() {
        None => Some(page),
        Some("http") if self_ports.contains(&uri.port_u16().unwrap_or(80)) => Some(page),
        Some(_) => None,
    }
}

/// What the access-log line of one request says, besides the bytes sent.
#[derive(Debug)]
struct Access {
    client: SocketAddr,
    method: Method,
    uri: String,
    mapping: String,
    path: String,
    status: u16,
    outcome: Outcome,
    upstream: Option<UpstreamNote>,
    started: Instant,
}

impl Access {
    fn emit(&self, bytes: u64, complete: bool) {
        let up = self.upstream;
        tracing::info!(
            target: "access",
            client = %self.client,
            method = %self.method,
            uri = %self.uri,
            mapping = %self.mapping,
            path = %self.path,
            status = self.status,
            bytes,
            ms = self.started.elapsed().as_millis() as u64,
            result = %self.outcome.as_str(),
            complete,
            upstream_status = up.and_then(|u| u.status),
            upstream_ms = up.map(|u| u.ms),
            "request"
        );
    }
}

/// A response body that counts the bytes it yields (into the metrics, as
/// they are handed to hyper) and writes the access-log line when dropped.
struct Logged {
    inner: Body,
    access: Access,
    metrics: Arc<Metrics>,
    /// `Content-Length` of the response, if any.
    length: Option<u64>,
    bytes: u64,
    ended: bool,
    failed: bool,
}

impl hyper::body::Body for Logged {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    this.bytes += n;
                    this.metrics.sent(this.access.outcome, n);
                }
            }
            Poll::Ready(Some(Err(_))) => this.failed = true,
            Poll::Ready(None) => this.ended = true,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let complete = !self.failed
            && (self.ended
                || self.inner.is_end_stream()
                || self.length.is_some_and(|l| l == self.bytes));
        self.access.emit(self.bytes, complete);
    }
}

/// A small complete response of the cacher's own.
fn page(
    status: StatusCode,
    content_type: &'static str,
    body: String,
    head: bool,
) -> Response<Body> {
    let len = body.len();
    let body = if head {
        response::empty()
    } else {
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed()
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

/// How one request was answered.
struct Answer {
    resp: Response<Body>,
    outcome: Outcome,
    upstream: Option<UpstreamNote>,
}

impl Answer {
    fn new(resp: Response<Body>, outcome: Outcome) -> Answer {
        Answer {
            resp,
            outcome,
            upstream: None,
        }
    }
}

impl App {
    /// Handles one request from `peer`.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let started = Instant::now();
        let method = req.method().clone();
        let uri = req.uri().clone();
        let (mut mapping, mut path) = (String::new(), uri.path().to_string());
        let answer = if let Some(page) = reserved_page(&uri, &self.self_ports) {
            self.local(page, &method, peer.ip())
        } else {
            match self.router.route(&method, req.uri()) {
                Route::Refuse(status, msg) => {
                    Answer::new(response::text(status, msg), Outcome::Refused)
                }
                Route::Connect(target) => {
                    path = target.clone();
                    Answer::new(self.connect(req, target), Outcome::Tunnel)
                }
                Route::File {
                    mapping: m,
                    path: p,
                } => {
                    mapping = self
                        .router
                        .mappings()
                        .get(m)
                        .map_or("?", |m| m.prefix.as_str())
                        .to_string();
                    let answer = self.file(m, &p, &req, peer.ip()).await;
                    path = p;
                    answer
                }
            }
        };
        self.metrics.request(answer.outcome);
        let (parts, body) = answer.resp.into_parts();
        let length = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let logged = Logged {
            inner: body,
            access: Access {
                client: peer,
                method,
                uri: uri.to_string(),
                mapping,
                path,
                status: parts.status.as_u16(),
                outcome: answer.outcome,
                upstream: answer.upstream,
                started,
            },
            metrics: self.metrics.clone(),
            length,
            bytes: 0,
            ended: false,
            failed: false,
        };
        Response::from_parts(parts, logged.boxed())
    }

    /// True when `client` may read the cacher's own pages (`status_allow`).
    pub fn status_allowed(&self, client: IpAddr) -> bool {
        let client = client.to_canonical();
        self.config
            .status_allow
            .as_ref()
            .is_none_or(|nets| nets.iter().any(|n| n.contains(&client)))
    }

    /// Answers a request for one of the cacher's own pages.
    fn local(&self, name: &str, method: &Method, client: IpAddr) -> Answer {
        if method != Method::GET && method != Method::HEAD {
            return Answer::new(
                response::text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "only GET and HEAD are supported",
                ),
                Outcome::Refused,
            );
        }
        if !self.status_allowed(client) {
            return Answer::new(
                response::text(
                    StatusCode::FORBIDDEN,
                    format!("{client} may not read the status pages (status_allow)"),
                ),
                Outcome::Refused,
            );
        }
        let head = method == Method::HEAD;
        let resp = match name {
            "metrics" => page(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                crate::metrics::render(&self.metrics.counters(), &crate::status::gauges(self)),
                head,
            ),
            "status" => page(
                StatusCode::OK,
                "text/html; charset=utf-8",
                crate::status::Status::collect(self).html(),
                head,
            ),
            "status.json" => page(
                StatusCode::OK,
                "application/json",
                crate::status::Status::collect(self).json(),
                head,
            ),
            _ => {
                return Answer::new(
                    response::text(
                        StatusCode::NOT_FOUND,
                        "no such page (try /~/status, /~/status.json, /~/metrics)",
                    ),
                    Outcome::Refused,
                )
            }
        };
        Answer::new(resp, Outcome::Local)
    }

    /// Serves repository path `path` of `mapping`.
    async fn file(
        &self,
        mapping: usize,
        path: &str,
        req: &Request<Incoming>,
        client: IpAddr,
    ) -> Answer {
        let is_head = req.method() == Method::HEAD;
        let headers = req.headers();
        let upstream = self.downloads.upstream();
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        if RELEASE_FILES.contains(&name) {
            // Known before asking: was a failure of this URL remembered?
            let negative = self
                .router
                .upstream_url(mapping, path)
                .is_some_and(|u| upstream.is_negative(&u));
            let asked = Instant::now();
            return match self.gens.release_file(mapping, dir, name, client).await {
                Ok(a) => Answer {
                    resp: response::serve_path(&a.path, path, headers, is_head).await,
                    outcome: a.outcome,
                    upstream: a.upstream,
                },
                Err(e) => meta_error(&e, negative, asked),
            };
        }
        if let Some(found) = self.gens.meta_file(mapping, path, client).await {
            return match found {
                Ok(found) => self.serve(found, path, headers, is_head, None).await,
                Err(e) => meta_error(&e, false, Instant::now()),
            };
        }
        let Some(prefix) = self
            .router
            .mappings()
            .get(mapping)
            .map(|m| m.prefix.clone())
        else {
            return Answer::new(
                response::text(StatusCode::NOT_FOUND, "no such mapping"),
                Outcome::Refused,
            );
        };
        // No loaded index lists it: load the ones that should (pool_lookup.rs).
        let lookup = self.gens.lookup(mapping, path).await;
        let key = CacheKey::for_file(&prefix, path, &lookup);
        let url = self.router.upstream_url(mapping, path);
        match self.cache.get(&key, url) {
            Ok(found) => self.serve(found, path, headers, is_head, Some(&key)).await,
            Err(e @ CacheError::BadPath) => Answer::new(
                response::text(StatusCode::BAD_REQUEST, e.to_string()),
                Outcome::Refused,
            ),
            Err(e @ CacheError::TempFile(_)) => Answer::new(
                response::text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                Outcome::Error,
            ),
        }
    }

    /// The response for `found` at `path`: a complete file is a hit; a
    /// download is a miss, coalesced, pass (not kept: `key` says so) or
    /// negative. `key` is `None` for metadata (always kept).
    async fn serve(
        &self,
        found: Found,
        path: &str,
        headers: &hyper::HeaderMap,
        is_head: bool,
        key: Option<&CacheKey>,
    ) -> Answer {
        match found {
            Found::File(p) => Answer::new(
                response::serve_path(&p, path, headers, is_head).await,
                Outcome::Hit,
            ),
            Found::Fetching { source, joined } => {
                let resp = response::serve(source.clone(), path, headers, is_head).await;
                let pass = key.is_some_and(|k| !k.is_kept());
                fetched(resp, source.upstream_note(), joined, pass)
            }
        }
    }

    /// Tunnels a `CONNECT` to an allowed target, without caching.
    fn connect(&self, req: Request<Incoming>, target: String) -> Response<Body> {
        let timeout = self.config.timeouts.connect;
        tokio::spawn(async move {
            let upgraded = match hyper::upgrade::on(req).await {
                Ok(u) => u,
                Err(e) => return tracing::debug!(error = %e, "CONNECT upgrade failed"),
            };
            let mut client = hyper_util::rt::TokioIo::new(upgraded);
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&target)).await {
                Ok(Ok(mut server)) => {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
                Ok(Err(e)) => tracing::warn!(target = %target, error = %e, "CONNECT failed"),
                Err(_) => tracing::warn!(target = %target, "CONNECT timed out"),
            }
        });
        Response::new(response::empty())
    }
}

/// The answer for a download started or joined: `negative` when upstream
/// was not asked because its failure is remembered, `coalesced` when the
/// download was joined, `pass` when it is not cached, otherwise `miss`.
fn fetched(resp: Response<Body>, note: Option<UpstreamNote>, joined: bool, pass: bool) -> Answer {
    let outcome = if note.is_some_and(|n| n.negative) {
        Outcome::Negative
    } else if joined {
        Outcome::Coalesced
    } else if pass {
        Outcome::Pass
    } else {
        Outcome::Miss
    };
    Answer {
        resp,
        outcome,
        upstream: note,
    }
}

/// The answer for failed metadata; `negative` when the failure was
/// remembered; upstream was asked at `asked`.
fn meta_error(e: &MetaError, negative: bool, asked: Instant) -> Answer {
    let (resp, outcome, status) = match e {
        MetaError::Upstream(u) => (
            response::text(u.client_status(), u.to_string()),
            if negative {
                Outcome::Negative
            } else {
                Outcome::Miss
            },
            crate::cache::status_of(u),
        ),
        MetaError::Invalid(m) => (
            response::text(StatusCode::BAD_GATEWAY, m.to_string()),
            Outcome::Error,
            None,
        ),
        MetaError::Io(m) => (
            response::text(StatusCode::INTERNAL_SERVER_ERROR, m.to_string()),
            Outcome::Error,
            None,
        ),
        MetaError::NotListed { .. } => (
            response::text(StatusCode::NOT_FOUND, e.to_string()),
            Outcome::Refused,
            None,
        ),
    };
    Answer {
        resp,
        outcome,
        upstream: matches!(e, MetaError::Upstream(_)).then_some(UpstreamNote {
            status,
            ms: asked.elapsed().as_millis() as u64,
            negative,
        }),
    }
}
