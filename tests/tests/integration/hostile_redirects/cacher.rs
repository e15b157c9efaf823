//! apt-cacher against redirecting upstreams: a redirect to another port is
//! refused (502, nothing cached, the target never asked, the refusal among
//! the recent failures); one within the upstream (or to a `redirect_hosts`
//! entry) is followed without a `Referer`, and its bytes are verified; a
//! redirect loop stops after five hops.

use apt_cacher::config::RedirectHost;
use apt_cacher::config::{parse_upstream_url, Config, LogConfig, Mapping, Timeouts};
use apt_cacher::CancellationToken;
use aptindex::checksum::{Checksums, HashKind};
use std::time::Duration;
use testkit::{Times, Upstream};

const DEB: &str = "/repo/pool/main/a/a_1_amd64.deb";

fn sha256_hex(data: &[u8]) -> String {
    Checksums::of_bytes(data).hex(HashKind::Sha256).unwrap()
}

/// An upstream serving a tiny unsigned repository whose Packages lists
/// `deb` at [`DEB`] (and `deb` itself there).
struct Bed {
    up: Upstream,
    root: tempfile::TempDir,
    deb: Vec<u8>,
}

impl Bed {
    fn new() -> Bed {
        let root = tempfile::tempdir().unwrap();
        let deb: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let packages = format!(
            "Package: a\nVersion: 1\nArchitecture: amd64\nFilename: pool/main/a/a_1_amd64.deb\nSize: {}\nSHA256: {}\n\n",
            deb.len(),
            sha256_hex(&deb)
        );
        let release = format!(
            "Origin: test\nSuite: stable\nCodename: stable\nDate: Thu, 01 Jan 2026 00:00:00 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages\n",
            sha256_hex(packages.as_bytes()),
            packages.len(),
        );
        let up = Upstream::serve(root.path()).unwrap();
        up.put("/repo/dists/stable/Release", release).unwrap();
        up.put("/repo/dists/stable/main/binary-amd64/Packages", packages)
            .unwrap();
        up.put(DEB, &deb).unwrap();
        Bed { up, root, deb }
    }

    /// A cacher config with mapping `m` on this upstream; no negative cache.
    fn config(&self, redirect_hosts: Vec<RedirectHost>) -> Config {
        Config {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            check_interval: Duration::from_secs(600),
            cache_period: Duration::ZERO,
            meta_dir: self.root.path().join("meta"),
            cache_dir: self.root.path().join("cache"),
            cache_capacity: 1 << 30,
            max_conns: 10,
            max_clients: apt_cacher::config::DEFAULT_MAX_CLIENTS,
            max_clients_per_host: apt_cacher::config::DEFAULT_MAX_CLIENTS_PER_HOST,
            max_index_entries: aptindex::index::bounded::DEFAULT_MAX_ENTRIES,
            unverified: Default::default(),
            revalidate_interval: std::time::Duration::from_secs(1),
            retention: apt_cacher::config::MAX_DURATION,
            log: LogConfig::default(),
            mappings: vec![Mapping {
                prefix: "m".into(),
                url: parse_upstream_url(&format!("{}/repo", self.up.url())).unwrap(),
                aliases: vec![],
                redirect_hosts,
                fallbacks: Vec::new(),
                keyrings: Vec::new(),
                local: None,
            }],
            connect_allow: vec![],
            generation_grace: Duration::from_secs(600),
            timeouts: Timeouts::default(),
            status_allow: None,
        }
    }

    /// Starts the cacher and lets it learn the index (so [`DEB`] is verified).
    async fn start(&self, redirect_hosts: Vec<RedirectHost>) -> (apt_cacher::Running, String) {
        let cacher = apt_cacher::start(self.config(redirect_hosts), CancellationToken::new())
            .await
            .unwrap();
        let base = format!("http://{}/m", cacher.addr);
        for p in [
            "dists/stable/Release",
            "dists/stable/main/binary-amd64/Packages",
        ] {
            assert_eq!(get(&format!("{base}/{p}")).await.0, 200, "{p}");
        }
        (cacher, base)
    }
}

/// GETs `url`: (status, body received, whether the body ended normally).
async fn get(url: &str) -> (u16, Vec<u8>, bool) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut r = client.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let mut body = Vec::new();
    loop {
        match r.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c),
            Ok(None) => return (status, body, true),
            Err(_) => return (status, body, false),
        }
    }
}

fn recent_failures(cacher: &apt_cacher::Running) -> String {
    cacher
        .app
        .metrics
        .recent_failures()
        .iter()
        .map(|f| format!("{} {}\n", f.url, f.what))
        .collect()
}

#[tokio::test]
async fn cacher_refuses_a_redirect_to_another_port() {
    let bed = Bed::new();
    let other = Upstream::serve(bed.root.path()).unwrap();
    let (cacher, base) = bed.start(vec![]).await;
    let files_before = cacher.app.store.usage().0;
    let location = format!("{}{DEB}", other.url());
    bed.up.redirect(DEB, &location, Times::Always);

    let (status, _, _) = get(&format!("{base}/pool/main/a/a_1_amd64.deb")).await;
    assert_eq!(status, 502);
    assert_eq!(other.requests_total(), 0, "{:?}", other.request_log());
    let failures = recent_failures(&cacher);
    assert!(
        failures.contains("redirect refused") && failures.contains(&location),
        "{failures}"
    );
    assert_eq!(cacher.app.store.usage().0, files_before, "nothing cached");

    // Once upstream stops redirecting, its own bytes come (nothing was kept).
    bed.up.clear_faults();
    let (status, body, complete) = get(&format!("{base}/pool/main/a/a_1_amd64.deb")).await;
    assert_eq!((status, complete), (200, true));
    assert!(body == bed.deb);
    assert_eq!(bed.up.requests(DEB), 2);
    assert_eq!(other.requests_total(), 0);
    cacher.stop().await;
}

#[tokio::test]
async fn cacher_follows_a_redirect_within_the_upstream_and_verifies_it() {
    let bed = Bed::new();
    let (cacher, base) = bed.start(vec![]).await;
    let url = format!("{base}/pool/main/a/a_1_amd64.deb");

    // Corrupt bytes behind the redirect: verification refuses them.
    let mut bad = bed.deb.clone();
    bad[100] ^= 1;
    bed.up.put("/repo/bad/a.deb", &bad).unwrap();
    bed.up.redirect(
        DEB,
        &format!("{}/repo/bad/a.deb", bed.up.url()),
        Times::Once,
    );
    let failures_before = cacher.app.metrics.counters().verification_failures;
    let (status, body, complete) = get(&url).await;
    assert!(
        !(status == 200 && complete),
        "corrupt redirected bytes served as complete ({status}, {} bytes)",
        body.len()
    );
    assert_eq!(bed.up.requests("/repo/bad/a.deb"), 1);
    assert!(cacher.app.metrics.counters().verification_failures > failures_before);

    // The right bytes behind a redirect to another path: followed, served, cached.
    bed.up.put("/repo/moved/a.deb", &bed.deb).unwrap();
    bed.up.redirect(DEB, "/repo/moved/a.deb", Times::Once);
    let (status, body, complete) = get(&url).await;
    assert_eq!((status, complete), (200, true));
    assert!(body == bed.deb);
    let log = bed.up.request_log();
    let hop = log.iter().find(|r| r.path == "/repo/moved/a.deb").unwrap();
    assert_eq!(hop.referer, None, "a Referer reached the redirect target");
    // A hit now: upstream is not asked again.
    let (status, body, _) = get(&url).await;
    assert_eq!(status, 200);
    assert!(body == bed.deb);
    assert_eq!(bed.up.requests(DEB), 2);
    assert_eq!(bed.up.requests("/repo/moved/a.deb"), 1);
    cacher.stop().await;
}

#[tokio::test]
async fn cacher_follows_redirect_hosts_without_referer() {
    let bed = Bed::new();
    let other = Upstream::serve(bed.root.path()).unwrap();
    let allowed = RedirectHost::parse(&format!("127.0.0.1:{}", other.port())).unwrap();
    let (cacher, base) = bed.start(vec![allowed]).await;
    bed.up.redirect(
        DEB,
        &format!("{}/repo/cdn/a.deb", other.url()),
        Times::Always,
    );
    other.put("/repo/cdn/a.deb", &bed.deb).unwrap();
    let (status, body, complete) = get(&format!("{base}/pool/main/a/a_1_amd64.deb")).await;
    assert_eq!((status, complete), (200, true));
    assert!(body == bed.deb);
    let log = other.request_log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        log[0].referer, None,
        "a Referer reached the redirect target"
    );
    cacher.stop().await;
}

#[tokio::test]
async fn cacher_stops_a_redirect_loop_after_five_hops() {
    let bed = Bed::new();
    let (cacher, base) = bed.start(vec![]).await;
    bed.up.redirect(DEB, DEB, Times::Always);
    let (status, _, _) = get(&format!("{base}/pool/main/a/a_1_amd64.deb")).await;
    assert_eq!(status, 502);
    assert_eq!(bed.up.requests(DEB), 6, "the request and five hops");
    let failures = recent_failures(&cacher);
    assert!(failures.contains("more than 5 redirects"), "{failures}");
    cacher.stop().await;
}
