//! Issue #13 item 8: one address holding idle connections must not starve
//! the others. 127.0.0.2 plays host A and 127.0.0.1 host B (both loopback
//! on Linux). With `max_clients_per_host` A's connections beyond its limit
//! are refused at once (503, closed) while B is served and A keeps the ones
//! it holds; with A's idle keep-alive connections filling every
//! `max_clients` place, the one idle longest is closed (`idle_reap`) so B
//! is served.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use testkit::rawhttp::{connect_from, read_response};
use testkit::{Repo, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const REQUEST: &[u8] = b"GET /debian/dists/stable/InRelease HTTP/1.1\r\nHost: t\r\n\r\n";

/// Generous: the point is "served while A holds its places", never speed.
const BOUND: Duration = Duration::from_secs(15);

fn host_a() -> IpAddr {
    "127.0.0.2".parse().unwrap()
}

fn host_b() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

/// `n` keep-alive connections from `from`, each served one request (so
/// each is surely admitted), then left idle.
async fn idle_connections(from: IpAddr, to: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        let mut s = connect_from(from, to).await.unwrap();
        s.write_all(REQUEST).await.unwrap();
        let (status, _) = tokio::time::timeout(BOUND, read_response(&mut s))
            .await
            .expect("served");
        assert_eq!(status, 200);
        held.push(s);
    }
    held
}

/// One request from `from` on a new connection: its status.
async fn one_request(from: IpAddr, to: SocketAddr) -> u16 {
    let mut s = connect_from(from, to).await.unwrap();
    s.write_all(REQUEST).await.unwrap();
    tokio::time::timeout(BOUND, read_response(&mut s))
        .await
        .expect("served while the other host holds its places")
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_beyond_its_limit_is_refused_and_others_are_served() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo")).build().unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(
        &tmp.path().join("cacher"),
        &up.url(),
        "max_clients_per_host = 4",
    )
    .await;
    let mut held = idle_connections(host_a(), c.addr, 4).await;
    // A's fifth and sixth connections: refused at once, not left waiting.
    for _ in 0..2 {
        let mut extra = connect_from(host_a(), c.addr).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(BOUND, extra.read_to_end(&mut answer))
            .await
            .expect("refused promptly")
            .ok();
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
            "{answer}"
        );
    }
    // B is served, many times, while A holds its limit.
    let mut served = 0;
    for _ in 0..20 {
        assert_eq!(one_request(host_b(), c.addr).await, 200);
        served += 1;
    }
    eprintln!("host B served {served} requests while host A held its limit of 4");
    // A keeps the connections it holds.
    for s in &mut held {
        s.write_all(REQUEST).await.unwrap();
        assert_eq!(read_response(s).await.0, 200);
    }
    // Once A lets one go, it may connect again.
    held.pop();
    let mut again = None;
    for _ in 0..50 {
        let mut s = connect_from(host_a(), c.addr).await.unwrap();
        s.write_all(REQUEST).await.unwrap();
        let mut first = [0u8; 12];
        if s.read_exact(&mut first).await.is_ok() && first.ends_with(b"200") {
            again = Some(s);
            break;
        }
        // The closed connection's place may not be free yet.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again.is_some(), "A may connect again below its limit");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alives_are_reaped_when_every_place_is_taken() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo")).build().unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(
        &tmp.path().join("cacher"),
        &up.url(),
        "max_clients = 4\n[timeouts]\nidle_reap = 1",
    )
    .await;
    // A fills every place with idle keep-alive connections.
    let mut held = idle_connections(host_a(), c.addr, 4).await;
    // B is served: the connection idle longest makes room (client_idle,
    // 120 s, would have taken far longer than BOUND).
    assert_eq!(one_request(host_b(), c.addr).await, 200);
    assert_eq!(one_request(host_b(), c.addr).await, 200);
    // Two of A's connections were closed for it, the oldest first.
    let mut closed = 0;
    for s in &mut held {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            _ => {}
        }
    }
    assert!(closed >= 1, "no idle connection of A was closed");
    c.stop().await;
}
