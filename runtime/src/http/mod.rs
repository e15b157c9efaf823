//! The one HTTP client setup both binaries use to reach upstream
//! repositories: how the reqwest client is built ([`client`]: rustls with
//! the system's roots, `SSL_CERT_FILE` honoured, proxies from the
//! environment, timeouts), at most N requests in flight per host
//! ([`hosts`]), URL joining and the host key ([`url`]), one error type
//! with a kind that names the URL ([`error`]), the retry policy
//! ([`retry`]), and the redirect policy ([`redirect`]: same upstream,
//! aliases or `redirect_hosts` only, same scheme, few hops, no Referer). What each binary does with a response (the cacher's
//! negative cache and streaming to clients, the mirror's verified
//! downloads) stays in the binary.

pub mod client;
pub mod error;
pub mod hosts;
pub mod redirect;
pub mod retry;
pub mod url;

pub use client::{build_client, ClientOptions};
pub use error::{error_chain, HttpError, HttpErrorKind};
pub use hosts::HostLimits;
pub use redirect::{RedirectHost, RedirectRefusal, RedirectRefused, RedirectRules};
pub use retry::RetryPolicy;
pub use url::{host_key, join, Url};
