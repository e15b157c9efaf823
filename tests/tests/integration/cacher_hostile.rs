//! apt-cacher against hostile or odd input, end to end: request paths with
//! control characters (a percent-encoded newline would forge log lines, and
//! upstream would be asked for another file than the one cached) are
//! refused with 400 and nothing is fetched; file times before 1970 (anyone
//! can `touch -d @-100`) neither break the status pages nor a cached file's
//! `Last-Modified`; with `max_clients = 2` a third client waits for a place
//! and is then served, not refused.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testkit::{PackageSpec, Repo, Upstream};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn repo(dir: &Path) -> Repo {
    Repo::builder(dir)
        .package(PackageSpec::new("alpha", "1.0").size(20_000))
        .build()
        .unwrap()
}

/// Sends `request` (the request line's target) on a new connection and
/// returns the response's status.
async fn raw_get(addr: std::net::SocketAddr, target: &str) -> u16 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    testkit::rawhttp::read_response(&mut s).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_paths_are_refused_and_nothing_is_fetched() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "").await;
    let pool = repo.package("alpha").unwrap().pool_path.clone();
    let forged = "/debian/pool/a%0A2026-11-27T00:00:00.000Z%20ERROR%20forged:%20pwned.deb";
    let targets = [
        forged.to_string(),
        format!("/debian/{pool}%0A"),
        format!("/debian/{pool}%0d"),
        format!("/debian/{pool}%09"),
        format!("/debian/{pool}%00"),
        format!("/debian/{pool}%7F"),
        "/debian/dists/stable%0A/InRelease".to_string(),
        // The proxy form goes through the same check.
        format!("{}/{pool}%0A", up.url()),
    ];
    for target in &targets {
        assert_eq!(raw_get(c.addr, target).await, 400, "{target}");
    }
    assert_eq!(up.requests_total(), 0, "{:?}", up.request_log());
    assert_eq!(c.app.store.usage().0, 0);
    // The same file without the control character is served.
    assert_eq!(raw_get(c.addr, &format!("/debian/{pool}")).await, 200);
    c.stop().await;
}

/// Sets the modification time of every file under `dir` to `t`.
fn set_mtimes(dir: &Path, t: SystemTime) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        let ft = std::fs::symlink_metadata(&p).unwrap().file_type();
        if ft.is_dir() {
            n += set_mtimes(&p, t);
        } else if ft.is_file() {
            let f = std::fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(t).unwrap();
            n += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_times_before_1970_are_clamped_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let dir = tmp.path().join("cacher");
    let pool = repo.package("alpha").unwrap().pool_path.clone();
    let c = testkit::cacher::start(&dir, &up.url(), "").await;
    let base = format!("http://{}/debian", c.addr);
    for path in ["dists/stable/InRelease", pool.as_str()] {
        let r = client().get(format!("{base}/{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.bytes().await.unwrap();
    }
    for _ in 0..500 {
        if c.app.store.usage().0 == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(c.app.store.usage().0, 1, "the pool file is kept");
    c.stop().await;

    // Everything the cacher wrote now claims to be from before 1970.
    let before_1970 = UNIX_EPOCH - Duration::from_secs(100);
    assert!(set_mtimes(&dir.join("meta"), before_1970) > 0);
    assert!(set_mtimes(&dir.join("cache"), before_1970) > 0);

    // Restarted with upstream gone, so the old generation stays current.
    drop(up);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/", dead.local_addr().unwrap());
    drop(dead);
    let c = testkit::cacher::start(&dir, &dead_url, "").await;
    let status = format!("http://{}/~/status", c.addr);
    let mut json = String::new();
    for _ in 0..200 {
        let r = client().get(format!("{status}.json")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        json = r.text().await.unwrap();
        if json.contains("1970") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(json.contains("Thu, 01 Jan 1970 00:00:00 GMT"), "{json}");
    let r = client().get(&status).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("01 Jan 1970"));

    // A cached file's Last-Modified, clamped as well.
    let r = client()
        .get(format!("http://{}/debian/{pool}", c.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("last-modified")
            .map(|v| v.to_str().unwrap()),
        Some("Thu, 01 Jan 1970 00:00:00 GMT")
    );
    r.bytes().await.unwrap();
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_beyond_max_clients_waits_and_is_then_served() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "max_clients = 2").await;
    let request = b"GET /nosuchmapping/x HTTP/1.1\r\nHost: t\r\n\r\n";

    // Two keep-alive clients take both places.
    let mut first = TcpStream::connect(c.addr).await.unwrap();
    first.write_all(request).await.unwrap();
    let (status, head) = testkit::rawhttp::read_response(&mut first).await;
    assert_eq!(status, 404);
    // Small pages keep their Content-Length (not chunked).
    assert!(head.contains("content-length:"), "{head}");
    let mut second = TcpStream::connect(c.addr).await.unwrap();
    second.write_all(request).await.unwrap();
    assert_eq!(testkit::rawhttp::read_response(&mut second).await.0, 404);

    // A third connects (the kernel's backlog) but is not served yet...
    let mut third = TcpStream::connect(c.addr).await.unwrap();
    third.write_all(request).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(700), third.peek(&mut byte)).await;
    assert!(
        early.is_err(),
        "the third client was answered at once: {early:?}"
    );

    // ...until one of the first two closes: then it is served, not refused.
    drop(first);
    let t = std::time::Instant::now();
    let (status, _) = tokio::time::timeout(
        Duration::from_secs(10),
        testkit::rawhttp::read_response(&mut third),
    )
    .await
    .expect("the third client is served once a place is free");
    assert_eq!(status, 404);
    eprintln!(
        "third client served {:?} after a place was freed",
        t.elapsed()
    );
    // The second one is still served on its kept connection.
    second.write_all(request).await.unwrap();
    assert_eq!(testkit::rawhttp::read_response(&mut second).await.0, 404);
    c.stop().await;
}
