//! The redirect policy's decisions, and a client built with it against
//! servers on 127.0.0.1: a refused hop becomes a typed error naming the
//! Location, an allowed one is followed without a `Referer`.

use super::*;
use crate::http::{build_client, ClientOptions, HttpError, HttpErrorKind};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn rules() -> RedirectRules {
    let mut r = RedirectRules::new(3);
    r.add(
        "debian",
        &[
            &url("http://deb.example.org/debian"),
            &url("http://alias.example.org:8080/debian"),
        ],
        &[
            RedirectHost::parse("cdn.example.org").unwrap(),
            RedirectHost::parse("127.0.0.1:9").unwrap(),
        ],
    );
    r.add("secure", &[&url("https://sec.example.org/debian")], &[]);
    r
}

#[test]
fn same_origin_alias_and_listed_hosts_are_followed() {
    let r = rules();
    let from = [url("http://deb.example.org/debian/pool/a.deb")];
    for ok in [
        "http://deb.example.org/other/a.deb",
        "http://DEB.example.org:80/x",
        "http://alias.example.org:8080/debian/a.deb",
        "http://cdn.example.org/a.deb",
        "http://127.0.0.1:9/a.deb",
    ] {
        assert_eq!(r.check(&url(ok), &from), Ok(()), "{ok}");
    }
    // An unregistered origin may stay on itself.
    let other = [url("http://unknown.example.org/x")];
    assert_eq!(
        r.check(&url("http://unknown.example.org/y"), &other),
        Ok(())
    );
}

#[test]
fn other_hosts_ports_and_schemes_are_refused() {
    let r = rules();
    let from = [url("http://deb.example.org/debian/pool/a.deb")];
    for (bad, why) in [
        (
            "http://127.0.0.1:8081/a.deb",
            RedirectRefusal::HostNotAllowed,
        ),
        (
            "http://cdn.example.org:81/a.deb",
            RedirectRefusal::HostNotAllowed,
        ),
        (
            "http://deb.example.org:8080/a",
            RedirectRefusal::HostNotAllowed,
        ),
        (
            "http://evil.example.org/a.deb",
            RedirectRefusal::HostNotAllowed,
        ),
        (
            "https://deb.example.org/a.deb",
            RedirectRefusal::SchemeChange,
        ),
        (
            "https://cdn.example.org/a.deb",
            RedirectRefusal::SchemeChange,
        ),
        ("ftp://deb.example.org/a.deb", RedirectRefusal::SchemeChange),
        ("file:///etc/passwd", RedirectRefusal::BadTarget),
    ] {
        assert_eq!(r.check(&url(bad), &from), Err(why), "{bad}");
    }
    let sec = [url("https://sec.example.org/debian/a")];
    assert_eq!(
        r.check(&url("http://sec.example.org/debian/a"), &sec),
        Err(RedirectRefusal::SchemeChange)
    );
    // An unregistered origin goes nowhere else.
    let other = [url("http://unknown.example.org/x")];
    assert_eq!(
        r.check(&url("http://deb.example.org/y"), &other),
        Err(RedirectRefusal::HostNotAllowed)
    );
}

#[test]
fn the_hop_limit_counts_the_chain() {
    let r = rules();
    let hop = url("http://deb.example.org/debian/x");
    let chain: Vec<Url> = (0..3).map(|_| hop.clone()).collect();
    assert_eq!(r.check(&hop, &chain), Ok(()));
    let chain: Vec<Url> = (0..4).map(|_| hop.clone()).collect();
    assert_eq!(r.check(&hop, &chain), Err(RedirectRefusal::TooManyHops(3)));
}

#[test]
fn redirect_host_entries_parse() {
    for bad in [
        "", "http://x", "x/y", "u@x", "x:http", "x:70000", "::1", "*", "a.*.org", "**.x",
    ] {
        assert!(RedirectHost::parse(bad).is_err(), "{bad:?}");
    }
    let h = RedirectHost::parse("[::1]:81").unwrap();
    assert_eq!(h.host, "::1");
    assert_eq!(h.port, Some(81));
    let h = RedirectHost::parse("CDN.example.org").unwrap();
    assert_eq!(h.host, "cdn.example.org");
    assert_eq!(h.port, None);
    assert_eq!(
        RedirectHost::parse("x:80").unwrap().port,
        Some(80),
        "an explicit default port is kept"
    );
}

#[test]
fn a_wildcard_entry_allows_hosts_under_its_domain_only() {
    let h = RedirectHost::parse("*.Mirrors.example.org").unwrap();
    let at = |host: &str, port: u16| Origin {
        scheme: "http".into(),
        host: host.into(),
        port,
    };
    assert!(h.matches(&at("a.mirrors.example.org", 80)));
    assert!(h.matches(&at("a.b.mirrors.example.org", 80)));
    assert!(!h.matches(&at("mirrors.example.org", 80)));
    assert!(!h.matches(&at("evilmirrors.example.org", 80)));
    assert!(!h.matches(&at("a.mirrors.example.org.evil.test", 80)));
    assert!(!h.matches(&at("a.mirrors.example.org", 8080)));
    let p = RedirectHost::parse("*.example.org:8080").unwrap();
    assert!(p.matches(&at("x.example.org", 8080)));
}

/// A server on 127.0.0.1 that answers every request with `answer(path)`
/// and sends the raw request heads it read to the returned channel.
async fn serve(
    answer: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                let _ = tx.send(head);
                let _ = s.write_all(answer(&path).as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (port, rx)
}

fn redirect_to(location: String) -> String {
    format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

async fn get(options: &ClientOptions, u: &Url) -> Result<reqwest::Response, HttpError> {
    build_client(options)
        .unwrap()
        .get(u.clone())
        .send()
        .await
        .map_err(|e| HttpError::from_reqwest(u, &e))
}

#[tokio::test]
async fn a_cross_port_redirect_is_a_typed_error_and_never_reached() {
    let (target, mut target_log) = serve(|_| {
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno".to_string()
    })
    .await;
    let (origin, _log) = serve(move |_| redirect_to(format!("http://127.0.0.1:{target}/x"))).await;
    let u = url(&format!("http://127.0.0.1:{origin}/debian/a.deb"));
    let e = get(&ClientOptions::new("t", Duration::from_secs(2)), &u)
        .await
        .unwrap_err();
    assert_eq!(
        e.kind,
        HttpErrorKind::Redirect(RedirectRefusal::HostNotAllowed),
        "{e}"
    );
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("{u}: redirect refused")),
        "{text}"
    );
    assert!(
        text.contains(&format!("Location: http://127.0.0.1:{target}/x")),
        "{text}"
    );
    assert!(target_log.try_recv().is_err(), "the target was reached");
}

#[tokio::test]
async fn an_allowed_redirect_is_followed_without_referer_and_loops_stop() {
    let (target, mut target_log) = serve(|_| {
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_string()
    })
    .await;
    let (origin, _log) = serve(move |path| {
        if path == "/loop" {
            redirect_to("/loop".to_string())
        } else {
            redirect_to(format!("http://127.0.0.1:{target}/x"))
        }
    })
    .await;
    let u = url(&format!("http://127.0.0.1:{origin}/debian/a.deb"));
    let mut options = ClientOptions::new("t", Duration::from_secs(2));
    options.redirects.add(
        "m",
        &[&u],
        &[RedirectHost::parse(&format!("127.0.0.1:{target}")).unwrap()],
    );
    let resp = get(&options, &u).await.unwrap();
    assert_eq!(resp.url().port(), Some(target));
    assert_eq!(resp.text().await.unwrap(), "ok");
    let head = target_log.recv().await.unwrap().to_ascii_lowercase();
    assert!(!head.contains("\r\nreferer:"), "{head}");

    let u = url(&format!("http://127.0.0.1:{origin}/loop"));
    let e = get(&options, &u).await.unwrap_err();
    assert_eq!(
        e.kind,
        HttpErrorKind::Redirect(RedirectRefusal::TooManyHops(DEFAULT_HOP_LIMIT)),
        "{e}"
    );
    assert!(e.to_string().contains("more than 5 redirects"), "{e}");
}
