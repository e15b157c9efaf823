//! deb822: the zero-copy paragraph iterator and the streaming
//! `ParagraphReader` (with a small paragraph limit and a tiny read buffer, so
//! paragraphs straddle buffer refills) must not panic, and must agree.
#![no_main]

use std::io::BufReader;

use aptindex::deb822::{paragraphs, ParagraphReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut zero_copy = 0usize;
    for par in paragraphs(data) {
        let Ok(par) = par else { break };
        zero_copy += 1;
        let _ = par.get("Package");
        if let Some(f) = par.field("Description") {
            for _ in f.numbered_lines() {}
        }
    }
    let reader = ParagraphReader::with_limit(BufReader::with_capacity(7, data), 4096);
    for par in reader {
        let Ok(par) = par else { break };
        if let Ok(p) = par.parse() {
            let _ = p.get("Filename");
        }
    }
    let _ = zero_copy;
});
