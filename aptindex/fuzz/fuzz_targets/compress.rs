//! Decompressing untrusted index bytes (`compress::decompress` in every
//! format, under a 1 MiB output cap) must not panic, and the cap holds.
#![no_main]

use aptindex::compress::{decompress, Compression};
use libfuzzer_sys::fuzz_target;

const LIMIT: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let format = Compression::ALL[usize::from(which) % Compression::ALL.len()];
    if let Ok(out) = decompress(format, rest, LIMIT) {
        assert!(out.len() as u64 <= LIMIT);
    }
});
