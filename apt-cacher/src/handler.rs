//! What to do with one request for a repository file (the proxy behind
//! `routes.rs`): route it, then serve a Release file from the suite's
//! current generation, an index or by-hash file from a generation (fetching
//! and verifying it first if needed), or any other file from the cache when
//! it still matches what the current indices say, or from the mapping's
//! local mirror when its file does (`local.rs`), otherwise through a
//! coalesced, verified download. `CONNECT` is tunnelled. Each response
//! carries an [`AccessNote`] for `access_log.rs`.
use crate::access_log::{self, AccessNote};
use crate::cache::key::Lookup;
use crate::cache::{Cache, CacheError, CacheKey, Found, InFlight, Storage, UpstreamNote};
use crate::config::Config;
use crate::generation::{Generations, Invalid, MetaError, SuiteRefused, RELEASE_FILES};
use crate::local::LocalMirrors;
use crate::mapping::{Route, Router};
use crate::metrics::{Metrics, Outcome};
use crate::response::{self, Body};
use crate::status_allow::status_allowed;
use hyper::{Method, Request, Response, StatusCode};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// The body of a request as the router hands it on.
pub type ReqBody = axum::body::Body;

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
    /// The mappings' local mirrors (`local`) and what is known of their files.
    pub local: Arc<LocalMirrors>,
    /// The configuration.
    pub config: Config,
    /// The counters behind `/~/metrics` and `/~/status`.
    pub metrics: Arc<Metrics>,
    /// The ports the cacher listens on: proxy requests to them for `/~/...`
    /// reach its own pages.
    pub self_ports: Vec<u16>,
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
    /// Handles one request from `peer` that is not for the cacher's own
    /// pages (`routes.rs` routes those); the response carries its
    /// [`AccessNote`] for the access-log layer.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<ReqBody>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let (mut mapping, mut path) = (String::new(), None);
        // The body is needed only by a tunnel (its upgrade); the head is
        // held across awaits, so it goes on without the body (not `Sync`).
        let (parts, body) = req.into_parts();
        let req = Request::from_parts(parts, ());
        let answer = match self.router.route(req.method(), req.uri()) {
            Route::Refuse(status, msg) => {
                Answer::new(response::text(status, msg), Outcome::Refused)
            }
            Route::Connect(target) => {
                path = Some(target.clone());
                let (parts, ()) = req.into_parts();
                let req = Request::from_parts(parts, body);
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
                let answer = self.file(m, &p, &req, peer).await;
                path = Some(p);
                answer
            }
        };
        let note = AccessNote {
            outcome: answer.outcome,
            mapping,
            path,
            upstream: answer.upstream,
        };
        access_log::noted(answer.resp, note)
    }

    /// True when `client` may read the cacher's own pages: one of the
    /// `status_allow` networks, or, when that key is not set, loopback
    /// (`127.0.0.0/8`, `::1`). An explicit list replaces the default, so
    /// loopback is then allowed only if it is listed.
    pub fn status_allowed(&self, client: IpAddr) -> bool {
        status_allowed(self.config.status_allow.as_deref(), client)
    }

    /// Serves repository path `path` of `mapping`.
    async fn file(
        &self,
        mapping: usize,
        path: &str,
        req: &Request<()>,
        client: SocketAddr,
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
                .is_some_and(|u| upstream.is_negative(&u))
                || self.gens.unknown_remembered(mapping, dir);
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
        let Some((prefix, local)) = self
            .router
            .mappings()
            .get(mapping)
            .map(|m| (m.prefix.clone(), m.local.clone()))
        else {
            return Answer::new(
                response::text(StatusCode::NOT_FOUND, "no such mapping"),
                Outcome::Refused,
            );
        };
        // No loaded index lists it: load the ones that should (generation/pool_lookup.rs).
        let lookup = self.gens.lookup(mapping, path).await;
        let key = CacheKey::for_file(&prefix, path, &lookup);
        if let (Lookup::Listed(cs), Some(root)) = (&lookup, &local) {
            // Not cached yet: the local mirror's file, if it matches.
            let cached = key
                .storage_key()
                .is_some_and(|k| self.store.get(&k).is_some());
            if !cached {
                if let Some(f) = self.local.open(&prefix, root, path, cs).await {
                    return Answer::new(
                        response::serve_file(f, path, headers, is_head).await,
                        Outcome::Mirror,
                    );
                }
            }
        }
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
    fn connect(&self, req: Request<ReqBody>, target: String) -> Response<Body> {
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
            response::text(crate::upstream::client_status(u), u.to_string()),
            if negative {
                Outcome::Negative
            } else {
                Outcome::Miss
            },
            u.status_code(),
        ),
        // A Release file left out of a verified generation (signed.rs):
        // not there, as in apt-mirror's snapshot.
        MetaError::Invalid(m) if matches!(**m, Invalid::NotAvailable(_)) => (
            response::text(StatusCode::NOT_FOUND, m.to_string()),
            Outcome::Refused,
            None,
        ),
        MetaError::Invalid(m) => (
            response::text(StatusCode::BAD_GATEWAY, m.to_string()),
            Outcome::Error,
            None,
        ),
        // Refused: it does not verify (signed.rs); no generation of it is served.
        MetaError::Signature(r) => (
            response::text(StatusCode::BAD_GATEWAY, r.to_string()),
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
        MetaError::Suite(SuiteRefused::Busy { .. }) => (
            response::text(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            Outcome::Error,
            None,
        ),
        // Not a suite name: upstream is not asked.
        MetaError::Suite(_) => (
            response::text(StatusCode::BAD_REQUEST, e.to_string()),
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
