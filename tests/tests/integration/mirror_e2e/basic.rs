//! A full mirror, an incremental update and an unchanged upstream; flat
//! repositories, by-hash with its fallback, the selection the configuration
//! asks for, an HTTPS upstream and a snapshot without info.json.

use super::*;

#[test]
fn full_then_incremental_then_unchanged() {
    let bed = Bed::new(|b| {
        b.by_hash(true)
            .translations(true)
            .sources(true)
            .generated_packages(20, 2000)
            .package(PackageSpec::new("common", "1.0").arch("all"))
    });
    bed.standard_config();

    // Full mirror.
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    let target = bed.link_target();
    assert!(target.is_relative(), "{target:?}");
    assert!(target.to_string_lossy().starts_with(".m.") && target.ends_with("m"));
    assert!(bed
        .dir()
        .join(target.parent().unwrap())
        .join("info.json")
        .is_file());
    assert_eq!(
        bed.up.requests_matching("*/source/*"),
        0,
        "Sources fetched without mirror_source"
    );
    assert!(!bed
        .mirrored("pool/main")
        .join("p/pkg0000")
        .read_dir()
        .unwrap()
        .any(|e| { e.unwrap().file_name().to_string_lossy().ends_with(".dsc") }));
    // by-hash directories for the indices.
    let bh = bed.mirrored("dists/stable/main/binary-amd64/by-hash/SHA256");
    assert!(
        bh.read_dir().unwrap().count() >= 2,
        "by-hash files in {bh:?}"
    );
    let s = bed.summary();
    assert_eq!(s["mirrors"]["m"]["result"], "updated");
    assert!(s["mirrors"]["m"]["files_downloaded"].as_u64().unwrap() >= 21);
    assert!(
        bed.up.max_in_flight() <= 4,
        "max_conns exceeded: {}",
        bed.up.max_in_flight()
    );

    // Unchanged upstream: only the three Release files are fetched, fast.
    bed.up.reset_counts();
    let t = Instant::now();
    assert_eq!(bed.run(), 0);
    let unchanged = t.elapsed();
    assert_eq!(bed.up.requests_total(), 3, "{:?}", bed.up.request_log());
    assert!(
        unchanged < Duration::from_secs(1),
        "unchanged run took {unchanged:?}"
    );
    assert_eq!(bed.summary()["mirrors"]["m"]["result"], "unchanged");
    assert_eq!(bed.link_target(), target);

    // The upstream changes: one package rebuilt, one new, one removed.
    let old_unchanged = bed.mirrored(
        &bed.repo
            .lock()
            .unwrap()
            .package("pkg0005")
            .unwrap()
            .pool_path
            .clone(),
    );
    let old_inode = inode(&old_unchanged);
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0003", "2.0").size(2000));
        repo.add(PackageSpec::new("newpkg", "1.0")).unwrap();
        repo.remove("pkg0007");
        repo.publish().unwrap();
    }
    bed.up.reset_counts();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert_eq!(
        bed.up.requests_matching("/pool/*"),
        2,
        "{:?}",
        bed.up.request_log()
    );
    assert_eq!(bed.up.requests_matching("/pool/*pkg0003_2.0*"), 1);
    assert_eq!(bed.up.requests_matching("/pool/*newpkg*"), 1);
    // Unchanged files are hard links to the previous snapshot's.
    assert_eq!(inode(&old_unchanged), old_inode);
    let s = bed.summary();
    // 21 packages - 1 rebuilt - 1 removed = 19 pool files reused.
    assert!(
        s["mirrors"]["m"]["files_reused"].as_u64().unwrap() >= 19,
        "{s}"
    );
    // The previous snapshot is kept (keep = 1) and intact.
    let dirs = bed.snapshot_dirs();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    assert!(bed.dir().join(&target).join("pool/main/p/pkg0007").is_dir());
    // Files dropped upstream stay one more generation (clients mid-update).
    assert!(bed.mirrored("pool/main/p/pkg0007").is_dir());
    assert!(bed
        .mirrored("pool/main/p/pkg0003/pkg0003_1.0_amd64.deb")
        .is_file());
    // The previous generation's by-hash files were carried over.
    let n = bh.read_dir().unwrap().count();
    assert!(n >= 4, "by-hash now has {n} files");

    // One more update: the oldest snapshot goes.
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0004", "2.0"));
        repo.publish().unwrap();
    }
    assert_eq!(bed.run(), 0);
    let dirs2 = bed.snapshot_dirs();
    assert_eq!(dirs2.len(), 2, "{dirs2:?}");
    assert!(!dirs2.contains(&dirs[0]));
    // The new snapshot no longer names the files dropped two updates ago...
    let current = bed.current_info();
    let dropped = "pool/main/p/pkg0007/pkg0007_1.0_amd64.deb";
    assert!(!current.contains_key(dropped));
    assert!(!current.contains_key("pool/main/p/pkg0003/pkg0003_1.0_amd64.deb"));
    assert!(current.contains_key("pool/main/p/pkg0004/pkg0004_1.0_amd64.deb"));
    assert!(bed
        .mirrored("pool/main/p/pkg0004/pkg0004_1.0_amd64.deb")
        .is_file());
    // ...but the previous snapshot, which clients may still use, does, and
    // the pool shared by both holds exactly what they name.
    assert!(bed.dir().join(&dirs2[0]).join("m").join(dropped).is_file());
    assert_eq!(bed.pool_generations().len(), 1);
    bed.assert_pool_exact();
    // An unchanged file is still the same inode: never copied or re-linked.
    assert_eq!(inode(&old_unchanged), old_inode);

    // Once no kept snapshot names them, they are removed from the pool.
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0006", "2.0"));
        repo.publish().unwrap();
    }
    assert_eq!(bed.run(), 0);
    assert!(!bed.mirrored("pool/main/p/pkg0007").exists());
    assert!(!bed
        .mirrored("pool/main/p/pkg0003/pkg0003_1.0_amd64.deb")
        .exists());
    assert_eq!(bed.snapshot_dirs().len(), 2);
    assert_eq!(bed.pool_generations().len(), 1);
    bed.assert_pool_exact();
    bed.assert_complete();
}

#[test]
fn flat_repository() {
    let bed = Bed::new(|b| b.suite("flat/").generated_packages(3, 700));
    bed.config(r#"["flat/"]"#, r#"keyring = "key.gpg""#);
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert!(bed.mirrored("flat/Packages.gz").is_file());
    bed.up.reset_counts();
    assert_eq!(bed.run(), 0);
    assert_eq!(bed.up.requests_total(), 3);
}

#[test]
fn by_hash_first_with_fallback_to_plain_paths() {
    let bed = Bed::new(|b| b.by_hash(true).sha512(true).generated_packages(2, 500));
    bed.standard_config();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert!(bed.up.requests_matching("*/by-hash/SHA512/*") > 0);
    assert_eq!(
        bed.up
            .requests_matching("/dists/stable/main/binary-amd64/Packages.xz"),
        0
    );

    // by-hash missing upstream: fall back to the plain paths.
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0001", "2.0"));
        repo.publish().unwrap();
    }
    bed.up.fail_status("*/by-hash/*", 404, Times::Always);
    bed.up.reset_counts();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert!(
        bed.up
            .requests_matching("/dists/stable/main/binary-amd64/Packages*")
            > 0
    );
    // The mirror publishes its own by-hash files anyway.
    assert!(bed
        .mirrored("dists/stable/main/binary-amd64/by-hash/SHA256")
        .is_dir());
}

#[test]
fn snapshot_without_info_json_is_reused_after_hashing() {
    // E.g. a tree left by go-apt-mirror: same layout, no (compatible) info.json.
    let bed = Bed::new(|b| b.generated_packages(6, 1500));
    bed.standard_config();
    assert_eq!(bed.run(), 0);
    let target = bed.dir().join(bed.link_target());
    std::fs::remove_file(target.parent().unwrap().join("info.json")).unwrap();
    // A damaged file of the old tree (same size) must not be reused.
    let damaged = target.join("pool/main/p/pkg0002/pkg0002_1.0_amd64.deb");
    let len = std::fs::metadata(&damaged).unwrap().len() as usize;
    std::fs::remove_file(&damaged).unwrap();
    std::fs::write(&damaged, vec![0u8; len]).unwrap();
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0004", "2.0"));
        repo.publish().unwrap();
    }
    bed.up.reset_counts();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert_eq!(
        bed.up.requests_matching("/pool/*"),
        2,
        "{:?}",
        bed.up.request_log()
    );
    assert_eq!(bed.up.requests_matching("/pool/*pkg0002*"), 1);
    assert_eq!(bed.up.requests_matching("/pool/*pkg0004*"), 1);
}

#[test]
fn https_upstream_with_ssl_cert_file() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("upstream"))
        .generated_packages(2, 300)
        .build()
        .unwrap();
    let up = Upstream::serve_https(repo.root()).unwrap();
    repo.key()
        .write_public(&tmp.path().join("key.gpg"))
        .unwrap();
    let config = tmp.path().join("mirror.toml");
    std::fs::write(
        &config,
        format!(
            "dir = \"{}\"\n[http]\nretries = 0\n[mirror.m]\nurl = \"{}\"\nsuites = [\"stable\"]\nsections = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"key.gpg\"\n",
            tmp.path().join("mirror").display(),
            up.url()
        ),
    )
    .unwrap();
    // Without the test CA the upstream is refused...
    let out = apt_mirror_command(&["-f".as_ref(), config.as_os_str()])
        .env("SSL_CERT_FILE", tmp.path().join("no-such-ca.pem"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ...with it (SSL_CERT_FILE), the mirror is made.
    let out = apt_mirror_command(&["-f".as_ref(), config.as_os_str()])
        .env("SSL_CERT_FILE", up.ca_cert_path().unwrap())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in repo.packages() {
        assert!(tmp.path().join("mirror/m").join(&p.pool_path).is_file());
    }
}

#[test]
fn selection_follows_the_configuration() {
    let bed = Bed::new(|b| {
        b.components(&["main", "contrib"])
            .architectures(&["amd64", "i386"])
            .sources(true)
            .translations(true)
            .languages(&["en", "de"])
            .contents(true)
            .generated_packages(2, 300)
            .package(PackageSpec::new("only386", "1.0").arch("i386"))
            .package(PackageSpec::new("everywhere", "1.0").arch("all"))
            .package(PackageSpec::new("contribpkg", "1.0").component("contrib"))
    });
    bed.config(
        r#"["stable"]"#,
        r#"sections = ["main"]
architectures = ["amd64"]
keyring = "key.gpg"
mirror_source = true
languages = ["en"]
contents = false"#,
    );
    assert_eq!(bed.run(), 0);
    for pattern in [
        "*/binary-i386/*",
        "/dists/stable/contrib/*",
        "*Translation-de*",
        "*Contents*",
        "*only386*.deb",
        "*contribpkg*",
    ] {
        assert_eq!(
            bed.up.requests_matching(pattern),
            0,
            "{pattern}: {:?}",
            bed.up.request_log()
        );
    }
    assert!(
        bed.up
            .requests_matching("/dists/stable/main/source/Sources*")
            > 0
    );
    let files = files_under(&bed.mirrored(""));
    let has = |suffix: &str| files.iter().any(|f| f.ends_with(suffix));
    assert!(has(".dsc"), "{files:?}");
    assert!(has("main/i18n/Translation-en"), "{files:?}");
    assert!(has("everywhere_1.0_all.deb"), "{files:?}");
    assert!(has("pkg0001_1.0_amd64.deb"), "{files:?}");
    assert!(!files.iter().any(|f| f.contains("Translation-de")
        || f.contains("Contents")
        || f.ends_with("i386.deb")));
}
