//! Unit tests of the generated test repository (determinism, index
//! contents, signatures): the testkit's own checks.

use super::*;

#[test]
fn release_lists_every_index_and_by_hash_copies_exist() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path())
        .by_hash(true)
        .sha512(true)
        .uncompressed(false)
        .compressions(&[Compression::Gz, Compression::Zst])
        .sources(true)
        .package(PackageSpec::new("hello", "1:2.0-1"))
        .build()
        .unwrap();
    let dir = repo.suite_dir("stable");
    let release = std::fs::read_to_string(dir.join("Release")).unwrap();
    assert!(release.contains("Acquire-By-Hash: yes\n"));
    for f in repo.index_files("stable") {
        for (algo, hash) in [
            ("MD5Sum", &f.checksums.md5),
            ("SHA256", &f.checksums.sha256),
            ("SHA512", &f.checksums.sha512),
        ] {
            let line = format!(" {} {:>16} {}\n", hash, f.checksums.size, f.path);
            assert!(release.contains(&line), "{algo} {line:?}");
        }
        let on_disk = dir.join(&f.path);
        assert_eq!(on_disk.is_file(), f.present, "{}", f.path);
        if f.present {
            let parent = Path::new(&f.path).parent().unwrap();
            let by_hash = dir
                .join(parent)
                .join("by-hash/SHA512")
                .join(&f.checksums.sha512);
            assert_eq!(
                std::fs::read(by_hash).unwrap(),
                std::fs::read(on_disk).unwrap()
            );
        }
    }
    let p = repo.package("hello").unwrap();
    assert_eq!(p.pool_path, "pool/main/h/hello/hello_2.0-1_amd64.deb");
    assert_eq!(p.deb_file_name(), "hello_1%3a2.0-1_amd64.deb");
    let data = std::fs::read(repo.root().join(&p.pool_path)).unwrap();
    assert_eq!(Checksums::of(&data), p.checksums);
    assert!(repo
        .root()
        .join("pool/main/h/hello/hello_2.0-1.dsc")
        .is_file());
}

#[test]
fn republish_keeps_old_by_hash_files_and_changes_content_on_new_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut repo = Repo::builder(tmp.path())
        .by_hash(true)
        .package(PackageSpec::new("a", "1"))
        .build()
        .unwrap();
    let old = repo.index_files("stable").to_vec();
    let old_sha = repo.package("a").unwrap().sha256().to_string();
    repo.replace(PackageSpec::new("a", "1").seed(1));
    repo.publish().unwrap();
    assert_ne!(repo.package("a").unwrap().sha256(), old_sha);
    let dir = repo.suite_dir("stable");
    for f in old.iter().filter(|f| f.present) {
        let parent = Path::new(&f.path).parent().unwrap();
        assert!(dir
            .join(parent)
            .join("by-hash/SHA256")
            .join(&f.checksums.sha256)
            .is_file());
    }
    assert_eq!(repo.remove("a"), 1);
    repo.publish().unwrap();
    assert!(repo.packages().is_empty());
}

#[test]
fn deterministic_content() {
    let a = deterministic_bytes(b"x", 100);
    assert_eq!(a, deterministic_bytes(b"x", 100));
    assert_ne!(a, deterministic_bytes(b"y", 100));
    assert!(a.starts_with(b"!<arch>\n"));
    assert_eq!(deterministic_bytes(b"x", 3).len(), 3);
    for c in [
        Compression::Gz,
        Compression::Xz,
        Compression::Bz2,
        Compression::Zst,
        Compression::Lzma,
    ] {
        assert!(!c.compress(&a).unwrap().is_empty());
    }
}
