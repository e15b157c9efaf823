//! Interoperability: keys made and files signed with `pgp` 0.21 (the recipe in
//! `/work/notes/pgp-howto.md`, also used by the testkit) are accepted by the
//! real `gpgv`, the tool apt runs. Skipped when `gpgv` is not installed.

use std::process::Command;

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, DetachedSignature, KeyType, SecretKeyParamsBuilder,
    SignedPublicKey, SignedSecretKey, SubkeyParamsBuilder,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::ser::Serialize;
use pgp::types::Password;

fn gpgv_available() -> bool {
    Command::new("gpgv").arg("--version").output().is_ok()
}

/// An ed25519 (v4, "legacy" EdDSA: what GnuPG 2.2 understands) primary key
/// that can certify and sign, with an ed25519 signing subkey.
fn make_key() -> SignedSecretKey {
    let mut sub = SubkeyParamsBuilder::default();
    sub.key_type(KeyType::Ed25519Legacy).can_sign(true);
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id("Test Archive <archive@example.invalid>".into())
        .subkeys(vec![sub.build().unwrap()]);
    params
        .build()
        .unwrap()
        .generate(rand::thread_rng())
        .unwrap()
}

fn gpgv(keyring: &std::path::Path, args: &[&std::path::Path]) -> (bool, String) {
    let out = Command::new("gpgv")
        .arg("--keyring")
        .arg(keyring)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn gpgv_accepts_pgp_signatures() {
    if !gpgv_available() {
        eprintln!("gpgv not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = make_key();
    let public: SignedPublicKey = key.to_public_key();
    let keyring = dir.path().join("keyring.gpg");
    std::fs::write(&keyring, public.to_bytes().unwrap()).unwrap();

    let release = "Origin: Test\nSuite: stable\n- dash line\n";
    // Clearsigned InRelease, by the primary key.
    let msg = CleartextSignedMessage::sign(rand::thread_rng(), release, &*key, &Password::empty())
        .unwrap();
    let inrelease = dir.path().join("InRelease");
    std::fs::write(
        &inrelease,
        msg.to_armored_string(ArmorOptions::default()).unwrap(),
    )
    .unwrap();
    let (ok, err) = gpgv(&keyring, &[&inrelease]);
    assert!(ok, "gpgv rejected InRelease: {err}");

    // Detached Release.gpg, by the signing subkey.
    let release_path = dir.path().join("Release");
    std::fs::write(&release_path, release).unwrap();
    let sig = DetachedSignature::sign_binary_data(
        rand::thread_rng(),
        &key.secret_subkeys[0].key,
        &Password::empty(),
        HashAlgorithm::Sha256,
        release.as_bytes(),
    )
    .unwrap();
    let release_gpg = dir.path().join("Release.gpg");
    std::fs::write(
        &release_gpg,
        sig.to_armored_string(ArmorOptions::default()).unwrap(),
    )
    .unwrap();
    let (ok, err) = gpgv(&keyring, &[&release_gpg, &release_path]);
    assert!(ok, "gpgv rejected Release.gpg: {err}");

    // And gpgv rejects a tampered Release.
    std::fs::write(&release_path, "Origin: Evil\nSuite: stable\n- dash line\n").unwrap();
    let (ok, _) = gpgv(&keyring, &[&release_gpg, &release_path]);
    assert!(!ok, "gpgv accepted a tampered Release");
}
