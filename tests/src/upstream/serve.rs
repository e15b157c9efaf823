//! Serving the fake upstream's connections: the accept loop (plain or
//! TLS), one request's bookkeeping (counts, log, faults, hooks), and the
//! response itself: files with `Last-Modified`, `ETag`, ranges and
//! conditional requests, bodies streamed through the fault plan
//! (truncation, corruption, throttling, stalls).

use std::io::SeekFrom;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Channel, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::TcpListener;

use super::paths::{parse_range, percent_decode, resolve, wildcard_match, RangeResult};
use super::{Body, Fault, Hook, RequestRecord, State};

pub(super) async fn accept_loop(
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
        referer: header_str(&req, header::REFERER),
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
        if let Fault::Redirect { status, location } = f {
            let mut r = text(
                StatusCode::from_u16(*status).unwrap_or(StatusCode::FOUND),
                "testkit fault: redirect",
            );
            if let Ok(v) = HeaderValue::from_str(location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return r;
        }
    }
    if faults.contains(&Fault::Html) {
        let mut r = text(
            StatusCode::OK,
            "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>testkit captive portal</body></html>",
        );
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return r;
    }
    if faults.contains(&Fault::Endless) {
        let (mut tx, body) = Channel::<Bytes, std::io::Error>::new(4);
        tokio::spawn(async move {
            let chunk = Bytes::from(vec![0u8; 64 * 1024]);
            // Ends when the client goes away.
            while tx.send_data(chunk.clone()).await.is_ok() {}
        });
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(body.boxed())
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "response"));
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

    let etag = {
        use std::os::unix::fs::MetadataExt;
        let nanos = mtime
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("\"{:x}-{:x}-{:x}\"", nanos, len, meta.ino())
    };
    if faults.is_empty() && not_modified(req, &etag, mtime) {
        let mut r = text(StatusCode::NOT_MODIFIED, "");
        *r.body_mut() = Full::new(Bytes::new()).map_err(|n| match n {}).boxed();
        r.headers_mut().remove(header::CONTENT_TYPE);
        if let Ok(v) = HeaderValue::from_str(&last_modified) {
            r.headers_mut().insert(header::LAST_MODIFIED, v);
        }
        if let Ok(v) = HeaderValue::from_str(&etag) {
            r.headers_mut().insert(header::ETAG, v);
        }
        return r;
    }
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

/// True when a conditional request is answered 304, as nginx decides: a
/// present `If-None-Match` alone decides (`*` or a matching tag, weak
/// comparison); else `If-Modified-Since` not older than the file's mtime
/// (whole seconds).
fn not_modified(req: &Request<Incoming>, etag: &str, mtime: SystemTime) -> bool {
    if let Some(inm) = header_str(req, header::IF_NONE_MATCH) {
        return inm.split(',').map(str::trim).any(|t| {
            t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag.trim_start_matches("W/")
        });
    }
    let Some(ims) =
        header_str(req, header::IF_MODIFIED_SINCE).and_then(|v| httpdate::parse_http_date(&v).ok())
    else {
        return false;
    };
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    secs(mtime) <= secs(ims)
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
                Fault::Status(_)
                | Fault::Delay(_)
                | Fault::Reset
                | Fault::Chunked
                | Fault::Redirect { .. }
                | Fault::Endless
                | Fault::Html => {}
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
