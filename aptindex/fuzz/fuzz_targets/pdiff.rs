//! PDiff `*.diff/Index` parsing (`DiffIndex::parse`) and what is read from
//! it (the patch series apt would apply from the input's own History
//! entries, the downloads, the patch-name check) must not panic. The
//! product applies no ed script itself: patches are verified by their
//! checksums and handed to apt, which applies them.
#![no_main]

use aptindex::checksum::Checksums;
use aptindex::pdiff::{check_patch_name, diff_dir, diff_index_path, DiffIndex};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = check_patch_name(text);
        let _ = diff_dir(&diff_index_path(text));
    }
    let Ok(index) = DiffIndex::parse(data) else {
        return;
    };
    let _ = index.series_from(&index.current);
    let _ = index.series_from(&Checksums::default());
    for p in index.patches.iter().chain(&index.unmerged) {
        let _ = p.download_name();
        let _ = p.is_complete();
        if let Some(h) = &p.history {
            if let Some(series) = index.series_from(h) {
                assert!(series.len() <= index.patches.len());
            }
        }
    }
    for (name, sums) in index.downloads() {
        let _ = check_patch_name(&name);
        let _ = sums.strongest();
    }
});
