//! Client connection timeouts, enforced on the connection's socket.
//!
//! hyper's own `header_read_timeout` starts as soon as a connection waits
//! for a request, so it would also close idle keep-alive connections after
//! the (short) header timeout. Instead, [`ClientIo`] wraps the socket and
//! knows, through [`Activity`], whether a request is being served:
//!
//! - idle (no request being served, no byte of a new one yet): the
//!   connection is closed after `client_idle`;
//! - a request header has begun but is not complete (slowloris): closed
//!   `header_read` after its first byte;
//! - a response is being sent and the client stops reading it: closed after
//!   `client_idle` without progress;
//! - a `CONNECT` tunnel: closed after `client_idle` without a byte in
//!   either direction.
//!
//! While a response waits for upstream, no client timeout runs: upstream's
//! own timeouts bound that wait. A timeout is an I/O error (`TimedOut`)
//! that ends the connection.
//!
//! HTTP/2 (recognised by its connection preface, `PRI * HTTP/2.0`) has no
//! request header to time: frames on an idle connection (PING,
//! WINDOW_UPDATE) do not start one, so such a connection is closed after
//! `client_idle`, as an idle HTTP/1 one is; hyper's HTTP/2 code bounds the
//! frames themselves.

use crate::time::later;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What one connection is doing, shared by its socket and its requests.
#[derive(Debug, Clone)]
pub struct Activity(Arc<Mutex<State>>);

#[derive(Debug)]
struct State {
    /// Requests being served (their responses not yet fully sent).
    busy: usize,
    /// When the connection last became idle.
    idle_since: Instant,
    /// When the first byte of the next request arrived (while idle).
    head_started: Option<Instant>,
    /// The connection became a `CONNECT` tunnel.
    tunnel: bool,
    /// When a byte last went either way.
    last_activity: Instant,
    /// The protocol, as far as the first bytes tell.
    proto: Proto,
}

/// What the first bytes of a connection say about its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    /// Not known yet: this many bytes of [`H2_START`] have been seen.
    Unknown(usize),
    /// HTTP/1.x: bytes on an idle connection start a request header.
    Http1,
    /// HTTP/2: no header timeout (see the module doc).
    Http2,
}

/// How HTTP/2's connection preface starts; no HTTP/1 request does.
const H2_START: &[u8] = b"PRI ";

impl Proto {
    /// The protocol once `data` (the next bytes read) has been seen.
    fn after(self, data: &[u8]) -> Proto {
        let mut p = self;
        for &b in data {
            p = match p {
                Proto::Unknown(n) if H2_START.get(n) == Some(&b) => {
                    if n + 1 == H2_START.len() {
                        Proto::Http2
                    } else {
                        Proto::Unknown(n + 1)
                    }
                }
                Proto::Unknown(_) => Proto::Http1,
                known => return known,
            };
        }
        p
    }
}

impl Default for Activity {
    fn default() -> Self {
        let now = Instant::now();
        Activity(Arc::new(Mutex::new(State {
            busy: 0,
            idle_since: now,
            head_started: None,
            tunnel: false,
            last_activity: now,
            proto: Proto::Unknown(0),
        })))
    }
}

impl Activity {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks a request as being served until the guard is dropped (keep it
    /// with the response body, so that it lasts until the body is sent).
    pub fn request(&self) -> Busy {
        let mut s = self.lock();
        s.busy += 1;
        s.head_started = None;
        Busy(self.clone())
    }

    /// Marks the connection as a `CONNECT` tunnel from now on.
    pub fn tunnel(&self) {
        let mut s = self.lock();
        s.tunnel = true;
        s.last_activity = Instant::now();
    }
}

/// A request being served (see [`Activity::request`]).
#[derive(Debug)]
pub struct Busy(Activity);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.busy = s.busy.saturating_sub(1);
        if s.busy == 0 {
            s.idle_since = Instant::now();
            s.head_started = None;
        }
    }
}

/// The two client timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From a request's first byte to its complete header.
    pub header_read: Duration,
    /// Idle keep-alive, a stalled reader, a silent tunnel.
    pub client_idle: Duration,
}

/// A client socket that fails with `TimedOut` when the connection breaks
/// one of its [`Limits`].
#[derive(Debug)]
pub struct ClientIo<S> {
    inner: S,
    activity: Activity,
    limits: Limits,
    read_timer: Pin<Box<Sleep>>,
    write_timer: Pin<Box<Sleep>>,
    write_blocked_since: Option<Instant>,
}

impl<S> ClientIo<S> {
    /// Wraps `inner`, whose requests report to `activity`.
    pub fn new(inner: S, activity: Activity, limits: Limits) -> ClientIo<S> {
        let far = later(Instant::now(), Duration::from_secs(86400 * 365));
        ClientIo {
            inner,
            activity,
            limits,
            read_timer: Box::pin(tokio::time::sleep_until(far)),
            write_timer: Box::pin(tokio::time::sleep_until(far)),
            write_blocked_since: None,
        }
    }

    /// When a read that is waiting must give up, and why; `None`: no limit.
    fn read_deadline(&self) -> Option<(Instant, &'static str)> {
        let s = self.activity.lock();
        if s.tunnel {
            Some((
                later(s.last_activity, self.limits.client_idle),
                "idle tunnel",
            ))
        } else if s.busy > 0 {
            None
        } else if let Some(t) = s.head_started {
            Some((
                later(t, self.limits.header_read),
                "request header not complete",
            ))
        } else {
            Some((
                later(s.idle_since, self.limits.client_idle),
                "idle connection",
            ))
        }
    }

    fn record_write(&mut self, n: usize) {
        if n > 0 {
            self.write_blocked_since = None;
            self.activity.lock().last_activity = Instant::now();
        }
    }

    /// After a write returned `Pending`: fails once the client has not
    /// taken a byte for `client_idle`.
    fn write_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let since = *self.write_blocked_since.get_or_insert_with(Instant::now);
        if expired(
            &mut self.write_timer,
            later(since, self.limits.client_idle),
            cx,
        ) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client stopped reading",
            )));
        }
        Poll::Pending
    }
}

/// Points `timer` at `deadline` and polls it: true once it has passed.
fn expired(timer: &mut Pin<Box<Sleep>>, deadline: Instant, cx: &mut Context<'_>) -> bool {
    if timer.deadline() != deadline {
        timer.as_mut().reset(deadline);
    }
    timer.as_mut().poll(cx).is_ready()
}

use std::future::Future;

impl<S: AsyncRead + Unpin> AsyncRead for ClientIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Some(data) = buf.filled().get(before..).filter(|d| !d.is_empty()) {
                    let now = Instant::now();
                    let mut s = this.activity.lock();
                    s.last_activity = now;
                    if !matches!(s.proto, Proto::Http1 | Proto::Http2) {
                        s.proto = s.proto.after(data);
                    }
                    if s.proto == Proto::Http2 {
                        s.head_started = None;
                    } else if s.busy == 0 && !s.tunnel && s.head_started.is_none() {
                        s.head_started = Some(now);
                    }
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        if let Some((deadline, why)) = this.read_deadline() {
            if expired(&mut this.read_timer, deadline, cx) {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why)));
            }
        }
        Poll::Pending
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ClientIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                self.record_write(n);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.write_pending(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                self.record_write(n);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.write_pending(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // Far apart, so that "closed by this limit, not the other" holds even
    // with the generous upper bound of `about`.
    const LIMITS: Limits = Limits {
        header_read: Duration::from_millis(200),
        client_idle: Duration::from_millis(1200),
    };

    /// `elapsed` is `limit`, give or take scheduling. Every clock below
    /// starts before the action that starts the connection's timer, so the
    /// lower bound is exact; the upper bound leaves a loaded machine room
    /// (the point is "closed by the timer", not its precision).
    fn about(elapsed: Duration, limit: Duration) {
        assert!(
            elapsed >= limit && elapsed < limit + Duration::from_millis(800),
            "{elapsed:?} vs {limit:?}"
        );
    }

    #[tokio::test]
    async fn idle_partial_header_busy_and_stalled_reader() {
        // Idle: closed after client_idle, not header_read.
        let t = Instant::now();
        let (a, _b) = tokio::io::duplex(64);
        let mut io = ClientIo::new(a, Activity::default(), LIMITS);
        let e = io.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        about(t.elapsed(), LIMITS.client_idle);

        // A partial header: closed header_read after its first byte.
        let (a, mut b) = tokio::io::duplex(64);
        let mut io = ClientIo::new(a, Activity::default(), LIMITS);
        b.write_all(b"GET /").await.unwrap();
        let t = Instant::now();
        assert_eq!(io.read(&mut [0u8; 8]).await.unwrap(), 5);
        let e = io.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        about(t.elapsed(), LIMITS.header_read);

        // Busy (waiting for upstream): no read limit; idle again afterwards.
        let (a, _b) = tokio::io::duplex(64);
        let activity = Activity::default();
        let mut io = ClientIo::new(a, activity.clone(), LIMITS);
        let busy = activity.request();
        let wait = LIMITS.client_idle + Duration::from_millis(300);
        let waited = tokio::time::timeout(wait, io.read(&mut [0u8; 8])).await;
        assert!(waited.is_err(), "a busy connection has no read limit");
        let t = Instant::now();
        drop(busy);
        let e = io.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        about(t.elapsed(), LIMITS.client_idle);

        // A client that stops reading: the write fails after client_idle.
        let (a, _b) = tokio::io::duplex(16);
        let activity = Activity::default();
        let mut io = ClientIo::new(a, activity.clone(), LIMITS);
        let _busy = activity.request();
        let t = Instant::now();
        let e = io.write_all(&[0u8; 64]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        about(t.elapsed(), LIMITS.client_idle);
    }

    #[tokio::test]
    async fn http2_frames_on_an_idle_connection_start_no_header() {
        // The preface and a PING-sized frame: the connection stays idle and
        // is closed after client_idle, not header_read.
        let t = Instant::now();
        let (a, mut b) = tokio::io::duplex(128);
        let mut io = ClientIo::new(a, Activity::default(), LIMITS);
        b.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 24];
        io.read_exact(&mut buf).await.unwrap();
        b.write_all(&[0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
            .await
            .unwrap();
        io.read_exact(&mut [0u8; 17]).await.unwrap();
        let e = io.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        about(t.elapsed(), LIMITS.client_idle);

        // First bytes split across reads are still recognised; "PO" is HTTP/1.
        assert_eq!(Proto::Unknown(0).after(b"PR").after(b"I "), Proto::Http2);
        assert_eq!(Proto::Unknown(0).after(b"PO").after(b"ST"), Proto::Http1);
        assert_eq!(Proto::Unknown(0).after(b"GET /"), Proto::Http1);
    }
}
