//! Several apt processes behind one address (a NAT gateway, or one host
//! updating in parallel) while the Release changes between them: each
//! keeps the generation it was served, because the cacher remembers what
//! each connection was served, not only each address. With
//! `revalidate_interval` a swap can come between any two `apt-get
//! update`s, so this is no longer rare. A repository without by-hash: the
//! plain index paths are the ones that would mix generations.

use aptindex::checksum::Checksums;
use aptindex::release::Release;
use std::time::Duration;
use testkit::cacher::start as cacher;
use testkit::{PackageSpec, Repo, Upstream};

/// One client with its own connection (reqwest keeps it alive between
/// sequential requests), from 127.0.0.1 like the other.
fn connection() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap()
}

async fn get(client: &reqwest::Client, url: &str) -> bytes::Bytes {
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.bytes().await.unwrap()
}

/// The checksums `inrelease` gives for `rel`.
fn listed(inrelease: &[u8], rel: &str) -> Checksums {
    let release = Release::parse_any(inrelease).unwrap();
    release.entries.get(rel).cloned().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connections_from_one_address_each_keep_their_generation() {
    let tmp = tempfile::tempdir().unwrap();
    let mut repo = Repo::builder(tmp.path().join("repo"))
        .by_hash(false)
        .package(PackageSpec::new("hello", "1.0").size(5_000))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let c = cacher(
        &tmp.path().join("cacher"),
        &up.url(),
        "check_interval = 600\nrevalidate_interval = 1",
    )
    .await;
    let base = format!("http://{}/debian/dists/stable", c.addr);
    let rel = "main/binary-amd64/Packages.xz";
    let (a, b) = (connection(), connection());

    // An earlier update brought generation 1 and its index into the cache.
    let earlier = connection();
    get(&earlier, &format!("{base}/InRelease")).await;
    get(&earlier, &format!("{base}/{rel}")).await;
    // A starts its update: the Release of generation 1.
    let a_release = get(&a, &format!("{base}/InRelease")).await;
    // Upstream publishes; B, behind the same address, starts its update.
    repo.replace(PackageSpec::new("hello", "2.0").size(5_000));
    repo.publish().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let b_release = get(&b, &format!("{base}/InRelease")).await;
    assert_ne!(a_release, b_release, "B did not get the new generation");

    // A goes on with its update, then B with its own: each gets the index
    // its Release lists.
    for (name, client, release) in [("A", &a, &a_release), ("B", &b, &b_release)] {
        let index = get(client, &format!("{base}/{rel}")).await;
        listed(release, rel)
            .verify(rel, &Checksums::of_bytes(&index))
            .unwrap_or_else(|e| panic!("{name} got an index of another generation: {e}"));
    }
    // Interleaved once more, A after B.
    let index = get(&a, &format!("{base}/{rel}")).await;
    listed(&a_release, rel)
        .verify(rel, &Checksums::of_bytes(&index))
        .expect("A, after B: an index of another generation");
}
