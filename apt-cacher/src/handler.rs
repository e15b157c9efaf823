//! What to do with one request for a repository file (the proxy behind
//! `routes.rs`): route it, then serve a Release file from the suite's
//! current generation, an index or by-hash file from a generation (fetching
//! and verifying it first if needed), or any other file from the cache when
//! it still matches what the current indices say, otherwise through a
//! coalesced, verified download. `CONNECT` is tunnelled. Each response
//! carries an [`AccessNote`] for `access_log.rs`.
use crate::access_log::{self, AccessNote};
use crate::config::Config;
use crate::download::{Downloads, Job, UpstreamNote};
use crate::generation::{Generations, Meta, MetaError, RELEASE_FILES};
use crate::mapping::{Route, Router};
use crate::metrics::{Metrics, Outcome};
use crate::pool_lookup::Lookup;
use crate::response::{self, Body};
use crate::store::Store;
use aptindex::checksum::Checksums;
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
    /// The pool-file cache.
    pub store: Arc<Store>,
    /// Downloads in flight.
    pub downloads: Arc<Downloads>,
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

/// The cache tag of a file expected to have checksums `cs`.
fn tag(cs: &Checksums) -> String {
    cs.strongest()
        .and_then(|k| cs.hex(k))
        .unwrap_or_else(|| format!("s{}", cs.size))
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
                let answer = self.file(m, &p, &req, peer.ip()).await;
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

    /// True when `client` may read the cacher's own pages (`status_allow`).
    pub fn status_allowed(&self, client: IpAddr) -> bool {
        let client = client.to_canonical();
        self.config
            .status_allow
            .as_ref()
            .is_none_or(|nets| nets.iter().any(|n| n.contains(&client)))
    }

    /// Serves repository path `path` of `mapping`.
    async fn file(&self, mapping: usize, path: &str, req: &Request<()>, client: IpAddr) -> Answer {
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
        // Pool files are never metadata: skip the suite lookup for them.
        let found = if path.starts_with("pool/") {
            None
        } else if let Some(patch) = self.gens.patch_file(mapping, path, client).await {
            Some(patch)
        } else {
            self.gens.index_file(mapping, path, client).await
        };
        if let Some(found) = found {
            return match found {
                Ok(Meta::File(p)) => Answer::new(
                    response::serve_path(&p, path, headers, is_head).await,
                    Outcome::Hit,
                ),
                Ok(Meta::Fetching(src, joined)) => {
                    let resp = response::serve(src.clone(), path, headers, is_head).await;
                    fetched(resp, src.upstream_note(), joined, false)
                }
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
        let key = match &lookup {
            Lookup::Listed(cs) => Some(format!("{prefix}/{path}#{}", tag(cs))),
            // Listed by no index: cached as unverified. Undecided (an index
            // that should list it failed to load): passed through, not cached.
            Lookup::Unlisted if path.starts_with("pool/") => Some(format!("{prefix}/{path}#u")),
            Lookup::Unlisted | Lookup::Undecided => None,
        };
        let undecided = lookup == Lookup::Undecided;
        let expected = match lookup {
            Lookup::Listed(cs) => Some(cs),
            Lookup::Unlisted | Lookup::Undecided => None,
        };
        if let Some(key) = &key {
            if let Some(p) = self.store.get(key) {
                if p.is_file() {
                    return Answer::new(
                        response::serve_path(&p, path, headers, is_head).await,
                        Outcome::Hit,
                    );
                }
                self.store.remove(key);
            }
        }
        let Some(url) = self.router.upstream_url(mapping, path) else {
            return Answer::new(
                response::text(StatusCode::BAD_REQUEST, "bad path"),
                Outcome::Refused,
            );
        };
        // A download of this file in flight: join it (no temporary file).
        let job_key = key
            .as_ref()
            .map_or_else(|| format!("pass:{prefix}/{path}"), |k| format!("store:{k}"));
        if let Some(src) = self.downloads.joinable(&job_key) {
            let resp = response::serve(src.clone(), path, headers, is_head).await;
            return fetched(resp, src.upstream_note(), true, key.is_none());
        }
        let temp = match self.store.temp_file() {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create a temporary file in the cache");
                return Answer::new(
                    response::text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("temporary file: {e}"),
                    ),
                    Outcome::Error,
                );
            }
        };
        let store = self.store.clone();
        let pass = key.is_none();
        let commit: Option<crate::download::Commit> =
            key.clone().map(|k| -> crate::download::Commit {
                Box::new(move |temp, cs: Checksums| {
                    Box::pin(async move {
                        tokio::task::spawn_blocking(move || {
                            let size = std::fs::metadata(&temp).map(|m| m.len()).unwrap_or(cs.size);
                            store
                                .insert(&k, temp, size)
                                .map(|_| ())
                                .map_err(|e| format!("caching {k}: {e}"))
                        })
                        .await
                        .map_err(|e| e.to_string())?
                    })
                })
            });
        let job = Job {
            key: job_key,
            urls: vec![url],
            expected,
            what: format!("{prefix}/{path}"),
            temp,
            commit,
            commit_first: false,
        };
        let unverified = job.expected.is_none();
        let (src, joined) = self.downloads.start(job);
        if unverified && !joined {
            // No index of any served suite names it: nothing to verify against.
            self.metrics.unverified_download();
            if undecided {
                tracing::warn!(mapping = %prefix, path = %path, "an index that should list this file failed to load: passing it through unverified, not cached");
            } else {
                tracing::info!(mapping = %prefix, path = %path, cached = !pass, "downloading a file no index names, unverified");
            }
        }
        let resp = response::serve(src.clone(), path, headers, is_head).await;
        fetched(resp, src.upstream_note(), joined, pass)
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
            response::text(u.client_status(), u.to_string()),
            if negative {
                Outcome::Negative
            } else {
                Outcome::Miss
            },
            crate::download::status_of(u),
        ),
        MetaError::Invalid(m) => (
            response::text(StatusCode::BAD_GATEWAY, m.clone()),
            Outcome::Error,
            None,
        ),
        MetaError::Io(m) => (
            response::text(StatusCode::INTERNAL_SERVER_ERROR, m.clone()),
            Outcome::Error,
            None,
        ),
        MetaError::NotListed(m) => (
            response::text(StatusCode::NOT_FOUND, m.clone()),
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
