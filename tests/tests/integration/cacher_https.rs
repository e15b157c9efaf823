//! apt-cacher in front of an https upstream signed by a test CA (trusted
//! through `SSL_CERT_FILE`): prefix mode, and proxy mode with
//! apt-cacher-ng's `http://HTTPS///host/path` form. It runs alone in a
//! child process of the test binary ([`crate::common::run_alone`]), because
//! it sets `SSL_CERT_FILE` for the whole process.

use apt_cacher::{CancellationToken, Config};
use testkit::{AptEnv, PackageSpec, Repo, Upstream};

/// This test's path in the test binary, for [`crate::common::run_alone`].
const ALONE: &str = "cacher_https::apt_through_cacher_to_https_upstream_with_test_ca";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_through_cacher_to_https_upstream_with_test_ca() {
    if !crate::common::is_alone(ALONE) {
        return crate::common::run_alone(ALONE);
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .package(PackageSpec::new("hello", "1.0").size(10_000))
        .build()
        .unwrap();
    let up = Upstream::serve_https(repo.root()).unwrap();
    std::env::set_var("SSL_CERT_FILE", up.ca_cert_path().unwrap());
    let dir = tmp.path().join("cacher");
    let text = format!(
        "listen_address = \"127.0.0.1:0\"\nmeta_dir = \"{}\"\ncache_dir = \"{}\"\n[mapping]\nsecure = \"{}\"\n",
        dir.join("meta").display(),
        dir.join("cache").display(),
        up.url()
    );
    let c = apt_cacher::start(
        Config::parse("t.toml", &text).unwrap(),
        CancellationToken::new(),
    )
    .await
    .unwrap();

    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{}/secure", c.addr), "stable", &["main"])
        .unwrap();
    apt.update_async().await.unwrap().ok_clean().unwrap();
    apt.install_download_only_async(&["hello"])
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    assert_eq!(apt.downloaded_archives().unwrap().len(), 1);
    assert_eq!(up.requests_matching("*.deb"), 1);

    // Proxy mode, apt-cacher-ng form: same cache.
    let host = up.url().trim_start_matches("https://").to_string();
    let mut apt2 = AptEnv::new().unwrap();
    apt2.add_source(&format!("http://HTTPS///{host}"), "stable", &["main"])
        .unwrap();
    apt2.proxy(&format!("http://{}/", c.addr)).unwrap();
    apt2.update_async().await.unwrap().ok_clean().unwrap();
    apt2.install_download_only_async(&["hello"])
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    assert_eq!(apt2.downloaded_archives().unwrap().len(), 1);
    assert_eq!(up.requests_matching("*.deb"), 1, "{:?}", up.request_log());
    c.stop().await;
}
