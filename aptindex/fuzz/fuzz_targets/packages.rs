//! `Packages` index entries must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = aptindex::index::packages_entries(data);
});
