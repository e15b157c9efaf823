//! No input panics the signature code: random bytes, mutated real files
//! (the Debian InRelease and keyring), and structured near-miss clearsigned
//! messages go to `Keyring::from_bytes`, `verify_clearsigned` and
//! `verify_detached`. Only "returns at all" is checked.

use std::path::Path;
use std::sync::OnceLock;

use aptindex::signature::Keyring;
use proptest::prelude::*;

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata")
            .join(rel),
    )
    .unwrap()
}

fn inrelease() -> &'static [u8] {
    static DATA: OnceLock<Vec<u8>> = OnceLock::new();
    DATA.get_or_init(|| read("debian/bookworm-updates_InRelease"))
}

fn keyring_bytes() -> &'static [u8] {
    static DATA: OnceLock<Vec<u8>> = OnceLock::new();
    DATA.get_or_init(|| read("debian/debian-archive-keyring.gpg"))
}

fn keyring() -> &'static Keyring {
    static KEYRING: OnceLock<Keyring> = OnceLock::new();
    KEYRING.get_or_init(|| Keyring::from_bytes(keyring_bytes()).unwrap())
}

/// The armoured signature part of the Debian InRelease (a valid
/// multi-signature armour block).
fn signature_block() -> &'static [u8] {
    let data = inrelease();
    let start = data
        .windows(29)
        .position(|w| w == b"-----BEGIN PGP SIGNATURE-----")
        .unwrap();
    &data[start..]
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(p, v)| Mutation::Insert(p, v)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Mutation::Delete(p, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(data: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut out = data.to_vec();
    for m in muts {
        let len = out.len().max(1);
        match m {
            Mutation::Flip(p, b) => {
                if !out.is_empty() {
                    let i = p % out.len();
                    out[i] ^= b | 1;
                }
            }
            Mutation::Insert(p, v) => {
                let i = p % (out.len() + 1);
                out.splice(i..i, v.iter().copied());
            }
            Mutation::Delete(p, n) => {
                let i = p % len;
                let end = (i + n).min(out.len());
                if i < end {
                    out.drain(i..end);
                }
            }
            Mutation::Truncate(p) => out.truncate(p % len),
        }
    }
    out
}

/// Lines that steer random messages into the clearsigned parser's branches.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-----BEGIN PGP SIGNED MESSAGE-----".to_string()),
        Just("Hash: SHA256".to_string()),
        Just(String::new()),
        Just("- escaped".to_string()),
        Just("-unescaped".to_string()),
        Just("Origin: Debian  ".to_string()),
        Just("-----BEGIN PGP SIGNATURE-----".to_string()),
        Just("-----END PGP SIGNATURE-----".to_string()),
        Just("-----BEGIN PGP PUBLIC KEY BLOCK-----".to_string()),
        Just("-----END PGP PUBLIC KEY BLOCK-----".to_string()),
        Just("=AbCd".to_string()),
        "[A-Za-z0-9+/]{0,76}={0,2}",
        "[ -~]{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Keyring::from_bytes(&data);
        let _ = keyring().verify_clearsigned(&data);
        let _ = keyring().verify_detached(b"Origin: x\n", &data);
    }

    #[test]
    fn structured_messages(lines in proptest::collection::vec(fragment(), 0..40),
                           crlf in any::<bool>()) {
        let sep = if crlf { "\r\n" } else { "\n" };
        let text = lines.join(sep);
        let _ = Keyring::from_bytes(text.as_bytes());
        let _ = keyring().verify_clearsigned(text.as_bytes());
        let _ = keyring().verify_detached(b"Origin: x\n", text.as_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn mutated_inrelease(muts in proptest::collection::vec(mutation(), 1..6)) {
        let data = apply(inrelease(), &muts);
        let _ = keyring().verify_clearsigned(&data);
    }

    #[test]
    fn mutated_signature_block(muts in proptest::collection::vec(mutation(), 1..6)) {
        let sig = apply(signature_block(), &muts);
        let _ = keyring().verify_detached(inrelease(), &sig);
    }

    #[test]
    fn mutated_keyring(muts in proptest::collection::vec(mutation(), 1..4)) {
        let data = apply(keyring_bytes(), &muts);
        if let Ok(k) = Keyring::from_bytes(&data) {
            let _ = k.verify_clearsigned(inrelease());
        }
    }
}
