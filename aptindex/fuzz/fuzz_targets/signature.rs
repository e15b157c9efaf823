//! OpenPGP: the input is read as a keyring (`Keyring::from_bytes`), as a
//! clearsigned InRelease and as a detached signature checked against the
//! Debian archive keyring. Nothing may panic.
#![no_main]

use std::sync::OnceLock;

use aptindex::signature::Keyring;
use libfuzzer_sys::fuzz_target;

static DEBIAN_KEYRING: &[u8] =
    include_bytes!("../../../testdata/debian/debian-archive-keyring.gpg");

fn keyring() -> &'static Keyring {
    static K: OnceLock<Keyring> = OnceLock::new();
    K.get_or_init(|| match Keyring::from_bytes(DEBIAN_KEYRING) {
        Ok(k) => k,
        Err(e) => panic!("fixture keyring does not load: {e}"),
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(k) = Keyring::from_bytes(data) {
        let _ = k.len();
    }
    let _ = keyring().verify_clearsigned(data);
    let _ = keyring().verify_detached(b"Origin: Debian\n", data);
});
