//! One error type for whatever goes wrong talking HTTP to an upstream:
//! [`HttpError`] names the URL, says what kind of failure it is
//! ([`HttpErrorKind`]: the binaries decide by kind whether to retry, what
//! to answer a client, what to remember) and carries the whole source chain
//! of the underlying error as text.

use super::redirect::{RedirectRefusal, RedirectRefused};
use reqwest::Url;
use std::fmt;

/// What kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpErrorKind {
    /// Connecting failed (refused, unreachable, TLS handshake...).
    Connect,
    /// Connecting took longer than the connect timeout.
    ConnectTimeout,
    /// Another timeout: no byte in time, or the overall cap.
    Timeout,
    /// The upstream answered this status (not a success the caller takes).
    Status(u16),
    /// The transfer broke off, or another transport error.
    Transport,
    /// The body is larger than this many bytes, the most allowed.
    TooLarge(u64),
    /// The URL does not parse.
    InvalidUrl,
    /// The client itself could not be built.
    Client,
    /// Upstream redirected where the redirect policy does not go (the
    /// detail names the Location).
    Redirect(RedirectRefusal),
}

/// An HTTP failure: the URL, the kind, and the details (source chain).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct HttpError {
    /// The URL (empty for [`HttpErrorKind::Client`]).
    pub url: String,
    /// What kind of failure.
    pub kind: HttpErrorKind,
    /// The underlying error and its sources, `: `-separated (may be empty).
    pub detail: String,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.url;
        let detail = &self.detail;
        match self.kind {
            HttpErrorKind::Connect => write!(f, "{url}: cannot connect: {detail}"),
            HttpErrorKind::ConnectTimeout => write!(f, "{url}: connect timeout: {detail}"),
            HttpErrorKind::Timeout => write!(f, "{url}: timed out: {detail}"),
            HttpErrorKind::Status(status) => write!(f, "{url}: HTTP status {status}"),
            HttpErrorKind::TooLarge(limit) => {
                write!(f, "{url}: response larger than {limit} bytes")
            }
            HttpErrorKind::Redirect(_) => write!(f, "{url}: redirect refused: {detail}"),
            HttpErrorKind::Transport | HttpErrorKind::InvalidUrl => write!(f, "{url}: {detail}"),
            HttpErrorKind::Client => f.write_str(detail),
        }
    }
}

impl HttpError {
    /// The failure of a request to `url` as reqwest reports it, classified.
    pub fn from_reqwest(url: &Url, e: &reqwest::Error) -> HttpError {
        if let Some(refused) = redirect_refused(e) {
            return HttpError {
                url: url.to_string(),
                kind: HttpErrorKind::Redirect(refused.reason),
                detail: refused.to_string(),
            };
        }
        let kind = if e.is_connect() && e.is_timeout() {
            HttpErrorKind::ConnectTimeout
        } else if e.is_timeout() {
            HttpErrorKind::Timeout
        } else if e.is_connect() {
            HttpErrorKind::Connect
        } else {
            HttpErrorKind::Transport
        };
        HttpError {
            url: url.to_string(),
            kind,
            detail: error_chain(e),
        }
    }

    /// `url` answered `status`.
    pub fn status(url: &Url, status: u16) -> HttpError {
        HttpError {
            url: url.to_string(),
            kind: HttpErrorKind::Status(status),
            detail: String::new(),
        }
    }

    /// `url`'s body is larger than `limit` bytes.
    pub fn too_large(url: &Url, limit: u64) -> HttpError {
        HttpError {
            url: url.to_string(),
            kind: HttpErrorKind::TooLarge(limit),
            detail: String::new(),
        }
    }

    /// A failure of `kind` for `url`, with `detail` (the reason, may be empty).
    pub fn new(
        url: impl Into<String>,
        kind: HttpErrorKind,
        detail: impl Into<String>,
    ) -> HttpError {
        HttpError {
            url: url.into(),
            kind,
            detail: detail.into(),
        }
    }

    /// The status upstream answered, when it answered one.
    pub fn status_code(&self) -> Option<u16> {
        match self.kind {
            HttpErrorKind::Status(status) => Some(status),
            _ => None,
        }
    }

    /// Upstream answered 404 or 410: the file is not there (a caller may
    /// try the next URL, and need not report it as a failure).
    pub fn is_not_found(&self) -> bool {
        matches!(self.kind, HttpErrorKind::Status(404 | 410))
    }

    /// A timeout of either kind (connecting, or waiting for data).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.kind,
            HttpErrorKind::Timeout | HttpErrorKind::ConnectTimeout
        )
    }

    /// A failure while connecting (of either kind).
    pub fn is_connect(&self) -> bool {
        matches!(
            self.kind,
            HttpErrorKind::Connect | HttpErrorKind::ConnectTimeout
        )
    }
}

/// The redirect refusal in `e`'s source chain, if any.
fn redirect_refused(e: &reqwest::Error) -> Option<&RedirectRefused> {
    if !e.is_redirect() {
        return None;
    }
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        if let Some(r) = inner.downcast_ref::<RedirectRefused>() {
            return Some(r);
        }
        src = inner.source();
    }
    None
}

/// Renders an error with its sources, `: `-separated.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::client::{build_client, ClientOptions};
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-connection server on 127.0.0.1 that reads the request and
    /// writes `answer` (or nothing, holding the connection, when `None`).
    async fn serve_once(answer: Option<&'static [u8]>) -> Url {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            match answer {
                Some(a) => {
                    let _ = s.write_all(a).await;
                    let _ = s.shutdown().await;
                }
                None => tokio::time::sleep(Duration::from_secs(30)).await,
            }
        });
        Url::parse(&format!("http://{addr}/dists/s/Release")).unwrap()
    }

    fn client() -> reqwest::Client {
        let mut o = ClientOptions::new("runtime-test", Duration::from_secs(2));
        o.read_timeout = Some(Duration::from_millis(300));
        build_client(&o).unwrap()
    }

    async fn get(url: &Url) -> Result<reqwest::Response, HttpError> {
        client()
            .get(url.clone())
            .send()
            .await
            .map_err(|e| HttpError::from_reqwest(url, &e))
    }

    #[tokio::test]
    async fn refused_is_connect() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let url = Url::parse(&format!("http://{addr}/x")).unwrap();
        let e = get(&url).await.unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::Connect, "{e}");
        assert!(e.is_connect());
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("http://{addr}/x: cannot connect: ")),
            "{text}"
        );
    }

    #[tokio::test]
    async fn no_answer_is_a_timeout() {
        let url = serve_once(None).await;
        let e = get(&url).await.unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::Timeout, "{e}");
        assert!(!e.is_connect());
        assert!(
            e.to_string().starts_with(&format!("{url}: timed out: ")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_short_body_is_a_transport_error() {
        let url = serve_once(Some(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",
        ))
        .await;
        let mut resp = get(&url).await.unwrap();
        let mut result = Ok(());
        loop {
            match resp.chunk().await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    result = Err(HttpError::from_reqwest(&url, &e));
                    break;
                }
            }
        }
        let e = result.unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::Transport, "{e}");
        assert!(e.to_string().starts_with(&format!("{url}: ")), "{e}");
    }

    #[tokio::test]
    async fn status_and_size_errors_name_the_url() {
        let url = serve_once(Some(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")).await;
        let resp = get(&url).await.unwrap();
        let e = HttpError::status(&url, resp.status().as_u16());
        assert_eq!(e.kind, HttpErrorKind::Status(404));
        assert!(e.is_not_found());
        assert_eq!(e.status_code(), Some(404));
        assert!(HttpError::status(&url, 410).is_not_found());
        assert!(!HttpError::status(&url, 500).is_not_found());
        assert_eq!(e.to_string(), format!("{url}: HTTP status 404"));
        let e = HttpError::too_large(&url, 10);
        assert_eq!(e.kind, HttpErrorKind::TooLarge(10));
        assert_eq!(
            e.to_string(),
            format!("{url}: response larger than 10 bytes")
        );
    }
}
