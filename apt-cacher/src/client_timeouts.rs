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
//! frames themselves. Nor does a stalled HTTP/2 reader block the socket:
//! a client that never opens its flow-control window (initial window 0, no
//! WINDOW_UPDATE) leaves the response body unpolled while the socket stays
//! writable. So each response reports whether it has a frame waiting for
//! the client ([`Busy::response_ready`], [`Busy::polled`]): an HTTP/2
//! connection one of whose responses has waited `client_idle` for the
//! client to take its next frame is closed (with every stream on it), the
//! bound an HTTP/1 client that stops reading gets.
//!
//! Under `max_clients` pressure, `client_table.rs` may ask an idle
//! connection to close ([`Activity::reap_if_idle`]): its pending read fails
//! at once, unless a request has begun meanwhile.

use crate::time::later;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
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
    /// The task waiting in the socket's `poll_read`, woken when a deadline
    /// appears or the connection is reaped.
    read_waker: Option<Waker>,
    /// Asked to close while idle (see [`Activity::reap_if_idle`]).
    reap: bool,
    /// The number the next request's [`Busy`] gets.
    next_request: u64,
    /// Responses with a frame the client has not taken yet: request
    /// number and since when.
    owed: Vec<(u64, Instant)>,
}

impl State {
    /// Idle: no request being served or begun, not a tunnel.
    fn idle(&self) -> bool {
        self.busy == 0 && self.head_started.is_none() && !self.tunnel
    }

    fn wake_reader(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
    }
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
            read_waker: None,
            reap: false,
            next_request: 0,
            owed: Vec::new(),
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
        s.reap = false;
        let id = s.next_request;
        s.next_request = s.next_request.wrapping_add(1);
        Busy {
            activity: self.clone(),
            id,
        }
    }

    /// How long the connection has been idle; `None` when it is not idle
    /// (or already asked to close).
    pub fn idle_for(&self) -> Option<Duration> {
        let s = self.lock();
        (s.idle() && !s.reap).then(|| s.idle_since.elapsed())
    }

    /// Asks an idle connection to close now (its pending read fails); false
    /// when it is not idle.
    pub fn reap_if_idle(&self) -> bool {
        let mut s = self.lock();
        if !s.idle() {
            return false;
        }
        s.reap = true;
        s.wake_reader();
        true
    }

    /// True once the connection was asked to close (see
    /// [`Activity::reap_if_idle`]).
    pub fn reaped(&self) -> bool {
        self.lock().reap
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
pub struct Busy {
    activity: Activity,
    id: u64,
}

impl Busy {
    /// The response exists: its first frame waits for the client (an
    /// HTTP/2 stream whose window stays closed never takes it).
    pub fn response_ready(&self) {
        self.polled(true);
    }

    /// The response body was polled: `frame` when it gave a frame (the
    /// client must take it before the next poll), false when it is waiting
    /// for its data (upstream's timeouts bound that).
    pub fn polled(&self, frame: bool) {
        let mut s = self.activity.lock();
        let at = s.owed.iter().position(|(id, _)| *id == self.id);
        match (frame, at) {
            (true, Some(i)) => {
                if let Some(e) = s.owed.get_mut(i) {
                    e.1 = Instant::now();
                }
            }
            (true, None) => {
                s.owed.push((self.id, Instant::now()));
                if s.proto == Proto::Http2 {
                    // The socket's read may be waiting without a deadline.
                    s.wake_reader();
                }
            }
            (false, Some(i)) => {
                s.owed.swap_remove(i);
            }
            (false, None) => {}
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut s = self.activity.lock();
        if let Some(i) = s.owed.iter().position(|(id, _)| *id == self.id) {
            s.owed.swap_remove(i);
        }
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

/// Why a pending read ends the connection.
enum ReadLimit {
    /// No limit runs.
    None,
    /// Fails at this deadline.
    At(Instant, &'static str),
    /// Fails now: the connection was reaped.
    Reaped,
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

    /// When a read that is waiting (for `waker`'s task) must give up, and
    /// why.
    fn read_limit(&self, waker: &Waker) -> ReadLimit {
        let mut s = self.activity.lock();
        if !s.read_waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            s.read_waker = Some(waker.clone());
        }
        let idle = self.limits.client_idle;
        if s.tunnel {
            ReadLimit::At(later(s.last_activity, idle), "idle tunnel")
        } else if s.busy > 0 {
            let stalled = s.owed.iter().map(|(_, since)| *since).min();
            match stalled {
                Some(since) if s.proto == Proto::Http2 => ReadLimit::At(
                    later(since, idle),
                    "client stopped reading (an HTTP/2 stream's window stayed closed)",
                ),
                _ => ReadLimit::None,
            }
        } else if let Some(t) = s.head_started {
            ReadLimit::At(
                later(t, self.limits.header_read),
                "request header not complete",
            )
        } else if s.reap {
            ReadLimit::Reaped
        } else {
            ReadLimit::At(later(s.idle_since, idle), "idle connection")
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
        match this.read_limit(cx.waker()) {
            ReadLimit::None => {}
            ReadLimit::At(deadline, why) => {
                if expired(&mut this.read_timer, deadline, cx) {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why)));
                }
            }
            ReadLimit::Reaped => {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "idle connection closed to make room (max_clients)",
                )));
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
mod tests;
