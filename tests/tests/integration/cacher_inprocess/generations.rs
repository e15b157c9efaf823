//! Metadata generations: swapped only when consistent, kept across a
//! restart with upstream gone, a rebuilt pool file under the same name
//! fetched again, crash leftovers cleaned at start, dead generations
//! removed after the grace period, a near `Valid-Until` re-checked.

use super::*;

#[tokio::test]
async fn generations_swap_only_when_consistent() {
    let up = Up::new();
    let deb1 = vec![1u8; 1000];
    for (p, d) in repo(&deb1, 1) {
        up.put(&p, d);
    }
    let addr = up.addr();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), addr);
    cfg.check_interval = Duration::from_secs(0);
    cfg.cache_period = Duration::from_secs(0);
    let cacher = start(cfg.clone()).await;
    let base = format!("http://{}/m/dists/stable", cacher.addr);
    let (_, r1) = get(&format!("{base}/Release")).await.unwrap();
    let (_, p1) = get(&format!("{base}/main/binary-amd64/Packages"))
        .await
        .unwrap();
    assert!(r1.windows(7).any(|w| w == b"stable1"));

    // Upstream moves to version 2, but its Packages is caught mid-sync (still old):
    // the refresh fails, the old generation keeps being served.
    let deb2 = vec![2u8; 1000];
    let v2 = repo(&deb2, 2);
    up.put(&v2[0].0, v2[0].1.clone());
    let (_, r) = get(&format!("{base}/Release")).await.unwrap();
    assert_eq!(r, r1, "inconsistent upstream must not be swapped in");
    let (_, p) = get(&format!("{base}/main/binary-amd64/Packages"))
        .await
        .unwrap();
    assert_eq!(p, p1);

    // Upstream completes its sync: the new generation is swapped in whole.
    for (p, d) in &v2 {
        up.put(p, d.clone());
    }
    tokio::time::sleep(Duration::from_millis(1100)).await; // retry delay
    let (_, r2) = get(&format!("{base}/Release")).await.unwrap();
    assert!(r2.windows(7).any(|w| w == b"stable2"));
    let (_, p2) = get(&format!("{base}/main/binary-amd64/Packages"))
        .await
        .unwrap();
    assert_eq!(p2, v2[1].1);
    // The pool file is verified against the new index.
    let (s, d) = get(&format!(
        "http://{}/m/pool/main/a/a_1_amd64.deb",
        cacher.addr
    ))
    .await
    .unwrap();
    assert_eq!((s, d.as_ref()), (200, deb2.as_slice()));
    cacher.stop().await;

    // Restart: the generation and the cache survive; upstream gone still serves.
    let mut cfg2 = cfg;
    cfg2.check_interval = Duration::from_secs(600);
    cfg2.mappings[0].url = parse_upstream_url("http://127.0.0.1:9/repo").unwrap();
    let cacher = start(cfg2).await;
    let base = format!("http://{}/m/dists/stable", cacher.addr);
    let (s, r) = get(&format!("{base}/Release")).await.unwrap();
    assert_eq!((s, r), (200, r2));
    let (s, p) = get(&format!("{base}/main/binary-amd64/Packages"))
        .await
        .unwrap();
    assert_eq!((s, p), (200, v2[1].1.clone()));
    let (s, d) = get(&format!(
        "http://{}/m/pool/main/a/a_1_amd64.deb",
        cacher.addr
    ))
    .await
    .unwrap();
    assert_eq!((s, d.as_ref()), (200, deb2.as_slice()));
    cacher.stop().await;
}

#[tokio::test]
async fn rebuilt_pool_file_under_the_same_name_is_fetched_again() {
    let up = Up::new();
    let deb1 = vec![1u8; 5000];
    for (p, d) in repo(&deb1, 1) {
        up.put(&p, d);
    }
    let addr = up.addr();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), addr);
    cfg.check_interval = Duration::from_secs(0);
    let cacher = start(cfg).await;
    let base = format!("http://{}/m", cacher.addr);
    let deb_url = format!("{base}/pool/main/a/a_1_amd64.deb");
    get(&format!("{base}/dists/stable/Release")).await.unwrap();
    get(&format!(
        "{base}/dists/stable/main/binary-amd64/Packages.gz"
    ))
    .await
    .unwrap();
    assert_eq!(get(&deb_url).await.unwrap().1, deb1);
    assert_eq!(get(&deb_url).await.unwrap().1, deb1);
    assert_eq!(up.count("/repo/pool/main/a/a_1_amd64.deb"), 1);
    // Same file name, new bytes, new indices.
    let deb2 = vec![2u8; 5000];
    for (p, d) in repo(&deb2, 1) {
        up.put(&p, d);
    }
    get(&format!("{base}/dists/stable/Release")).await.unwrap();
    assert_eq!(get(&deb_url).await.unwrap().1, deb2);
    assert_eq!(up.count("/repo/pool/main/a/a_1_amd64.deb"), 2);
    cacher.stop().await;
}

#[tokio::test]
async fn crash_leftovers_are_cleaned_and_state_stays_consistent() {
    let up = Up::new();
    let deb = vec![9u8; 2000];
    for (p, d) in repo(&deb, 1) {
        up.put(&p, d);
    }
    let addr = up.addr();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), addr);
    let cacher = start(cfg.clone()).await;
    let base = format!("http://{}/m", cacher.addr);
    let (_, rel) = get(&format!("{base}/dists/stable/Release")).await.unwrap();
    get(&format!("{base}/dists/stable/main/binary-amd64/Packages"))
        .await
        .unwrap();
    get(&format!("{base}/pool/main/a/a_1_amd64.deb"))
        .await
        .unwrap();
    cacher.stop().await;
    // What a kill -9 in the middle of things can leave behind.
    let suite = dir.path().join("meta/m/dists%2Fstable");
    std::fs::create_dir_all(suite.join("gen-99/main")).unwrap();
    std::fs::write(suite.join("gen-99/Release"), b"half-written").unwrap();
    std::os::unix::fs::symlink("gen-99", suite.join("current.tmp")).unwrap();
    std::fs::write(dir.path().join("cache/.tmp/dl-partial"), b"partial").unwrap();
    std::fs::write(dir.path().join("meta/.tmp/idx-partial"), b"partial").unwrap();

    let cacher = start(cfg).await;
    let base = format!("http://{}/m", cacher.addr);
    assert!(!dir.path().join("cache/.tmp/dl-partial").exists());
    assert!(!dir.path().join("meta/.tmp/idx-partial").exists());
    let (s, r) = get(&format!("{base}/dists/stable/Release")).await.unwrap();
    assert_eq!((s, r), (200, rel));
    assert!(
        !suite.join("gen-99").exists(),
        "unreferenced generation left behind"
    );
    let (s, d) = get(&format!("{base}/pool/main/a/a_1_amd64.deb"))
        .await
        .unwrap();
    assert_eq!((s, d.as_ref()), (200, deb.as_slice()));
    assert_eq!(up.count("/repo/pool/main/a/a_1_amd64.deb"), 1);
    assert_eq!(up.count("/repo/dists/stable/main/binary-amd64/Packages"), 1);
    cacher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_generations_are_removed_after_grace_and_valid_until_is_renewed() {
    let up = Up::new();
    let deb = vec![1u8; 100];
    for (p, d) in repo(&deb, 1) {
        up.put(&p, d);
    }
    let addr = up.addr();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), addr);
    cfg.check_interval = Duration::from_secs(0);
    cfg.cache_period = Duration::from_secs(0);
    cfg.generation_grace = Duration::from_secs(1);
    let cacher = start(cfg).await;
    let base = format!("http://{}/m/dists/stable", cacher.addr);
    get(&format!("{base}/Release")).await.unwrap();
    for (p, d) in repo(&[2u8; 100], 2) {
        up.put(&p, d);
    }
    get(&format!("{base}/Release")).await.unwrap();
    let suite = dir.path().join("meta/m/dists%2Fstable");
    let gens = || {
        std::fs::read_dir(&suite)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("gen-"))
            .count()
    };
    assert_eq!(
        gens(),
        2,
        "the previous generation is kept during the grace period"
    );
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        gens(),
        1,
        "the dead generation is removed after the grace period"
    );
    cacher.stop().await;

    // A Release whose Valid-Until is near is re-checked even within check_interval.
    let up = Up::new();
    let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(60));
    up.put(
        "/repo/dists/s/Release",
        format!("Suite: s\nValid-Until: {soon}\nSHA256:\n"),
    );
    let addr = up.addr();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), addr);
    cfg.check_interval = Duration::from_secs(600);
    cfg.cache_period = Duration::from_secs(1);
    let cacher = start(cfg).await;
    let url = format!("http://{}/m/dists/s/Release", cacher.addr);
    get(&url).await.unwrap();
    get(&url).await.unwrap();
    assert_eq!(up.count("/repo/dists/s/Release"), 1, "re-checked too soon");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    get(&url).await.unwrap();
    assert_eq!(
        up.count("/repo/dists/s/Release"),
        2,
        "Valid-Until near: must be renewed"
    );
    cacher.stop().await;
}
