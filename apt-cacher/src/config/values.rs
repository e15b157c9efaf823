//! The values inside apt-cacher's configuration that have their own syntax
//! (mapping prefixes, upstream URLs, networks, listen addresses), each
//! parsed by one function with a typed [`ValueError`]. They live apart from
//! the file loader because other places parse the same values (the
//! defaults read from apt's sources, the tests), and the loader only adds
//! the key and line to the error.

use crate::listen_address::{BadListenAddr, ListenAddr};
use reqwest::Url;

/// Which kind of value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueErrorKind {
    /// An upstream URL.
    UpstreamUrl,
    /// A network (`status_allow`).
    Network,
    /// A listen address.
    Listen,
}

/// A configuration value that does not parse: the text and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not a URL at all.
    #[error("{text:?} is not a URL: {reason}")]
    NotUrl {
        /// The value.
        text: String,
        /// The URL parser's message.
        reason: String,
    },
    /// A URL with a scheme other than http and https.
    #[error("{text:?}: only http and https URLs are supported")]
    Scheme {
        /// The value.
        text: String,
    },
    /// A URL without a host.
    #[error("{text:?}: no host")]
    NoHost {
        /// The value.
        text: String,
    },
    /// A URL with a query, fragment or user info.
    #[error("{text:?}: query, fragment and user info are not allowed")]
    Extras {
        /// The value.
        text: String,
    },
    /// A network whose address has bits set past its prefix length.
    #[error("{text:?} has host bits set (did you mean {truncated}?)")]
    HostBits {
        /// The value.
        text: String,
        /// The network the value probably meant.
        truncated: ipnet::IpNet,
    },
    /// Neither a network nor an address.
    #[error("{text:?} is not a network such as \"10.0.0.0/8\" or \"::1/128\"")]
    NotNetwork {
        /// The value.
        text: String,
    },
    /// A listen address that does not parse.
    #[error(transparent)]
    Listen(#[from] BadListenAddr),
}

impl ValueError {
    /// Which kind of value was rejected.
    pub fn kind(&self) -> ValueErrorKind {
        match self {
            ValueError::NotUrl { .. }
            | ValueError::Scheme { .. }
            | ValueError::NoHost { .. }
            | ValueError::Extras { .. } => ValueErrorKind::UpstreamUrl,
            ValueError::HostBits { .. } | ValueError::NotNetwork { .. } => ValueErrorKind::Network,
            ValueError::Listen(_) => ValueErrorKind::Listen,
        }
    }
}

/// True when `prefix` matches `^[a-z0-9._-]+$`.
pub fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// Parses an upstream URL: http or https, with a host, no query or fragment.
/// The path's trailing slashes are removed.
pub fn parse_upstream_url(text: &str) -> Result<Url, ValueError> {
    let mut url = Url::parse(text).map_err(|e| ValueError::NotUrl {
        text: text.to_string(),
        reason: e.to_string(),
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(ValueError::Scheme {
            text: text.to_string(),
        });
    }
    if url.host_str().is_none_or(|h| h.is_empty()) {
        return Err(ValueError::NoHost {
            text: text.to_string(),
        });
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(ValueError::Extras {
            text: text.to_string(),
        });
    }
    let path = url.path().trim_end_matches('/').to_string();
    url.set_path(&path);
    Ok(url)
}

/// Parses a network in CIDR notation (`10.0.0.0/8`, `::1/128`); a bare
/// address means that one host. An IPv4-mapped IPv6 network
/// (`::ffff:10.0.0.0/104`) becomes the IPv4 network it maps (`10.0.0.0/8`),
/// as client addresses are compared in their canonical form.
pub fn parse_network(text: &str) -> Result<ipnet::IpNet, ValueError> {
    let t = text.trim();
    if let Ok(net) = t.parse::<ipnet::IpNet>() {
        if net.trunc() != net {
            return Err(ValueError::HostBits {
                text: text.to_string(),
                truncated: net.trunc(),
            });
        }
        return Ok(canonical_network(net));
    }
    t.parse::<std::net::IpAddr>()
        .map(|a| canonical_network(ipnet::IpNet::from(a)))
        .map_err(|_| ValueError::NotNetwork {
            text: text.to_string(),
        })
}

/// `net` with an IPv4-mapped IPv6 network (prefix ≥ 96) written as IPv4.
fn canonical_network(net: ipnet::IpNet) -> ipnet::IpNet {
    if let ipnet::IpNet::V6(v6) = net {
        if let (Some(v4), Some(len)) = (v6.addr().to_ipv4_mapped(), v6.prefix_len().checked_sub(96))
        {
            if let Ok(n) = ipnet::Ipv4Net::new(v4, len) {
                return ipnet::IpNet::V4(n);
            }
        }
    }
    net
}

/// Parses one `listen_address` as go-apt-cacher does: `":3142"` means every
/// address (IPv6 and IPv4), `"host:port"` a specific one (see
/// [`crate::listen_address`]).
pub fn parse_listen(text: &str) -> Result<ListenAddr, ValueError> {
    text.parse().map_err(|e: BadListenAddr| ValueError::from(e))
}
