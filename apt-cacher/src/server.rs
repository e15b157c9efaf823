//! The HTTP server: accepts connections on every listening socket, serves
//! HTTP/1.1 (keep-alive) and HTTP/2 with the axum router of `routes.rs`
//! (hyper's connection builder over our own socket wrapper: `ClientIo` for
//! the timeouts, `ClientSocket` for `sendfile`), supports `CONNECT`
//! upgrades, bounds every
//! client connection in time ([`crate::client_timeouts`]: request header,
//! idle keep-alive, a client that stops reading), bounds their number
//! (`max_clients`: a client beyond it waits, first accepted and held, then
//! in the kernel's backlog, until another connection closes, instead of
//! being refused; one budget for all the sockets; while one waits, the
//! keep-alive connection idle longest is closed once idle for `idle_reap`),
//! bounds what one address holds (`max_clients_per_host`, see
//! `client_table.rs`: a connection beyond it is answered 503 and closed at
//! once), bounds HTTP/2 (`max_concurrent_streams`; a stream whose window
//! stays closed is timed like an HTTP/1 client that stops reading, see
//! `client_timeouts.rs`), and shuts down gracefully
//! when the cancellation token fires: it stops accepting, lets in-flight
//! responses and downloads finish within `shutdown_grace`, and returns.
//! A client's address is made canonical once, at accept: an IPv4 client of
//! a dual-stack socket (`::ffff:a.b.c.d`) is `a.b.c.d` in logs, the status
//! page, `status_allow` and everything keyed by client.

use crate::client_table::ClientTable;
use crate::client_timeouts::{Activity, Busy, ClientIo, Limits};
use crate::handler::App;
use crate::sendfile::ClientSocket;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use hyper::service::service_fn;
use hyper::Method;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long after its last accept the server waits before telling
/// connections to finish (see [`serve`]).
const ACCEPT_SETTLE: Duration = Duration::from_millis(100);

/// How often a client waiting for a `max_clients` place looks again for an
/// idle connection to close.
const REAP_TICK: Duration = Duration::from_millis(200);

/// Streams one HTTP/2 connection may have open at once.
const MAX_H2_STREAMS: u32 = 128;

/// What a connection beyond `max_clients_per_host` is told before it is
/// closed.
const OVER_LIMIT: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\
Content-Type: text/plain\r\nContent-Length: 40\r\n\r\ntoo many connections from this address\r\n";

/// A response body that keeps its request counted as busy until it is
/// sent or dropped, and tells the connection whether a frame waits for the
/// client (see [`Busy::polled`]). Unlike `map_frame`, it passes the body's
/// exact size on, so hyper still writes `Content-Length` (not chunked) for
/// small pages.
struct Guarded {
    inner: Body,
    busy: Busy,
}

impl Guarded {
    fn new(inner: Body, busy: Busy) -> Guarded {
        busy.response_ready();
        Guarded { inner, busy }
    }
}

impl hyper::body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        self.busy.polled(matches!(polled, Poll::Ready(Some(Ok(_)))));
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What a graceful stop left behind (see [`serve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// True when every connection finished within the grace time.
    pub connections_drained: bool,
    /// Downloads still running when the grace time ran out.
    pub downloads_left: usize,
}

/// The next connection on any of `listeners`. The socket polled first
/// rotates with `turn`, so a busy one cannot starve the others.
/// Cancel-safe: no connection is lost when the future is dropped.
async fn accept_any(
    listeners: &[TcpListener],
    turn: usize,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    std::future::poll_fn(|cx| {
        let n = listeners.len();
        for i in 0..n {
            if let Some(l) = listeners.get((turn + i) % n) {
                if let Poll::Ready(r) = l.poll_accept(cx) {
                    return Poll::Ready(r);
                }
            }
        }
        Poll::Pending
    })
    .await
}

/// `peer` with an IPv4-mapped IPv6 address (an IPv4 client of a dual-stack
/// socket) written as the IPv4 address it is.
pub fn canonical_peer(peer: SocketAddr) -> SocketAddr {
    SocketAddr::new(peer.ip().to_canonical(), peer.port())
}

/// Serves `listeners` until `shutdown` is cancelled; then stops accepting
/// (closing the listening sockets), lets open connections finish their
/// current response (idle ones close at once), and waits for downloads in
/// flight, all within `shutdown_grace`. All sockets share `max_clients`.
pub async fn serve(
    listeners: Vec<TcpListener>,
    app: Arc<App>,
    shutdown: CancellationToken,
) -> Stopped {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Header and idle timeouts are ClientIo's: hyper's would also close
        // idle keep-alive connections after the header timeout.
        .header_read_timeout(None)
        // Bounds what one connection buffers (request headers, queued body
        // chunks): memory stays small with many clients.
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_H2_STREAMS);
    let limits = Limits {
        header_read: app.config.timeouts.header_read,
        client_idle: app.config.timeouts.client_idle,
    };
    let clients = Arc::new(Semaphore::new(app.config.max_clients.max(1)));
    let table = Arc::new(ClientTable::default());
    let per_host = app.config.max_clients_per_host.max(1);
    let idle_reap = app.config.timeouts.idle_reap;
    let router = crate::routes::router(app.clone());
    let mut last_accept = Instant::now();
    let mut turn: usize = 0;
    'accept: loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break 'accept,
            accepted = accept_any(&listeners, turn) => match accepted {
                Ok((stream, peer)) => (stream, canonical_peer(peer)),
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        last_accept = Instant::now();
        turn = turn.wrapping_add(1);
        let activity = Activity::default();
        let slot = match table.admit(peer.ip(), per_host, activity.clone()) {
            Ok(slot) => slot,
            Err(over) => {
                if over.first {
                    tracing::warn!(client = %over.client, limit = over.limit, "{over}; refusing its further connections");
                } else {
                    tracing::debug!(client = %peer, "{over}");
                }
                // Best effort, never waiting: the client may not even read.
                let _ = stream.try_write(OVER_LIMIT);
                continue;
            }
        };
        // A place among max_clients: while none is free, close the
        // connection idle longest (this one and the backlog wait).
        let permit = loop {
            if let Ok(p) = clients.clone().try_acquire_owned() {
                break p;
            }
            table.reap_idle(idle_reap);
            tokio::select! {
                _ = shutdown.cancelled() => break 'accept,
                permit = clients.clone().acquire_owned() => match permit {
                    Ok(p) => break p,
                    Err(_) => break 'accept,
                },
                _ = tokio::time::sleep(REAP_TICK) => {}
            }
        };
        let _ = stream.set_nodelay(true);
        let io = ClientIo::new(ClientSocket::new(stream), activity.clone(), limits);
        let router = router.clone();
        let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            let (router, activity) = (router.clone(), activity.clone());
            async move {
                // Counts as busy until the response body is sent or dropped.
                let busy = activity.request();
                let connect = req.method() == Method::CONNECT;
                req.extensions_mut().insert(ConnectInfo(peer));
                let resp = match router.oneshot(req).await {
                    Ok(resp) => resp,
                    Err(never) => match never {},
                };
                if connect && resp.status().is_success() {
                    activity.tunnel();
                }
                let resp = resp.map(|inner| Guarded::new(inner, busy));
                Ok::<_, Infallible>(resp)
            }
        });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // The connection's places, given back when it closes.
            let (_permit, _slot) = (permit, slot);
            if let Err(e) = conn.await {
                tracing::debug!(client = %peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listeners);
    // A connection accepted a moment ago may not have read its request yet,
    // and hyper closes such a connection at once on shutdown: give it the
    // moment to read the request it has (so a restart loses no request).
    tokio::time::sleep_until(last_accept + ACCEPT_SETTLE).await;
    let grace = app.config.timeouts.shutdown_grace;
    let deadline = crate::time::later(Instant::now(), grace);
    tracing::info!(
        grace_secs = grace.as_secs(),
        downloads = app.downloads.in_flight(),
        "stopped accepting; finishing responses and downloads in flight"
    );
    let connections_drained = tokio::select! {
        _ = graceful.shutdown() => true,
        _ = tokio::time::sleep_until(deadline) => false,
    };
    // Downloads whose clients are gone still finish (and are kept).
    while app.downloads.in_flight() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped = Stopped {
        connections_drained,
        downloads_left: app.downloads.in_flight(),
    };
    if !stopped.connections_drained || stopped.downloads_left > 0 {
        tracing::warn!(
            downloads_left = stopped.downloads_left,
            connections_drained = stopped.connections_drained,
            "shutdown grace time over; dropping what is left"
        );
    }
    stopped
}
