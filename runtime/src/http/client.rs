//! Building the reqwest client: the settings both binaries choose
//! (user agent, connect timeout, optional read timeout and idle-pool
//! timeout), the redirect policy ([`super::redirect`]) and no `Referer`
//! header. reqwest's defaults cover the rest: rustls with the system's
//! roots (`SSL_CERT_FILE` honoured), proxies from the environment, no
//! transparent decompression (no compression feature is enabled).

use super::error::{error_chain, HttpError, HttpErrorKind};
use super::redirect::RedirectRules;
use std::time::Duration;

/// How to build a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// `User-Agent`, e.g. `apt-mirror/0.1.0`.
    pub user_agent: String,
    /// The TCP (and TLS) connect timeout.
    pub connect_timeout: Duration,
    /// reqwest's read timeout (from the request's start until the headers,
    /// then between reads), if any.
    pub read_timeout: Option<Duration>,
    /// How long an idle kept-alive connection stays in the pool, if not
    /// reqwest's default.
    pub pool_idle_timeout: Option<Duration>,
    /// `TCP_NODELAY` on upstream connections.
    pub tcp_nodelay: bool,
    /// Where redirects may go, and how many hops (by default: within the
    /// original request's origin only, [`super::redirect::DEFAULT_HOP_LIMIT`]).
    pub redirects: RedirectRules,
}

impl ClientOptions {
    /// Options with reqwest's defaults but for the user agent and connect
    /// timeout.
    pub fn new(user_agent: impl Into<String>, connect_timeout: Duration) -> ClientOptions {
        ClientOptions {
            user_agent: user_agent.into(),
            connect_timeout,
            read_timeout: None,
            pool_idle_timeout: None,
            tcp_nodelay: true,
            redirects: RedirectRules::default(),
        }
    }
}

/// Builds the client `options` describe.
pub fn build_client(options: &ClientOptions) -> Result<reqwest::Client, HttpError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .user_agent(options.user_agent.as_str())
        .tcp_nodelay(options.tcp_nodelay)
        .redirect(options.redirects.policy())
        .referer(false);
    if let Some(t) = options.read_timeout {
        builder = builder.read_timeout(t);
    }
    if let Some(t) = options.pool_idle_timeout {
        builder = builder.pool_idle_timeout(t);
    }
    builder.build().map_err(|e| HttpError {
        url: String::new(),
        kind: HttpErrorKind::Client,
        detail: format!("cannot build HTTP client: {}", error_chain(&e)),
    })
}
