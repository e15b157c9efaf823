//! What `listen_address` says, in go-apt-cacher's notation. `":3142"`
//! means every address of the host, IPv6 and IPv4, as Go's `net.Listen`
//! does: one dual-stack socket on `[::]:3142` (or `0.0.0.0:3142` on a host
//! without IPv6; see [`crate::listen`]). `"host:port"` is that one address;
//! `"[::]:3142"` and `"0.0.0.0:3142"` are the IPv6-only and IPv4-only
//! wildcards, so that both may be listed. The key takes one string (the Go
//! form, unchanged) or an array of them; every address is listened on.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// One address to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenAddr {
    /// `":port"`: every address, IPv6 and IPv4.
    Any(u16),
    /// `"ip:port"` / `"[ipv6]:port"`: that address only.
    At(SocketAddr),
}

impl ListenAddr {
    /// The port (0: a free one, chosen when bound).
    pub fn port(&self) -> u16 {
        match self {
            ListenAddr::Any(port) => *port,
            ListenAddr::At(addr) => addr.port(),
        }
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(addr: SocketAddr) -> Self {
        ListenAddr::At(addr)
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Any(port) => write!(f, ":{port}"),
            ListenAddr::At(addr) => write!(f, "{addr}"),
        }
    }
}

/// A `listen_address` value that is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an address of the form :port, ip:port or [ipv6]:port")]
pub struct BadListenAddr {
    /// The text given.
    pub text: String,
}

impl FromStr for ListenAddr {
    type Err = BadListenAddr;

    fn from_str(text: &str) -> Result<Self, BadListenAddr> {
        let bad = || BadListenAddr {
            text: text.to_string(),
        };
        match text.strip_prefix(':') {
            Some(port) => port.parse().map(ListenAddr::Any).map_err(|_| bad()),
            None => text.parse().map(ListenAddr::At).map_err(|_| bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_forms_parse() {
        assert_eq!(":3142".parse(), Ok(ListenAddr::Any(3142)));
        assert_eq!(":0".parse(), Ok(ListenAddr::Any(0)));
        assert_eq!(
            "127.0.0.1:3142".parse(),
            Ok(ListenAddr::At("127.0.0.1:3142".parse().unwrap()))
        );
        assert_eq!(
            "[::1]:3142".parse(),
            Ok(ListenAddr::At("[::1]:3142".parse().unwrap()))
        );
        for bad in [
            "",
            ":",
            ":http",
            ":65536",
            "3142",
            "::1:3142",
            "host:3142",
            " :3142",
        ] {
            let e = bad.parse::<ListenAddr>().unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn displays_as_written() {
        for text in [":3142", "127.0.0.1:80", "[::1]:3142", "[::]:0"] {
            assert_eq!(text.parse::<ListenAddr>().unwrap().to_string(), text);
        }
    }
}
