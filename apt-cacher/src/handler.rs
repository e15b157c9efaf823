//! What to do with one request: route it, then serve a Release file from
//! the suite's current generation, an index or by-hash file from a
//! generation (fetching and verifying it first if needed), or any other
//! file from the cache when it still matches what the current indices say,
//! otherwise through a coalesced, verified download. Writes one access-log
//! line per request.

use crate::config::Config;
use crate::download::{Downloads, Job};
use crate::generation::{Generations, Meta, MetaError, RELEASE_FILES};
use crate::mapping::{Route, Router};
use crate::response::{self, Body};
use crate::store::Store;
use aptindex::checksum::Checksums;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

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
}

/// The cache tag of a file expected to have checksums `cs`.
fn tag(cs: &Checksums) -> String {
    cs.strongest()
        .and_then(|k| cs.hex(k))
        .unwrap_or_else(|| format!("s{}", cs.size))
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
        let (resp, result, what) = match self.router.route(&method, req.uri()) {
            Route::Refuse(status, msg) => (response::text(status, msg), "refused", String::new()),
            Route::Connect(target) => (self.connect(req, target.clone()), "tunnel", target),
            Route::File { mapping, path } => {
                let what = format!(
                    "{}/{path}",
                    self.router
                        .mappings()
                        .get(mapping)
                        .map_or("?", |m| m.prefix.as_str())
                );
                let (resp, result) = self.file(mapping, &path, &req, peer.ip()).await;
                (resp, result, what)
            }
        };
        tracing::info!(
            target: "access",
            client = %peer,
            method = %method,
            uri = %uri,
            path = %what,
            status = resp.status().as_u16(),
            result,
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
        resp
    }

    async fn file(
        &self,
        mapping: usize,
        path: &str,
        req: &Request<Incoming>,
        client: IpAddr,
    ) -> (Response<Body>, &'static str) {
        let is_head = req.method() == Method::HEAD;
        let headers = req.headers();
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        if RELEASE_FILES.contains(&name) {
            return match self.gens.release_file(mapping, dir, name, client).await {
                Ok(p) => (
                    response::serve_path(&p, path, headers, is_head).await,
                    "meta",
                ),
                Err(e) => (meta_error(&e), "error"),
            };
        }
        // Pool files are never metadata: skip the suite lookup for them.
        let found = if path.starts_with("pool/") {
            None
        } else {
            self.gens.index_file(mapping, path, client).await
        };
        if let Some(found) = found {
            return match found {
                Ok(Meta::File(p)) => (
                    response::serve_path(&p, path, headers, is_head).await,
                    "hit",
                ),
                Ok(Meta::Fetching(src, joined)) => (
                    response::serve(src, path, headers, is_head).await,
                    if joined { "coalesced" } else { "miss" },
                ),
                Err(e) => (meta_error(&e), "error"),
            };
        }
        let Some(prefix) = self
            .router
            .mappings()
            .get(mapping)
            .map(|m| m.prefix.clone())
        else {
            return (
                response::text(StatusCode::NOT_FOUND, "no such mapping"),
                "refused",
            );
        };
        let expected = self.gens.expected(mapping, path);
        let key = match &expected {
            Some(cs) => Some(format!("{prefix}/{path}#{}", tag(cs))),
            None if path.starts_with("pool/") => Some(format!("{prefix}/{path}#u")),
            None => None,
        };
        if let Some(key) = &key {
            if let Some(p) = self.store.get(key) {
                if p.is_file() {
                    return (
                        response::serve_path(&p, path, headers, is_head).await,
                        "hit",
                    );
                }
                self.store.remove(key);
            }
        }
        let Some(url) = self.router.upstream_url(mapping, path) else {
            return (
                response::text(StatusCode::BAD_REQUEST, "bad path"),
                "refused",
            );
        };
        let temp = match self.store.temp_file() {
            Ok(t) => t,
            Err(e) => {
                return (
                    response::text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("temporary file: {e}"),
                    ),
                    "error",
                )
            }
        };
        let store = self.store.clone();
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
            key: key.map_or_else(|| format!("pass:{prefix}/{path}"), |k| format!("store:{k}")),
            urls: vec![url],
            expected,
            what: format!("{prefix}/{path}"),
            temp,
            commit,
            commit_first: false,
        };
        let (src, joined) = self.downloads.start(job);
        let result = if joined { "coalesced" } else { "miss" };
        (response::serve(src, path, headers, is_head).await, result)
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

fn meta_error(e: &MetaError) -> Response<Body> {
    match e {
        MetaError::Upstream(u) => response::text(u.client_status(), u.to_string()),
        MetaError::Invalid(m) => response::text(StatusCode::BAD_GATEWAY, m.clone()),
        MetaError::Io(m) => response::text(StatusCode::INTERNAL_SERVER_ERROR, m.clone()),
    }
}
