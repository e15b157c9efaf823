//! Who may read the cacher's own pages (`/~/status`, `/~/status.json`,
//! `/~/metrics`, anything under `/~/`). They show mapping URLs, upstream
//! hosts and the URLs that failed, so by default only loopback sees them;
//! `status_allow` lists the networks that may instead (an explicit list
//! replaces the default: loopback is then allowed only when listed). The
//! decision is a plain function of the list and the client's address, so
//! it is tested here with addresses no test can connect from.

use std::net::IpAddr;

/// True when `client` may read the status pages: `allow` lists the
/// networks (`None`: the key is not set, loopback only). IPv4-mapped IPv6
/// clients (`::ffff:a.b.c.d`) are matched as the IPv4 address they are.
pub fn status_allowed(allow: Option<&[ipnet::IpNet]>, client: IpAddr) -> bool {
    let client = client.to_canonical();
    match allow {
        None => client.is_loopback(),
        Some(nets) => nets.iter().any(|n| n.contains(&client)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_network;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_only_by_default() {
        for a in [
            "127.0.0.1",
            "127.0.0.2",
            "127.255.0.9",
            "::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(status_allowed(None, ip(a)), "{a}");
        }
        for a in [
            "10.0.0.1",
            "192.0.2.7",
            "::ffff:192.0.2.7",
            "2001:db8::1",
            "0.0.0.0",
            "::",
            "fe80::1",
        ] {
            assert!(!status_allowed(None, ip(a)), "{a}");
        }
    }

    #[test]
    fn an_explicit_list_replaces_the_default() {
        let nets: Vec<_> = ["10.0.0.0/8", "192.0.2.7"]
            .iter()
            .map(|n| parse_network(n).unwrap())
            .collect();
        let allow = Some(nets.as_slice());
        assert!(status_allowed(allow, ip("10.9.8.7")));
        assert!(status_allowed(allow, ip("::ffff:10.9.8.7")));
        assert!(status_allowed(allow, ip("192.0.2.7")));
        assert!(!status_allowed(allow, ip("192.0.2.8")));
        assert!(!status_allowed(allow, ip("127.0.0.1")));
        assert!(!status_allowed(allow, ip("::1")));
        assert!(!status_allowed(Some(&[]), ip("127.0.0.1")));
    }
}
