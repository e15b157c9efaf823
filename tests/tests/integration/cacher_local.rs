//! Issue 12, "Serve from a local mirror": a mapping's `local` names an
//! apt-mirror snapshot of its archive. The real apt-get, through the
//! cacher, gets a `.deb` the snapshot holds (same size and digest as the
//! current index says) from there with no upstream request for it, byte
//! for byte; a file corrupted in the snapshot (same size) and a file
//! absent from it come from upstream, verified, as before.

use std::path::{Path, PathBuf};
use testkit::{AptEnv, PackageSpec, Repo, Upstream};

/// apt-mirror's snapshot of `up` (mirror id `deb`) under `dir`; its path.
async fn snapshot(dir: &Path, repo: &Repo, up: &Upstream) -> PathBuf {
    repo.key().write_public(&dir.join("key.gpg")).unwrap();
    let config = dir.join("mirror.toml");
    std::fs::write(
        &config,
        format!(
            "dir = \"{}\"\n[mirror.deb]\nurl = \"{}\"\nsuites = [\"stable\"]\nsections = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"key.gpg\"\n",
            dir.join("mirror").display(),
            up.url()
        ),
    )
    .unwrap();
    let status = tokio::task::spawn_blocking(move || testkit::mirror::run(&config, &[]))
        .await
        .unwrap();
    assert_eq!(status, 0, "apt-mirror run");
    dir.join("mirror/deb")
}

/// Starts a cacher whose mapping `debian` → `upstream` has `local`.
async fn cacher_with_local(dir: &Path, upstream: &str, local: &Path) -> apt_cacher::Running {
    let text = format!(
        "listen_address = \"127.0.0.1:0\"\nmeta_dir = \"{}\"\ncache_dir = \"{}\"\n[mapping]\ndebian = {{ url = \"{upstream}\", local = \"{}\" }}\n",
        dir.join("meta").display(),
        dir.join("cache").display(),
        local.display()
    );
    let config = apt_cacher::Config::parse("test.toml", &text).expect("test cacher config");
    apt_cacher::start(config, apt_cacher::CancellationToken::new())
        .await
        .expect("starting the test cacher")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_files_come_from_the_local_mirror_when_they_match() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .package(PackageSpec::new("hello", "2.10-3").size(50_000))
        .package(PackageSpec::new("libfoo1", "1.2-1").size(3000))
        .package(PackageSpec::new("data-all", "0.1").arch("all"))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let local = snapshot(tmp.path(), &repo, &up).await;
    let pool_file = |name: &str| local.join(&repo.package(name).unwrap().pool_path);
    // libfoo1: corrupted in place (same size); data-all: absent.
    let corrupt = pool_file("libfoo1");
    let mut bytes = std::fs::read(&corrupt).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::remove_file(&corrupt).unwrap();
    std::fs::write(&corrupt, &bytes).unwrap();
    std::fs::remove_file(pool_file("data-all")).unwrap();
    up.reset_counts();

    let c = cacher_with_local(&tmp.path().join("cacher"), &up.url(), &local).await;
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{}/debian", c.addr), "stable", &["main"])
        .unwrap();
    apt.update_async().await.unwrap().ok_clean().unwrap();
    apt.install_download_only_async(&["hello", "libfoo1", "data-all"])
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    for name in ["hello", "libfoo1", "data-all"] {
        let p = repo.package(name).unwrap();
        let got = std::fs::read(apt.archives_dir().join(p.deb_file_name())).unwrap();
        assert_eq!(testkit::Checksums::of(&got).sha256, p.sha256(), "{name}");
    }
    let asked = |name: &str| up.requests(&format!("/{}", repo.package(name).unwrap().pool_path));
    assert_eq!(asked("hello"), 0, "{:?}", up.request_log());
    assert_eq!(asked("libfoo1"), 1, "corrupted locally: from upstream");
    assert_eq!(asked("data-all"), 1, "absent locally: from upstream");
    // Byte-identical to the local file, and not copied into the cache.
    let hello = repo.package("hello").unwrap();
    let got = std::fs::read(apt.archives_dir().join(hello.deb_file_name())).unwrap();
    assert_eq!(got, std::fs::read(pool_file("hello")).unwrap());
    let counters = c.app.metrics.counters();
    assert_eq!(
        counters.requests_of(apt_cacher::metrics::Outcome::Mirror),
        1
    );
    assert_eq!(counters.local_mismatches, 1);
    assert_eq!(counters.verification_failures, 0);
    let cached_dir = tmp
        .path()
        .join("cacher/cache/debian")
        .join(&hello.pool_path)
        .parent()
        .unwrap()
        .to_path_buf();
    let copies = std::fs::read_dir(&cached_dir).map_or(0, |rd| rd.count());
    assert_eq!(copies, 0, "the local file is not copied into the cache");

    // A second client: hello from the mirror again (remembered, not
    // re-hashed), the two others from the cache; still no upstream request.
    let mut apt2 = AptEnv::new().unwrap();
    apt2.add_source(&format!("http://{}/debian", c.addr), "stable", &["main"])
        .unwrap();
    apt2.update_async().await.unwrap().ok_clean().unwrap();
    apt2.install_download_only_async(&["hello", "libfoo1", "data-all"])
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    assert_eq!(asked("hello") + asked("libfoo1") + asked("data-all"), 2);
    let counters = c.app.metrics.counters();
    assert_eq!(
        counters.requests_of(apt_cacher::metrics::Outcome::Mirror),
        2
    );
    assert_eq!(counters.local_mismatches, 1, "a mismatch is counted once");
    assert_eq!(c.app.local.remembered(), 2);

    // Through the normal file response: a range, and HEAD.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://{}/debian/{}", c.addr, hello.pool_path);
    let r = client
        .get(&url)
        .header("Range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &got[100..200]);
    let r = client.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"].to_str().unwrap(),
        got.len().to_string()
    );
    let counters = c.app.metrics.counters();
    assert_eq!(
        counters.requests_of(apt_cacher::metrics::Outcome::Mirror),
        4
    );
    assert_eq!(asked("hello"), 0);

    // The status page names the local tree.
    let status = apt_cacher::pages::snapshot(&c.app);
    assert_eq!(
        status.mappings[0].local.as_deref(),
        Some(local.display().to_string().as_str())
    );
    c.stop().await;
}
