//! Release signatures: a bad signature, Release tampered with or without
//! InRelease, and Release and InRelease disagreeing.

use super::*;

#[test]
fn bad_signature_is_refused() {
    let bed = Bed::new(|b| b.key(TestKey::shared_other()).generated_packages(2, 100));
    // Trust the shared key, not the one that signed.
    TestKey::shared()
        .write_public(&bed.tmp.path().join("key.gpg"))
        .unwrap();
    bed.standard_config();
    assert_eq!(bed.run(), 1);
    assert!(!bed.dir().join("m").exists());
    let err = bed.summary()["mirrors"]["m"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("InRelease"), "{err}");
    assert_eq!(bed.up.requests_matching("/pool/*"), 0);
}

#[test]
fn release_tampered_against_inrelease_is_not_published() {
    // As apt: a good InRelease decides; the tampered Release (its
    // Release.gpg fails) is a warning, and neither is published.
    let bed = Bed::new(|b| b.generated_packages(2, 100));
    bed.standard_config();
    let release = bed.repo.lock().unwrap().root().join("dists/stable/Release");
    let text = std::fs::read(&release).unwrap();
    let s = String::from_utf8(text)
        .unwrap()
        .replacen("Testkit", "Evil", 1);
    std::fs::write(&release, s).unwrap();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert!(bed.mirrored("dists/stable/InRelease").is_file());
    assert!(!bed.mirrored("dists/stable/Release").exists());
    assert!(!bed.mirrored("dists/stable/Release.gpg").exists());
    let warnings = bed.summary()["mirrors"]["m"]["warnings"].to_string();
    for name in ["Release", "Release.gpg"] {
        let url = format!("{}/dists/stable/{name}: ", bed.up.url());
        assert!(warnings.contains(&url), "{warnings}");
    }
}

#[test]
fn release_tampered_without_inrelease_is_refused() {
    let bed = Bed::new(|b| b.generated_packages(2, 100));
    bed.standard_config();
    let dir = bed.repo.lock().unwrap().root().join("dists/stable");
    std::fs::remove_file(dir.join("InRelease")).unwrap();
    let text = std::fs::read(dir.join("Release")).unwrap();
    let s = String::from_utf8(text)
        .unwrap()
        .replacen("Testkit", "Evil", 1);
    std::fs::write(dir.join("Release"), s).unwrap();
    assert_eq!(bed.run(), 1);
    assert!(!bed.dir().join("m").exists());
    let err = bed.summary()["mirrors"]["m"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("Release.gpg"), "{err}");
    assert!(err.contains("BAD signature"), "{err}");
}

/// Publishes a change but leaves the previous Release + Release.gpg in place,
/// so that Release and InRelease (both validly signed) disagree.
fn make_release_and_inrelease_disagree(bed: &Bed) -> Vec<u8> {
    let mut repo = bed.repo.lock().unwrap();
    let dir = repo.root().join("dists/stable");
    let release = std::fs::read(dir.join("Release")).unwrap();
    let gpg = std::fs::read(dir.join("Release.gpg")).unwrap();
    repo.add(PackageSpec::new("extra", "1.0")).unwrap();
    repo.publish().unwrap();
    std::fs::write(dir.join("Release"), &release).unwrap();
    std::fs::write(dir.join("Release.gpg"), gpg).unwrap();
    release
}

#[test]
fn release_and_inrelease_disagreeing_are_both_kept_with_by_hash() {
    let bed = Bed::new(|b| b.by_hash(true).generated_packages(3, 500));
    bed.standard_config();
    let old_release = make_release_and_inrelease_disagree(&bed);
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert_eq!(
        std::fs::read(bed.mirrored("dists/stable/Release")).unwrap(),
        old_release
    );
    // The older Release's Packages is served by hash.
    let text = String::from_utf8(old_release).unwrap();
    let sha = text
        .lines()
        .skip_while(|l| !l.starts_with("SHA256:"))
        .skip(1)
        .find(|l| l.ends_with("main/binary-amd64/Packages.gz"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(bed
        .mirrored(&format!(
            "dists/stable/main/binary-amd64/by-hash/SHA256/{sha}"
        ))
        .is_file());
}

#[test]
fn release_and_inrelease_disagreeing_without_by_hash_uses_inrelease() {
    // As apt does: the verified InRelease decides; the other (validly
    // signed) pair is a warning naming its URL and is not published.
    let bed = Bed::new(|b| b.generated_packages(3, 500));
    bed.standard_config();
    make_release_and_inrelease_disagree(&bed);
    assert_eq!(bed.run(), 0);
    let upstream = bed.repo.lock().unwrap().root().join("dists/stable");
    assert_eq!(
        std::fs::read(bed.mirrored("dists/stable/InRelease")).unwrap(),
        std::fs::read(upstream.join("InRelease")).unwrap()
    );
    assert!(!bed.mirrored("dists/stable/Release").exists());
    assert!(!bed.mirrored("dists/stable/Release.gpg").exists());
    let warnings = bed.summary()["mirrors"]["m"]["warnings"].to_string();
    assert!(
        warnings.contains("dists/stable/Release:") && warnings.contains("by-hash"),
        "{warnings}"
    );
    // The package only the new InRelease lists is mirrored.
    assert!(std::fs::read_dir(bed.mirrored("pool/main/e/extra"))
        .unwrap()
        .next()
        .is_some());
}
