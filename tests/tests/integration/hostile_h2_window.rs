//! Issue #13 item 4: an HTTP/2 client that sets
//! `SETTINGS_INITIAL_WINDOW_SIZE = 0` and never sends `WINDOW_UPDATE` gets
//! its response headers but can take no byte of the body, so hyper never
//! polls the body and the socket never blocks: without a bound of its own
//! such a stream held its connection forever. Driven with the `h2` crate as
//! a raw client: the connection is cut once the response has waited
//! `client_idle` for the client (set to 1 s here), as an HTTP/1 client that
//! stops reading is.

use std::time::{Duration, Instant};
use testkit::{PackageSpec, Repo, Upstream};

/// Generous: the point is "cut by the timer", never how fast.
const BOUND: Duration = Duration::from_secs(15);

/// Sends a GET for `path` with a stream window of 0 and never opens it;
/// returns how long after the response headers the stream and the
/// connection ended, and what the body gave (nothing may arrive).
async fn stall(addr: std::net::SocketAddr, path: &str) -> Duration {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, conn) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, bytes::Bytes>(tcp)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get(format!("http://{addr}{path}"))
        .body(())
        .unwrap();
    let (resp, _) = client.send_request(req, true).unwrap();
    let resp = resp.await.expect("response headers (not flow-controlled)");
    assert_eq!(resp.status(), 200);
    let t = Instant::now();
    let mut body = resp.into_body();
    let data = tokio::time::timeout(BOUND, body.data())
        .await
        .expect("a stream whose window stays closed is cut, not held forever");
    assert!(
        !matches!(data, Some(Ok(ref d)) if !d.is_empty()),
        "a byte went through a closed window: {data:?}"
    );
    tokio::time::timeout(BOUND, conn)
        .await
        .expect("its connection is closed too")
        .unwrap()
        .ok();
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_reader_that_never_opens_its_window_is_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .package(PackageSpec::new("alpha", "1.0").size(100_000))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(
        &tmp.path().join("cacher"),
        &up.url(),
        "[timeouts]\nclient_idle = 1",
    )
    .await;
    // A metadata file and the cacher's own page (loopback may read it).
    let took = stall(c.addr, "/debian/dists/stable/InRelease").await;
    eprintln!("HTTP/2 staller cut {took:?} after its response headers (client_idle = 1 s)");
    let took = stall(c.addr, "/~/status.json").await;
    eprintln!("HTTP/2 staller of /~/status.json cut after {took:?}");
    // Everyone else is still served.
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{}/debian/dists/stable/InRelease", c.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    c.stop().await;
}

/// The figure for the closing note: with the default timeouts
/// (`client_idle = 120`), how long the staller holds its connection. Takes
/// two minutes; run with
/// `cargo test -p integration-tests --test integration hostile_h2_window:: -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn an_http2_staller_with_the_default_timeouts() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo")).build().unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "").await;
    let tcp = tokio::net::TcpStream::connect(c.addr).await.unwrap();
    let (mut client, conn) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, bytes::Bytes>(tcp)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get(format!("http://{}/debian/dists/stable/InRelease", c.addr))
        .body(())
        .unwrap();
    let (resp, _) = client.send_request(req, true).unwrap();
    let resp = resp.await.unwrap();
    let t = Instant::now();
    let mut body = resp.into_body();
    let limit = Duration::from_secs(300);
    let data = tokio::time::timeout(limit, body.data()).await;
    let _ = tokio::time::timeout(limit, conn).await;
    eprintln!(
        "default timeouts: HTTP/2 staller cut {:?} after its response headers ({:?})",
        t.elapsed(),
        data.map(|d| d.map(|r| r.map(|b| b.len())))
    );
    c.stop().await;
}
