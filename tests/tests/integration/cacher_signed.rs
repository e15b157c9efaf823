//! Issue #12, "Signed generations": with a mapping's `keyring`, apt-cacher
//! swaps in a generation only if its `InRelease`, or `Release` +
//! `Release.gpg`, verifies the way apt reads them. A forged InRelease
//! (signed by another key) and an expired signature are refused: the last
//! good generation stays and real `apt-get` clients keep updating from it;
//! the refusal is logged, counted and on the status page. The real Debian
//! InRelease with Debian's keyring is accepted and served byte for byte; a
//! stale `Release.gpg` next to a good `InRelease` is accepted through
//! `InRelease` (and left out: 404, as apt-mirror leaves it out). Without a
//! keyring the status page says the suite is unsigned.

use std::path::{Path, PathBuf};
use testkit::{AptEnv, PackageSpec, Repo, TestKey, Upstream};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// GET `url`: status and body.
async fn get(url: &str) -> (u16, bytes::Bytes) {
    let r = client().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.bytes().await.unwrap_or_default())
}

/// A cacher with one mapping `debian` → `upstream`, checking signatures
/// with `keyring` when given; `extra` lines before the mapping table.
async fn cacher(
    dir: &Path,
    upstream: &str,
    keyring: Option<&Path>,
    extra: &str,
) -> apt_cacher::Running {
    let keyring = keyring.map_or(String::new(), |k| {
        format!(", keyring = \"{}\"", k.display())
    });
    let mapping = format!("{{ url = \"{upstream}\"{keyring} }}");
    testkit::cacher::start_with_mapping(dir, &mapping, extra).await
}

async fn status(c: &apt_cacher::Running) -> serde_json::Value {
    let (code, body) = get(&format!("http://{}/~/status.json", c.addr)).await;
    assert_eq!(code, 200);
    serde_json::from_slice(&body).unwrap()
}

async fn status_html(c: &apt_cacher::Running) -> String {
    let (code, body) = get(&format!("http://{}/~/status", c.addr)).await;
    assert_eq!(code, 200);
    String::from_utf8(body.to_vec()).unwrap()
}

/// The signature part of the status of suite `dir`.
async fn signature(c: &apt_cacher::Running, dir: &str) -> serde_json::Value {
    let s = status(c).await;
    s["generations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["suite"] == dir)
        .unwrap_or_else(|| panic!("no generation of {dir}: {s}"))["signature"]
        .clone()
}

/// `apt_cacher_release_signature_failures_total` on `/~/metrics`.
async fn refusals(c: &apt_cacher::Running) -> u64 {
    let (_, body) = get(&format!("http://{}/~/metrics", c.addr)).await;
    let text = String::from_utf8(body.to_vec()).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("apt_cacher_release_signature_failures_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no signature failure counter in\n{text}"))
}

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

/// A generated repository, its upstream and the key file of its key.
fn repo(tmp: &Path) -> (Repo, Upstream, PathBuf) {
    let repo = Repo::builder(tmp.join("repo"))
        .package(PackageSpec::new("hello", "1.0").size(20_000))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let key = tmp.join("key.gpg");
    repo.key().write_public(&key).unwrap();
    (repo, up, key)
}

fn check_deb(apt: &AptEnv, repo: &Repo, name: &str) {
    let p = repo.package(name).unwrap();
    let local = apt.archives_dir().join(p.deb_file_name());
    let data = std::fs::read(&local).unwrap_or_else(|e| panic!("{}: {e}", local.display()));
    assert_eq!(testkit::Checksums::of(&data).sha256, p.sha256(), "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_inrelease_is_refused_and_apt_keeps_updating_from_the_last_good_generation() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut repo, up, key) = repo(tmp.path());
    // Every Release request re-reads upstream.
    let c = cacher(
        &tmp.path().join("cacher"),
        &up.url(),
        Some(&key),
        "check_interval = 0\ncache_period = 0",
    )
    .await;
    let base = format!("http://{}/debian", c.addr);
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&base, "stable", &["main"]).unwrap();
    apt.update_async().await.unwrap().ok_clean().unwrap();
    let (_, good) = get(&format!("{base}/dists/stable/InRelease")).await;
    let sig = signature(&c, "dists/stable").await;
    assert_eq!(sig["state"], "signed", "{sig}");
    assert_eq!(sig["signed_by"]["fingerprint"], repo.key().fingerprint());
    assert_eq!(sig["signed_by"]["file"], "InRelease");
    assert!(sig["last_refusal"].is_null(), "{sig}");
    assert_eq!(refusals(&c).await, 0);

    // Someone on the path serves a new Release signed by another key.
    repo.add(PackageSpec::new("evil", "6.6.6").size(3000))
        .unwrap();
    repo.set_key(TestKey::shared_other());
    repo.publish().unwrap();
    let forged_url = format!("{}/dists/stable/InRelease", up.url());

    // apt keeps updating, from the last good generation, and installs.
    apt.update_async().await.unwrap().ok().unwrap();
    let (code, served) = get(&format!("{base}/dists/stable/InRelease")).await;
    assert_eq!(code, 200);
    assert_eq!(served, good, "the forged InRelease was served");
    let mut fresh = AptEnv::new().unwrap();
    fresh.add_source(&base, "stable", &["main"]).unwrap();
    fresh.update_async().await.unwrap().ok().unwrap();
    fresh
        .install_download_only_async(&["hello"])
        .await
        .unwrap()
        .ok()
        .unwrap();
    check_deb(&fresh, &repo, "hello");
    let out = fresh.install_download_only_async(&["evil"]).await.unwrap();
    assert!(
        !out.success(),
        "the forged generation's package: {}",
        out.all()
    );

    // Refused: counted, on the status page (signer still the good key,
    // the refusal naming the URL and the reason), among the failures.
    assert!(refusals(&c).await >= 1);
    let sig = signature(&c, "dists/stable").await;
    assert_eq!(sig["state"], "signed", "{sig}");
    assert_eq!(sig["signed_by"]["fingerprint"], repo_key_fpr());
    let refusal = &sig["last_refusal"];
    assert_eq!(refusal["url"], forged_url.as_str(), "{sig}");
    let reason = refusal["reason"].as_str().unwrap();
    assert!(
        reason.contains("no signature by a key in the keyring")
            && reason.contains(&TestKey::shared_other().fingerprint()[24..]),
        "{reason}"
    );
    let s = status(&c).await;
    assert!(
        s["recent_failures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["url"] == forged_url.as_str()
                && f["what"]
                    .as_str()
                    .unwrap()
                    .contains("Release signature refused")),
        "{s}"
    );
    let html = status_html(&c).await;
    assert!(html.contains("last refused"), "{html}");
    assert!(html.contains("Release signatures refused:"), "{html}");

    // The archive signs with its key again: the next update sees it.
    repo.set_key(TestKey::shared());
    repo.publish().unwrap();
    apt.update_async().await.unwrap().ok_clean().unwrap();
    apt.install_download_only_async(&["evil"])
        .await
        .unwrap()
        .ok()
        .unwrap();
    check_deb(&apt, &repo, "evil");
    c.stop().await;
}

fn repo_key_fpr() -> String {
    TestKey::shared().fingerprint()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_signature_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut repo, up, key) = repo(tmp.path());
    let c = cacher(
        &tmp.path().join("cacher"),
        &up.url(),
        Some(&key),
        "check_interval = 0\ncache_period = 0",
    )
    .await;
    let url = format!("http://{}/debian/dists/stable/InRelease", c.addr);
    let dir = repo.suite_dir("stable");
    let expire = |repo: &Repo| {
        let release = std::fs::read(dir.join("Release")).unwrap();
        let signed = repo.key().clearsign_expired(&release).unwrap();
        std::fs::write(dir.join("InRelease"), signed).unwrap();
    };

    // A first generation with an expired signature: none is made.
    expire(&repo);
    let (code, body) = get(&url).await;
    assert_eq!(code, 502, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("signature expired"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert!(status(&c).await["generations"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(refusals(&c).await, 1);

    // Signed properly: accepted.
    repo.resign("stable").unwrap();
    let (code, good) = get(&url).await;
    assert_eq!(code, 200);
    assert_eq!(good, std::fs::read(dir.join("InRelease")).unwrap());

    // A new Release whose signature has expired: the good one stays.
    repo.add(PackageSpec::new("late", "1.0")).unwrap();
    repo.publish().unwrap();
    expire(&repo);
    let (code, served) = get(&url).await;
    assert_eq!(code, 200);
    assert_eq!(served, good);
    assert_eq!(refusals(&c).await, 2);
    let sig = signature(&c, "dists/stable").await;
    assert_eq!(sig["state"], "signed", "{sig}");
    let reason = sig["last_refusal"]["reason"].as_str().unwrap();
    assert!(reason.contains("signature expired"), "{reason}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_debian_inrelease_is_accepted_with_its_keyring() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("up/dists/bookworm-updates");
    std::fs::create_dir_all(&suite).unwrap();
    let real = std::fs::read(testdata("debian/bookworm-updates_InRelease")).unwrap();
    std::fs::write(suite.join("InRelease"), &real).unwrap();
    let up = Upstream::serve(tmp.path().join("up")).unwrap();
    let keyring = testdata("debian/debian-archive-keyring.gpg");
    let c = cacher(&tmp.path().join("cacher"), &up.url(), Some(&keyring), "").await;
    let (code, body) = get(&format!(
        "http://{}/debian/dists/bookworm-updates/InRelease",
        c.addr
    ))
    .await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, real, "not served byte for byte");
    let sig = signature(&c, "dists/bookworm-updates").await;
    assert_eq!(sig["state"], "signed", "{sig}");
    assert_eq!(
        sig["signed_by"]["primary_fingerprint"], "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8",
        "{sig}"
    );
    assert_eq!(
        sig["signed_by"]["fingerprint"],
        "4CB50190207B4758A3F73A796ED0E7B82643E131"
    );
    assert_eq!(refusals(&c).await, 0);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_release_gpg_is_accepted_through_inrelease() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("up/dists/bookworm-updates");
    std::fs::create_dir_all(&suite).unwrap();
    for name in ["InRelease", "Release", "Release.gpg"] {
        std::fs::copy(
            testdata(&format!("debian-stale-release-gpg/{name}")),
            suite.join(name),
        )
        .unwrap();
    }
    let up = Upstream::serve(tmp.path().join("up")).unwrap();
    let keyring = testdata("debian/debian-archive-keyring.gpg");
    let c = cacher(&tmp.path().join("cacher"), &up.url(), Some(&keyring), "").await;
    let base = format!("http://{}/debian/dists/bookworm-updates", c.addr);
    for name in ["InRelease", "Release"] {
        let (code, body) = get(&format!("{base}/{name}")).await;
        assert_eq!(code, 200, "{name}: {}", String::from_utf8_lossy(&body));
        assert_eq!(body, std::fs::read(suite.join(name)).unwrap(), "{name}");
    }
    // The stale signature is left out of the generation, as apt-mirror
    // leaves it out of a snapshot: not found, never a BAD signature.
    let (code, body) = get(&format!("{base}/Release.gpg")).await;
    assert_eq!(code, 404, "{}", String::from_utf8_lossy(&body));
    let sig = signature(&c, "dists/bookworm-updates").await;
    assert_eq!(sig["state"], "signed", "{sig}");
    assert_eq!(sig["signed_by"]["file"], "InRelease");
    assert!(sig["last_refusal"].is_null(), "{sig}");
    let withheld = sig["withheld"].as_array().unwrap();
    assert!(
        withheld.iter().any(|w| {
            let w = w.as_str().unwrap();
            w.contains("/dists/bookworm-updates/Release.gpg") && w.contains("BAD signature")
        }),
        "{sig}"
    );
    // No generation was refused: the suite is usable.
    assert_eq!(refusals(&c).await, 0);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_keyring_the_status_page_says_unsigned() {
    let tmp = tempfile::tempdir().unwrap();
    let (_repo, up, _key) = repo(tmp.path());
    let c = cacher(&tmp.path().join("cacher"), &up.url(), None, "").await;
    let (code, _) = get(&format!("http://{}/debian/dists/stable/InRelease", c.addr)).await;
    assert_eq!(code, 200);
    let sig = signature(&c, "dists/stable").await;
    assert_eq!(sig["state"], "unsigned", "{sig}");
    assert!(sig["signed_by"].is_null(), "{sig}");
    let html = status_html(&c).await;
    assert!(html.contains("unsigned (no keyring)"), "{html}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_keyring_is_a_start_error_naming_mapping_key_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-keyring.gpg");
    let text = format!(
        "listen_address = \"127.0.0.1:0\"\nmeta_dir = \"{}\"\ncache_dir = \"{}\"\n\
         [mapping]\ndebian = {{ url = \"http://127.0.0.1:9/debian\", keyring = \"{}\" }}\n",
        tmp.path().join("meta").display(),
        tmp.path().join("cache").display(),
        missing.display()
    );
    let config = apt_cacher::Config::parse("test.toml", &text).unwrap();
    let e = apt_cacher::start(config, apt_cacher::CancellationToken::new())
        .await
        .unwrap_err();
    let text = format!("{e:#}");
    assert!(
        text.contains(&format!(
            "mapping.debian.keyring: {}: cannot read",
            missing.display()
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_generation_that_does_not_verify_is_not_served_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut repo, up, key) = repo(tmp.path());
    repo.set_key(TestKey::shared_other());
    repo.publish().unwrap();
    let dir = tmp.path().join("cacher");
    // Without a keyring the impostor's Release is served (and kept).
    let c = cacher(&dir, &up.url(), None, "").await;
    let url = |c: &apt_cacher::Running| format!("http://{}/debian/dists/stable/InRelease", c.addr);
    let (code, _) = get(&url(&c)).await;
    assert_eq!(code, 200);
    c.stop().await;

    // With the archive's keyring, the kept generation is checked again
    // when it is loaded: refused, not served; upstream's is refused too.
    let c = cacher(&dir, &up.url(), Some(&key), "").await;
    let (code, body) = get(&url(&c)).await;
    assert_eq!(code, 502, "{}", String::from_utf8_lossy(&body));
    assert!(refusals(&c).await >= 2, "kept and upstream");
    let s = status(&c).await;
    assert!(s["generations"].as_array().unwrap().is_empty(), "{s}");
    assert!(
        s["recent_failures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["what"]
                .as_str()
                .unwrap()
                .contains("Release signature refused")),
        "{s}"
    );

    // The archive signs with its own key again: served.
    repo.set_key(TestKey::shared());
    repo.publish().unwrap();
    let (code, body) = get(&url(&c)).await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        std::fs::read(repo.suite_dir("stable").join("InRelease")).unwrap()
    );
    c.stop().await;
}
