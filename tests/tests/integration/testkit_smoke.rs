//! Smoke tests of the test kit itself: signatures accepted by the real gpgv, generated
//! repositories accepted by the real apt-get (plain, by-hash, flat, https), fault switches.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testkit::{AptEnv, Compression, PackageSpec, Repo, TestKey, Times, Upstream};

fn gpgv(keyring: &Path, args: &[&Path]) -> std::process::Output {
    Command::new("gpgv")
        .arg("--keyring")
        .arg(keyring)
        .args(args)
        .output()
        .expect("running gpgv")
}

#[test]
fn gpgv_accepts_inrelease_and_release_gpg() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .generated_packages(3, 100)
        .build()
        .unwrap();
    let keyring = tmp.path().join("key.gpg");
    repo.key().write_public(&keyring).unwrap();
    let dir = repo.suite_dir("stable");

    let out = gpgv(&keyring, &[&dir.join("InRelease")]);
    assert!(
        out.status.success(),
        "InRelease: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = gpgv(&keyring, &[&dir.join("Release.gpg"), &dir.join("Release")]);
    assert!(
        out.status.success(),
        "Release.gpg: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Another key's keyring refuses them.
    let other = tmp.path().join("other.gpg");
    TestKey::shared_other().write_public(&other).unwrap();
    assert!(!gpgv(&other, &[&dir.join("InRelease")]).status.success());
}

#[test]
fn apt_updates_and_downloads_from_generated_repo() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .by_hash(true)
        .compressions(&[Compression::Xz, Compression::Gz])
        .uncompressed(false)
        .sources(true)
        .translations(true)
        .package(PackageSpec::new("hello", "2.10-3").size(5000))
        .package(PackageSpec::new("libfoo1", "1:1.2-1").size(3000))
        .package(PackageSpec::new("data-all", "0.1").arch("all"))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&up.url(), "stable", &["main"]).unwrap();
    let out = apt.update().unwrap();
    println!("{}", out.all());
    let out = out.ok_clean().unwrap();
    assert!(!out.hash_sum_mismatch());
    // apt fetched the index by hash.
    assert!(
        up.requests_matching("*/by-hash/SHA256/*") >= 1,
        "{:?}",
        up.request_log()
    );
    assert_eq!(up.requests("/dists/stable/InRelease"), 1);

    let out = apt
        .install_download_only(&["hello", "libfoo1", "data-all"])
        .unwrap();
    println!("{}", out.all());
    out.ok_clean().unwrap();
    let files = apt.downloaded_archives().unwrap();
    assert_eq!(files.len(), 3, "{files:?}");
    for p in repo.packages() {
        let local = apt.archives_dir().join(p.deb_file_name());
        let data = std::fs::read(&local).unwrap_or_else(|e| panic!("{}: {e}", local.display()));
        assert_eq!(testkit::Checksums::of(&data).sha256, p.sha256());
    }

    let out = apt.download(&["hello"]).unwrap().ok_clean().unwrap();
    drop(out);
    assert_eq!(apt.downloaded_files().unwrap().len(), 1);
}

#[test]
fn apt_reads_flat_repositories() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .suites(&["./", "sub/"])
        .package(PackageSpec::new("rootpkg", "1.0").suite("./"))
        .package(PackageSpec::new("subpkg", "2.0").suite("sub/").size(2000))
        .build()
        .unwrap();
    assert!(repo.root().join("Release").is_file());
    assert!(repo.root().join("InRelease").is_file());
    assert!(repo.root().join("sub/Packages.xz").is_file());
    let up = Upstream::serve(repo.root()).unwrap();
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&up.url(), "./", &[]).unwrap();
    apt.add_source(&up.url(), "sub/", &[]).unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["rootpkg", "subpkg"])
        .unwrap()
        .ok_clean()
        .unwrap();
    assert_eq!(apt.downloaded_archives().unwrap().len(), 2);
    // apt asks for `./InRelease` literally: paths are counted as sent.
    assert_eq!(up.requests("/./InRelease"), 1, "{:?}", up.request_log());
    assert_eq!(up.requests("/sub/InRelease"), 1);
}

#[test]
fn apt_trusts_https_upstream_with_test_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .generated_packages(2, 500)
        .build()
        .unwrap();
    let up = Upstream::serve_https(repo.root()).unwrap();
    assert!(up.url().starts_with("https://127.0.0.1:"));

    // Without the CA, apt refuses the server.
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&up.url(), "stable", &["main"]).unwrap();
    let out = apt.update().unwrap();
    assert!(!out.clean(), "{}", out.all());

    apt.https_ca(&up.ca_cert_path().unwrap()).unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["pkg0000", "pkg0001"])
        .unwrap()
        .ok_clean()
        .unwrap();
    assert_eq!(apt.downloaded_archives().unwrap().len(), 2);
}

#[test]
fn apt_refuses_a_repository_signed_by_another_key() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .key(TestKey::shared_other())
        .generated_packages(1, 100)
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&up.url(), "stable", &["main"]).unwrap();
    let out = apt.update().unwrap();
    assert!(!out.clean(), "{}", out.all());
    assert!(
        out.all().contains("NO_PUBKEY") || out.all().contains("not signed"),
        "{}",
        out.all()
    );
}

fn small_repo(dir: &Path) -> Repo {
    Repo::builder(dir)
        .package(PackageSpec::new("hello", "1.0").size(100_000))
        .build()
        .unwrap()
}

#[tokio::test]
async fn upstream_serves_ranges_heads_and_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = small_repo(tmp.path());
    let up = Upstream::serve(repo.root()).unwrap();
    let pkg = repo.package("hello").unwrap();
    let url = format!("{}/{}", up.url(), pkg.pool_path);
    let client = reqwest::Client::new();

    let full = client.get(&url).send().await.unwrap();
    assert_eq!(full.status(), 200);
    assert!(full.headers().contains_key("last-modified"));
    let full = full.bytes().await.unwrap();
    assert_eq!(testkit::Checksums::of(&full).sha256, pkg.sha256());

    let part = client
        .get(&url)
        .header("Range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap(), full.slice(10..20));

    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "100000");

    let missing = client
        .get(format!("{}/nope", up.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    assert_eq!(up.requests_total(), 4);
    assert_eq!(up.requests(&format!("/{}", pkg.pool_path)), 3);
    assert_eq!(up.requests_matching("*.deb"), 3);
    assert!(
        up.connections_total() < up.requests_total(),
        "keep-alive reuses connections"
    );
    up.reset_counts();
    assert_eq!(up.requests_total(), 0);
}

#[tokio::test]
async fn upstream_fault_switches() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = small_repo(tmp.path());
    let up = Upstream::serve(repo.root()).unwrap();
    let pkg = repo.package("hello").unwrap();
    let url = format!("{}/{}", up.url(), pkg.pool_path);
    let client = reqwest::Client::new();

    // 503 twice, then the file.
    up.fail_status("*.deb", 503, Times::N(2));
    for _ in 0..2 {
        assert_eq!(client.get(&url).send().await.unwrap().status(), 503);
    }
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    let statuses: Vec<Option<u16>> = up.request_log().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(503), Some(503), Some(200)]);

    // Truncated: headers promise 100000 bytes, the connection closes after 1000.
    up.truncate("*.deb", 1000, Times::Once);
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err(), "truncated body must fail");

    // Corrupted: same length, one byte differs.
    up.corrupt("*.deb", Times::Once);
    let bad = client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let good = client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bad.len(), good.len());
    assert_eq!(
        bad.iter().zip(good.iter()).filter(|(a, b)| a != b).count(),
        1
    );
    assert_eq!(testkit::Checksums::of(&good).sha256, pkg.sha256());

    // Stall: headers arrive, the body never does.
    up.stall("*.deb", Times::Once);
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let r = tokio::time::timeout(Duration::from_millis(300), resp.bytes()).await;
    assert!(r.is_err(), "stalled body must not complete");

    // Delay before headers and a throttled body.
    up.delay("*.deb", Duration::from_millis(200), Times::Once);
    let t = std::time::Instant::now();
    client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(200));
    up.throttle("*.deb", 500_000, Times::Once);
    let t = std::time::Instant::now();
    let body = client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), 100_000);
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );

    // Connection closed without a response.
    up.reset("*.deb", Times::Once);
    assert!(client.get(&url).send().await.is_err());
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);

    // Always-on 404 until cleared.
    up.fail_status("*/InRelease", 404, Times::Always);
    let r = format!("{}/dists/stable/InRelease", up.url());
    assert_eq!(client.get(&r).send().await.unwrap().status(), 404);
    assert_eq!(client.get(&r).send().await.unwrap().status(), 404);
    up.clear_faults();
    assert_eq!(client.get(&r).send().await.unwrap().status(), 200);
}

#[test]
fn hook_changes_the_repository_mid_update_and_apt_notices() {
    // Without by-hash, an upstream that changes between apt's InRelease and Packages
    // requests makes apt fail: the scenario the cacher must hide.
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .compressions(&[Compression::Xz])
        .package(PackageSpec::new("hello", "1.0"))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let repo = std::sync::Arc::new(std::sync::Mutex::new(repo));
    let r2 = repo.clone();
    up.on_request("*/InRelease", 1, move || {
        let mut repo = r2.lock().unwrap();
        repo.replace(PackageSpec::new("hello", "2.0"));
        repo.publish().unwrap();
    });
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&up.url(), "stable", &["main"]).unwrap();
    let out = apt.update().unwrap();
    assert!(up.hooks_done());
    assert!(out.hash_sum_mismatch(), "{}", out.all());
    assert!(!out.success());
    // The next update sees one consistent generation again.
    let out = apt.update().unwrap();
    assert!(out.clean(), "{}", out.all());
    assert_eq!(
        repo.lock().unwrap().package("hello").unwrap().version(),
        "2.0"
    );
}

#[test]
fn apt_proxy_mode_and_sources() {
    // apt sends absolute-form requests to its proxy; the upstream answers them for any host,
    // so it can stand in for a proxy here (the real tests put the cacher there).
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("www/debian"))
        .sources(true)
        .package(PackageSpec::new("hello", "1.0-1"))
        .build()
        .unwrap();
    let up = Upstream::serve(tmp.path().join("www")).unwrap();
    let mut apt = AptEnv::new().unwrap();
    let uri = "http://deb.example.invalid/debian";
    apt.add_source(uri, "stable", &["main"]).unwrap();
    apt.add_source_src(uri, "stable", &["main"]).unwrap();
    apt.proxy(&format!("{}/", up.url())).unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["hello"])
        .unwrap()
        .ok_clean()
        .unwrap();
    assert_eq!(apt.downloaded_archives().unwrap().len(), 1);
    apt.run(&["source", "--download-only", "hello"])
        .unwrap()
        .ok_clean()
        .unwrap();
    assert!(apt.download_dir().join("hello_1.0-1.dsc").is_file());
    let log = up.request_log();
    assert!(log
        .iter()
        .all(|r| r.host.as_deref() == Some("deb.example.invalid")));
    assert_eq!(up.requests("/debian/dists/stable/InRelease"), 1);
    assert_eq!(up.requests_matching("/debian/pool/main/h/hello/*"), 3);
    drop(repo);
}

#[test]
fn by_hash_keeps_apt_consistent_when_the_upstream_changes_mid_update() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .by_hash(true)
        .architectures(&["amd64", "arm64"])
        .package(PackageSpec::new("hello", "1.0"))
        .package(PackageSpec::new("hello", "1.0").arch("arm64"))
        .build()
        .unwrap();
    let old_indices = repo.index_files("stable").to_vec();
    let up = Upstream::serve(repo.root()).unwrap();
    let repo = std::sync::Arc::new(std::sync::Mutex::new(repo));
    let r2 = repo.clone();
    up.on_request("*/InRelease", 1, move || {
        let mut repo = r2.lock().unwrap();
        repo.replace(PackageSpec::new("hello", "2.0"));
        repo.publish().unwrap();
    });
    let mut apt = AptEnv::new().unwrap();
    apt.architectures(&["amd64", "arm64"]).unwrap();
    apt.add_source(&up.url(), "stable", &["main"]).unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    assert!(up.hooks_done());
    assert!(up.requests_matching("*/binary-arm64/by-hash/SHA256/*") == 1);
    // The old generation's by-hash files are still there after the rebuild.
    let repo = repo.lock().unwrap();
    for f in old_indices.iter().filter(|f| f.present) {
        let dir = Path::new(&f.path).parent().unwrap();
        let p = repo
            .suite_dir("stable")
            .join(dir)
            .join("by-hash/SHA256")
            .join(&f.checksums.sha256);
        assert!(p.is_file(), "{}", p.display());
    }
    assert_ne!(repo.index_files("stable"), &old_indices[..]);
}

#[test]
fn apt_reads_every_compression() {
    let tmp = tempfile::tempdir().unwrap();
    let all = [
        Compression::Gz,
        Compression::Xz,
        Compression::Bz2,
        Compression::Zst,
        Compression::Lzma,
    ];
    let repo = Repo::builder(tmp.path().join("repo"))
        .compressions(&all)
        .uncompressed(false)
        .sha512(true)
        .translations(true)
        .package(PackageSpec::new("hello", "1.0"))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    for c in all {
        let ext = c.extension().trim_start_matches('.');
        let mut apt = AptEnv::new().unwrap();
        apt.prefer_compression(ext).unwrap();
        apt.languages("en").unwrap();
        apt.add_source(&up.url(), "stable", &["main"]).unwrap();
        up.reset_counts();
        apt.update().unwrap().ok_clean().unwrap();
        let want = format!("/dists/stable/main/binary-amd64/Packages{}", c.extension());
        assert_eq!(up.requests(&want), 1, "{:?}", up.request_log());
        assert_eq!(up.requests_matching("*/Translation-en*"), 1);
    }
}

#[test]
fn dependencies_udebs_contents_languages_and_hostile_filenames() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .components(&["main", "main/debian-installer"])
        .translations(true)
        .languages(&["en", "de"])
        .contents(true)
        .package(PackageSpec::new("hello", "1.0").depends("libfoo1 (>= 1.0)"))
        .package(PackageSpec::new("libfoo1", "1.2"))
        .package(PackageSpec::new("hello-udeb", "1.0").component("main/debian-installer"))
        .package(PackageSpec::new("evil", "1.0").filename("../../escaped.deb"))
        .build()
        .unwrap();
    let udeb = repo.package("hello-udeb").unwrap();
    assert_eq!(
        udeb.pool_path,
        "pool/main/h/hello-udeb/hello-udeb_1.0_amd64.udeb"
    );
    assert!(repo.root().join(&udeb.pool_path).is_file());
    assert!(!tmp.path().join("escaped.deb").exists());
    let paths: Vec<&str> = repo
        .index_files("stable")
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    for want in [
        "main/Contents-amd64.gz",
        "main/i18n/Translation-de.xz",
        "main/i18n/Index",
        "main/debian-installer/binary-amd64/Packages.xz",
    ] {
        assert!(paths.contains(&want), "{want} not in {paths:?}");
    }
    let packages =
        std::fs::read_to_string(repo.suite_dir("stable").join("main/binary-amd64/Packages"))
            .unwrap();
    assert!(packages.contains("Filename: ../../escaped.deb\n"));
    assert!(packages.contains("Depends: libfoo1 (>= 1.0)\n"));

    let up = Upstream::serve(repo.root()).unwrap();
    let mut apt = AptEnv::new().unwrap();
    apt.languages("de").unwrap();
    apt.add_source(&up.url(), "stable", &["main"]).unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    assert_eq!(up.requests_matching("*/Translation-de*"), 1);
    apt.install_download_only(&["hello"])
        .unwrap()
        .ok_clean()
        .unwrap();
    assert_eq!(
        apt.downloaded_archives().unwrap().len(),
        2,
        "hello pulls libfoo1"
    );

    // Release edited by hand and signed again.
    let dir = repo.suite_dir("stable");
    let release = std::fs::read_to_string(dir.join("Release")).unwrap();
    std::fs::write(
        dir.join("Release"),
        release.replace("Label: Testkit", "Label: Edited"),
    )
    .unwrap();
    repo.resign("stable").unwrap();
    let inrelease = std::fs::read_to_string(dir.join("InRelease")).unwrap();
    assert!(inrelease.contains("Label: Edited"));
}

#[test]
fn upstream_can_come_back_on_the_same_address() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = small_repo(tmp.path());
    let up = Upstream::serve(repo.root()).unwrap();
    let addr = up.addr();
    drop(up);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "down after drop"
    );
    let up = Upstream::serve_at(repo.root(), addr).unwrap();
    assert_eq!(up.addr(), addr);
    assert!(std::net::TcpStream::connect(addr).is_ok());
}

#[test]
fn apt_refuses_an_expired_release() {
    let tmp = tempfile::tempdir().unwrap();
    let hour = Duration::from_secs(3600);
    let repo = Repo::builder(tmp.path().join("repo"))
        .date(std::time::SystemTime::now() - 2 * hour)
        .valid_until(hour)
        .package(PackageSpec::new("hello", "1.0"))
        .build()
        .unwrap();
    let release = std::fs::read_to_string(repo.suite_dir("stable").join("Release")).unwrap();
    assert!(release.contains("\nValid-Until: "), "{release}");
    let up = Upstream::serve(repo.root()).unwrap();
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&up.url(), "stable", &["main"]).unwrap();
    let out = apt.update().unwrap();
    assert!(out.all().contains("expired"), "{}", out.all());
}

#[test]
fn apt_accepts_an_armoured_signed_by_key() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = small_repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let asc = tmp.path().join("key.asc");
    repo.key().write_public(&asc).unwrap();
    assert!(std::fs::read_to_string(&asc)
        .unwrap()
        .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    let mut apt = AptEnv::new().unwrap();
    let line = format!("deb [signed-by={}] {} stable main", asc.display(), up.url());
    apt.set_sources(&[&line]).unwrap();
    apt.update().unwrap().ok_clean().unwrap();
}
