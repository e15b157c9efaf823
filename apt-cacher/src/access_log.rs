//! The access-log and metrics layer around every route: each request gets
//! one access-log line (tracing target `access`) when its response ends,
//! and is counted in [`Metrics`] by result and body bytes. Whoever answers
//! a request says how in an [`AccessNote`] in the response's extensions
//! (result, mapping, repository path, what upstream said); the layer takes
//! it out and wraps the body, so the line is written when the body finishes
//! or is dropped early, with the body bytes handed to hyper (for an aborted
//! transfer, some may still have been in its buffers or the socket's, not
//! received by the client), the time the whole transfer took and
//! `complete=false` for an aborted one.

use crate::cache::UpstreamNote;
use crate::metrics::{Metrics, Outcome};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Body as _, Frame, SizeHint};
use hyper::header;
use hyper::{Method, Response as HttpResponse};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// How a request was answered, for its access-log line and the metrics;
/// put in the response's extensions by whoever answered it.
#[derive(Debug, Clone)]
pub struct AccessNote {
    /// The result.
    pub outcome: Outcome,
    /// The mapping's prefix (empty when none).
    pub mapping: String,
    /// The repository path or `CONNECT` target; the request's path when `None`.
    pub path: Option<String>,
    /// What upstream said, when it was asked.
    pub upstream: Option<UpstreamNote>,
}

impl AccessNote {
    /// A note with only a result.
    pub fn of(outcome: Outcome) -> AccessNote {
        AccessNote {
            outcome,
            mapping: String::new(),
            path: None,
            upstream: None,
        }
    }
}

/// `resp` with `note` attached.
pub fn noted<B>(mut resp: HttpResponse<B>, note: AccessNote) -> HttpResponse<B> {
    resp.extensions_mut().insert(note);
    resp
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
/// The frames themselves pass through untouched (a memory-mapped `Bytes`
/// still reaches `sendfile.rs` as the map's slice).
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
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
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

/// The client's address, as `server.rs` recorded it (`ConnectInfo`).
pub fn client(req: &Request) -> SocketAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0)
}

/// The layer (`axum::middleware::from_fn_with_state`): counts the request
/// by its result and logs it when its body ends.
pub async fn layer(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let client = client(&req);
    let resp = next.run(req).await;
    let (mut parts, body) = resp.into_parts();
    let note = parts.extensions.remove::<AccessNote>().unwrap_or_else(|| {
        tracing::debug!(uri = %uri, "a response without an access note");
        AccessNote::of(Outcome::Error)
    });
    metrics.request(note.outcome);
    let length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let logged = Logged {
        inner: body,
        access: Access {
            client,
            method,
            uri: uri.to_string(),
            mapping: note.mapping,
            path: note.path.unwrap_or_else(|| uri.path().to_string()),
            status: parts.status.as_u16(),
            outcome: note.outcome,
            upstream: note.upstream,
            started,
        },
        metrics,
        length,
        bytes: 0,
        ended: false,
        failed: false,
    };
    Response::from_parts(parts, Body::new(logged))
}
