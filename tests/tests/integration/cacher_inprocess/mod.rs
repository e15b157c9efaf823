//! apt-cacher end to end in this process, against the test kit's upstream
//! ([`testkit::Upstream`]: request counts, a delay before each 64 KiB
//! chunk, a body cut short under its `Content-Length` or sent chunked,
//! replaceable files) and a tiny unsigned repository, with the cacher
//! started on 127.0.0.1:0 and exercised with reqwest. It looks at what only
//! the library shows: the store's usage, the counters, the current
//! generations, the bytes sendfile(2) sent. (These were apt-cacher's
//! in-crate tests, with an upstream of their own.)

use apt_cacher::config::{parse_upstream_url, Config, LogConfig, Mapping, Timeouts};
use apt_cacher::CancellationToken;
use aptindex::checksum::{Checksums, HashKind};
use bytes::Bytes;
use std::net::SocketAddr;
use std::time::Duration;
use testkit::{Times, Upstream};

mod corruption;
mod downloads;
mod generations;
mod modes;
mod observability;
mod requests;

/// The test kit's upstream serving a temporary directory of its own, with
/// the calls these tests make; the rest of [`Upstream`] through `Deref`.
struct Up {
    up: Upstream,
    _root: tempfile::TempDir,
}

impl Up {
    fn new() -> Up {
        let root = tempfile::tempdir().unwrap();
        let up = Upstream::serve(root.path()).unwrap();
        Up { up, _root: root }
    }
    /// Serves `data` at `path` from the next request on.
    fn put(&self, path: &str, data: impl AsRef<[u8]>) {
        self.up.put(path, data).unwrap();
    }
    /// Requests for exactly `path` so far.
    fn count(&self, path: &str) -> usize {
        self.up.requests(path)
    }
    /// `Some`: every body from the next request on waits this long before
    /// each 64 KiB chunk; `None`: no more faults of any kind.
    fn set_delay(&self, d: Option<Duration>) {
        match d {
            Some(d) => self.up.chunk_delay("*", d, Times::Always),
            None => self.up.clear_faults(),
        }
    }
}

impl std::ops::Deref for Up {
    type Target = Upstream;
    fn deref(&self) -> &Upstream {
        &self.up
    }
}

fn config(dir: &std::path::Path, upstream: SocketAddr) -> Config {
    Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        check_interval: Duration::from_secs(600),
        cache_period: Duration::from_secs(3),
        meta_dir: dir.join("meta"),
        cache_dir: dir.join("cache"),
        cache_capacity: 1 << 30,
        max_conns: 10,
        max_clients: apt_cacher::config::DEFAULT_MAX_CLIENTS,
        max_clients_per_host: apt_cacher::config::DEFAULT_MAX_CLIENTS_PER_HOST,
        log: LogConfig::default(),
        mappings: vec![Mapping {
            prefix: "m".into(),
            url: parse_upstream_url(&format!("http://{upstream}/repo")).unwrap(),
            aliases: vec![],
            redirect_hosts: Vec::new(),
            fallbacks: Vec::new(),
            keyrings: Vec::new(),
            local: None,
        }],
        connect_allow: vec![],
        generation_grace: Duration::from_secs(600),
        timeouts: Timeouts::default(),
        status_allow: None,
        max_index_entries: aptindex::index::bounded::DEFAULT_MAX_ENTRIES,
        unverified: Default::default(),
        revalidate_interval: std::time::Duration::from_secs(1),
        retention: apt_cacher::config::MAX_DURATION,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get(url: &str) -> Result<(u16, Bytes), String> {
    let r = client().get(url).send().await.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let body = r.bytes().await.map_err(|e| format!("body: {e}"))?;
    Ok((status, body))
}

fn sha256_hex(data: &[u8]) -> String {
    Checksums::of_bytes(data).hex(HashKind::Sha256).unwrap()
}

/// A tiny repository: Release listing Packages (and Packages.gz), Packages listing one .deb.
fn repo(deb: &[u8], version: u32) -> Vec<(String, Bytes)> {
    let packages = format!(
        "Package: a\nVersion: {version}\nArchitecture: amd64\nFilename: pool/main/a/a_1_amd64.deb\nSize: {}\nSHA256: {}\n\n",
        deb.len(),
        sha256_hex(deb)
    );
    let gz =
        aptindex::compress::compress(aptindex::Compression::Gzip, packages.as_bytes()).unwrap();
    let release = format!(
        "Origin: test\nSuite: stable\nCodename: stable{version}\nDate: Thu, 01 Jan 2026 00:00:00 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages\n {} {} main/binary-amd64/Packages.gz\n",
        sha256_hex(packages.as_bytes()),
        packages.len(),
        sha256_hex(&gz),
        gz.len()
    );
    vec![
        ("/repo/dists/stable/Release".into(), Bytes::from(release)),
        (
            "/repo/dists/stable/main/binary-amd64/Packages".into(),
            Bytes::from(packages),
        ),
        (
            "/repo/dists/stable/main/binary-amd64/Packages.gz".into(),
            Bytes::from(gz),
        ),
        (
            "/repo/pool/main/a/a_1_amd64.deb".into(),
            Bytes::copy_from_slice(deb),
        ),
    ]
}

/// Waits (up to 5 s) until the cache holds `n` files: a download's file is
/// kept just after its last byte went out.
async fn wait_cached(cacher: &apt_cacher::Running, n: usize) {
    for _ in 0..500 {
        if cacher.app.store.usage().0 >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the cache holds {:?}, expected {n} files",
        cacher.app.store.usage()
    );
}

async fn start(cfg: Config) -> apt_cacher::Running {
    apt_cacher::start(cfg, CancellationToken::new())
        .await
        .unwrap()
}

/// GETs `url` reading the body as it comes: (status, bytes received,
/// whether the body ended normally).
async fn get_streamed(url: &str) -> (u16, usize, bool) {
    let mut r = client().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let mut n = 0;
    loop {
        match r.chunk().await {
            Ok(Some(c)) => n += c.len(),
            Ok(None) => return (status, n, true),
            Err(_) => return (status, n, false),
        }
    }
}

/// GETs `url` until it answers 200 (a remembered upstream failure expires
/// after `cache_period`), for at most 10 s; the body.
async fn get_200_within_10s(url: &str) -> Bytes {
    let t = std::time::Instant::now();
    loop {
        match get(url).await {
            Ok((200, body)) => return body,
            other => {
                assert!(t.elapsed() < Duration::from_secs(10), "{other:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn get_owned(url: String) -> Result<(u16, Bytes), String> {
    get(&url).await
}
