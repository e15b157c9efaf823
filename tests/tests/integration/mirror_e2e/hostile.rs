//! Hostile indices: path traversal entries and hostile file names are
//! rejected.

use super::*;

/// A hand-made unsigned repository whose Packages names `filename`.
fn handmade_repo(root: &Path, filename: &str) {
    use aptindex::checksum::{Checksums, HashKind};
    let deb = b"not really a deb";
    let sums = Checksums::of_bytes(deb);
    let packages = format!(
        "Package: evil\nVersion: 1\nArchitecture: amd64\nFilename: {filename}\nSize: {}\nSHA256: {}\n\n",
        deb.len(),
        sums.hex(HashKind::Sha256).unwrap()
    );
    let dir = root.join("dists/s/main/binary-amd64");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Packages"), &packages).unwrap();
    let p = Checksums::of_bytes(packages.as_bytes());
    let release = format!(
        "Suite: s\nCodename: s\nComponents: main\nArchitectures: amd64\nSHA256:\n {} {} main/binary-amd64/Packages\n",
        p.hex(HashKind::Sha256).unwrap(),
        packages.len()
    );
    std::fs::write(root.join("dists/s/Release"), release).unwrap();
    std::fs::create_dir_all(root.join("pool")).unwrap();
    std::fs::write(root.join("pool/evil.deb"), deb).unwrap();
}

#[test]
fn path_traversal_entries_are_rejected() {
    for filename in [
        "../../outside.deb",
        "/etc/evil.deb",
        "pool/../../../outside.deb",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("upstream");
        handmade_repo(&root, filename);
        let up = Upstream::serve(&root).unwrap();
        let dir = tmp.path().join("a/b/mirror");
        let config = tmp.path().join("mirror.toml");
        std::fs::write(
            &config,
            format!(
                "dir = \"{}\"\n[mirror.m]\nurl = \"{}\"\nsuites = [\"s\"]\nsections = [\"main\"]\narchitectures = [\"amd64\"]\n",
                dir.display(),
                up.url()
            ),
        )
        .unwrap();
        assert_eq!(run_args(&config, &[]), 1, "{filename}");
        assert!(!dir.join("m").exists());
        assert!(!tmp.path().join("a/outside.deb").exists());
        assert!(!tmp.path().join("outside.deb").exists());
        assert_eq!(up.requests_matching("*evil*"), 0);
        assert_eq!(up.requests_matching("*outside*"), 0);
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("apt-mirror-summary.json")).unwrap())
                .unwrap();
        let err = summary["mirrors"]["m"]["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(err.contains("unsafe"), "{err}");
    }
    // The same hand-made repository with a sane path mirrors fine (unsigned: warning only).
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("upstream");
    handmade_repo(&root, "pool/evil.deb");
    let up = Upstream::serve(&root).unwrap();
    let config = tmp.path().join("mirror.toml");
    std::fs::write(
        &config,
        format!(
            "dir = \"{}\"\n[mirror.m]\nurl = \"{}\"\nsuites = [\"s\"]\nsections = [\"main\"]\narchitectures = [\"amd64\"]\n",
            tmp.path().join("mirror").display(),
            up.url()
        ),
    )
    .unwrap();
    assert_eq!(run_args(&config, &[]), 0);
    assert!(tmp.path().join("mirror/m/pool/evil.deb").is_file());
}

#[test]
fn hostile_filename_from_testkit_is_rejected() {
    let bed = Bed::new(|b| {
        b.generated_packages(1, 100)
            .package(PackageSpec::new("evil", "1.0").filename("../../escaped.deb"))
    });
    bed.standard_config();
    assert_eq!(bed.run(), 1);
    assert!(!bed.dir().join("m").exists());
    assert!(bed.snapshot_dirs().is_empty());
    let err = bed.summary()["mirrors"]["m"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("escaped.deb"), "{err}");
}
