//! Release / InRelease parsing (`Release::parse_any`, which also splits a
//! clearsigned file) must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(release) = aptindex::Release::parse_any(data) {
        let _ = release.date_time();
        let _ = release.valid_until_time();
    }
});
