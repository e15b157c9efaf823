//! Building HTTP responses for a file (complete or still downloading):
//! `Content-Length`, `Content-Type` by extension, `Last-Modified`,
//! `If-Modified-Since` → 304, single byte ranges → 206 (416 when
//! unsatisfiable), HEAD without a body, and short text responses for errors.

use crate::cache::{DownloadError, Head, Source};
use crate::mapped;
use bytes::Bytes;
use futures_util::TryStreamExt;
use headers::{HeaderMapExt, IfModifiedSince};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use std::path::Path;
use std::sync::Arc;

/// The response body type.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A short plain-text response.
pub fn text(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    let mut msg = message.into();
    msg.push('\n');
    let mut r = Response::new(
        Full::new(Bytes::from(msg))
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

/// The status for a failed download.
pub fn download_error(e: &DownloadError) -> Response<Body> {
    match e {
        DownloadError::Upstream(u) => text(crate::upstream::client_status(u), u.to_string()),
        DownloadError::Verify(m) => text(StatusCode::BAD_GATEWAY, m.to_string()),
        DownloadError::Refused(m) => text(StatusCode::BAD_GATEWAY, m.to_string()),
        DownloadError::Local(m) => text(StatusCode::INTERNAL_SERVER_ERROR, m.to_string()),
    }
}

/// A sensible `Content-Type` for a repository path.
pub fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    match ext {
        "deb" | "udeb" | "ddeb" => "application/vnd.debian.binary-package",
        "gz" => "application/gzip",
        "xz" => "application/x-xz",
        "bz2" => "application/x-bzip2",
        "lzma" => "application/x-lzma",
        "zst" => "application/zstd",
        "gpg" => "application/pgp-signature",
        "asc" | "dsc" | "changes" | "diff" => "text/plain; charset=utf-8",
        "" if matches!(
            name,
            "InRelease" | "Release" | "Packages" | "Sources" | "Index"
        ) =>
        {
            "text/plain; charset=utf-8"
        }
        _ if name.starts_with("Translation-") && !name.contains('.') => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// A parsed `Range` header against a length: `Ok(None)` = no (usable) range.
/// Not the `headers` crate's `Range`: its `satisfiable_ranges` drops a
/// suffix longer than the file (RFC 9110 serves the whole file: 206 here)
/// and passes `5-1` and ranges past the end on unchecked, so the 206/416
/// rules would live here anyway.
fn parse_range(value: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // multiple ranges: answer with the whole file
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else {
            return Ok(None);
        };
        if n == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len)
    } else {
        let Ok(s) = a.parse::<u64>() else {
            return Ok(None);
        };
        let e = if b.is_empty() {
            len
        } else {
            match b.parse::<u64>() {
                Ok(e) if e >= s => e.saturating_add(1).min(len),
                _ => return Ok(None),
            }
        };
        (s, e)
    };
    if start >= len {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// Opens a complete file and serves it as repository path `repo_path`:
/// large files in the page cache from a shared memory map
/// ([`crate::mapped`]), others read in chunks.
pub async fn serve_path(
    path: &Path,
    repo_path: &str,
    headers: &HeaderMap,
    is_head: bool,
) -> Response<Body> {
    let p = path.to_path_buf();
    serve_opened(
        move || std::fs::File::open(&p),
        Map::Large,
        repo_path,
        headers,
        is_head,
    )
    .await
}

/// Whether a large file may be served from a memory map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Map {
    /// Yes: a file of the cacher's own (never written in place).
    Large,
    /// No: a file of another program's tree (a local mirror), which the
    /// cacher cannot promise is never truncated in place; a map of it
    /// would turn that into SIGBUS. Read in chunks instead.
    Never,
}

/// Serves the already open complete file `file` as repository path
/// `repo_path`, like [`serve_path`]: for a file checked through this very
/// descriptor (a local mirror's, `crate::local`), so that what is sent is
/// what was checked, even if the name is replaced meanwhile.
pub async fn serve_file(
    file: std::fs::File,
    repo_path: &str,
    headers: &HeaderMap,
    is_head: bool,
) -> Response<Body> {
    serve_opened(move || Ok(file), Map::Never, repo_path, headers, is_head).await
}

async fn serve_opened(
    open: impl FnOnce() -> std::io::Result<std::fs::File> + Send + 'static,
    map: Map,
    repo_path: &str,
    headers: &HeaderMap,
    is_head: bool,
) -> Response<Body> {
    let opened = tokio::task::spawn_blocking(move || -> std::io::Result<Content> {
        let f = open()?;
        let meta = f.metadata()?;
        let lm = meta.modified().ok().map(crate::time::http_date);
        if map == Map::Large && meta.len() >= mapped::MIN_MAPPED {
            // SAFETY: a published cache or metadata file: never written or
            // truncated in place (replaced by rename, removed by unlink).
            // A local mirror's file is never mapped (`Map::Never`).
            // A map that cannot be made (out of descriptors) falls back to
            // reading.
            #[allow(unsafe_code)]
            let mapped = unsafe { mapped::map(&f) };
            if let Ok(Some(bytes)) = mapped {
                return Ok(Content::Mapped(bytes, lm));
            }
        }
        Ok(Content::Source(Arc::new(Source::complete(f, lm)?)))
    })
    .await;
    match opened {
        Ok(Ok(content)) => respond(content, repo_path, headers, is_head).await,
        Ok(Err(e)) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot open cached file: {e}"),
        ),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// How long a response to a download in flight may wait for its first
/// body bytes, so that they leave with the header.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(20);

/// What a response's body comes from.
enum Content {
    /// A download in flight or a file read in chunks.
    Source(Arc<Source>),
    /// A complete file's bytes (memory-mapped) and its `Last-Modified`.
    Mapped(Bytes, Option<String>),
}

/// Serves `source` (repository path `path`, for the content type).
pub async fn serve(
    source: Arc<Source>,
    path: &str,
    headers: &HeaderMap,
    is_head: bool,
) -> Response<Body> {
    respond(Content::Source(source), path, headers, is_head).await
}

async fn respond(
    content: Content,
    path: &str,
    headers: &HeaderMap,
    is_head: bool,
) -> Response<Body> {
    let (head, complete) = match &content {
        Content::Source(source) => match source.head().await {
            Ok(h) => {
                if !is_head {
                    if let Err(e) = source.settle(SETTLE).await {
                        return download_error(&e);
                    }
                }
                (h, source.is_complete())
            }
            Err(e) => return download_error(&e),
        },
        Content::Mapped(bytes, lm) => (
            Head {
                length: Some(bytes.len() as u64),
                last_modified: lm.clone(),
                verified: false,
            },
            true,
        ),
    };
    let last_modified = head
        .last_modified
        .as_deref()
        .and_then(|s| httpdate::parse_http_date(s).ok());
    let mut builder = Response::builder().header(header::CONTENT_TYPE, content_type(path));
    if let Some(lm) = &head.last_modified {
        builder = builder.header(header::LAST_MODIFIED, lm.as_str());
    }
    if complete {
        // Compared to the second, as HTTP dates are (`lm` came from one, so
        // it lies in the range the conversion takes).
        let ims = headers.typed_get::<IfModifiedSince>();
        if let (Some(lm), Some(ims)) = (last_modified, ims) {
            if !ims.is_modified(lm) {
                return builder
                    .status(StatusCode::NOT_MODIFIED)
                    .body(empty())
                    .unwrap_or_else(|_| text(StatusCode::NOT_MODIFIED, ""));
            }
        }
    }
    let mut status = StatusCode::OK;
    let (mut start, mut end) = (0, head.length);
    if let Some(len) = head.length {
        builder = builder.header(header::ACCEPT_RANGES, "bytes");
        let if_range_ok = headers.get(header::IF_RANGE).is_none_or(|v| {
            head.last_modified
                .as_deref()
                .is_some_and(|lm| v.as_bytes() == lm.as_bytes())
        });
        if let Some(range) = headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .filter(|_| if_range_ok)
        {
            match parse_range(range, len) {
                Ok(Some((s, e))) => {
                    status = StatusCode::PARTIAL_CONTENT;
                    (start, end) = (s, Some(e));
                    builder = builder.header(
                        header::CONTENT_RANGE,
                        format!("bytes {s}-{}/{len}", e.saturating_sub(1)),
                    );
                }
                Ok(None) => {}
                Err(()) => {
                    return builder
                        .status(StatusCode::RANGE_NOT_SATISFIABLE)
                        .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                        .body(empty())
                        .unwrap_or_else(|_| text(StatusCode::RANGE_NOT_SATISFIABLE, ""));
                }
            }
        }
    }
    if let Some(e) = end {
        builder = builder.header(header::CONTENT_LENGTH, e - start);
    }
    let body = match content {
        _ if is_head => empty(),
        Content::Source(source) => {
            StreamBody::new(source.body(start, end).map_ok(Frame::data)).boxed()
        }
        Content::Mapped(bytes, _) => {
            let (start, end) = (start as usize, end.map_or(bytes.len(), |e| e as usize));
            let frames = (start..end)
                .step_by(mapped::FRAME)
                .map(move |o| Ok(Frame::data(bytes.slice(o..(o + mapped::FRAME).min(end)))));
            StreamBody::new(futures_util::stream::iter(frames)).boxed()
        }
    };
    builder
        .status(status)
        .body(body)
        .unwrap_or_else(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 10))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 100))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 100))));
        assert_eq!(parse_range("bytes=50-500", 100), Ok(Some((50, 100))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=5-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=x-", 100), Ok(None));
        assert_eq!(parse_range("bytes=-0", 100), Err(()));
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type("pool/a/a_1_amd64.deb"),
            "application/vnd.debian.binary-package"
        );
        assert_eq!(
            content_type("dists/x/main/binary-amd64/Packages.xz"),
            "application/x-xz"
        );
        assert_eq!(
            content_type("dists/x/InRelease"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            content_type("dists/x/Release.gpg"),
            "application/pgp-signature"
        );
        assert_eq!(content_type("weird"), "application/octet-stream");
    }
}
