//! The client timeouts on an in-memory socket: idle, partial header, busy,
//! a stalled reader on HTTP/1 and HTTP/2, reaping.

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

#[tokio::test]
async fn an_http2_response_the_client_never_takes_ends_the_connection() {
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let (a, mut b) = tokio::io::duplex(128);
    let activity = Activity::default();
    let mut io = ClientIo::new(a, activity.clone(), LIMITS);
    b.write_all(preface).await.unwrap();
    io.read_exact(&mut [0u8; 24]).await.unwrap();
    // Waiting for upstream (body polled, Pending): no limit.
    let busy = activity.request();
    let wait = LIMITS.client_idle + Duration::from_millis(300);
    let waited = tokio::time::timeout(wait, io.read(&mut [0u8; 8])).await;
    assert!(waited.is_err(), "waiting for upstream has no client limit");
    // A frame ready that the client never takes (window 0): the
    // waiting read fails client_idle later, though nothing woke it.
    let reader = tokio::spawn(async move {
        let t = Instant::now();
        let r = io.read(&mut [0u8; 8]).await;
        (r, t)
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = Instant::now();
    busy.response_ready();
    let (r, _) = reader.await.unwrap();
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
    about(t.elapsed(), LIMITS.client_idle);

    // The same on HTTP/1 is the socket's write timer's: no read limit.
    let (a, mut b) = tokio::io::duplex(128);
    let activity = Activity::default();
    let mut io = ClientIo::new(a, activity.clone(), LIMITS);
    b.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let got = io.read(&mut [0u8; 64]).await.unwrap();
    assert!(got > 0);
    let busy = activity.request();
    busy.response_ready();
    let waited = tokio::time::timeout(wait, io.read(&mut [0u8; 8])).await;
    assert!(waited.is_err(), "HTTP/1 reads have no limit while busy");
}

#[tokio::test]
async fn a_reaped_idle_connection_closes_at_once_a_busy_one_does_not() {
    let (a, _b) = tokio::io::duplex(64);
    let activity = Activity::default();
    let mut io = ClientIo::new(a, activity.clone(), LIMITS);
    let busy = activity.request();
    assert!(!activity.reap_if_idle() && activity.idle_for().is_none());
    drop(busy);
    let reader = tokio::spawn(async move { io.read(&mut [0u8; 8]).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(activity.idle_for().is_some());
    let t = Instant::now();
    assert!(activity.reap_if_idle());
    let e = reader.await.unwrap().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted);
    assert!(t.elapsed() < LIMITS.header_read, "{:?}", t.elapsed());
}
