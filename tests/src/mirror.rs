//! An apt-mirror run for end-to-end tests: the whole job, in this process,
//! on a runtime of its own, as `apt-mirror -f CONFIG [ID ...]` would run it.

use std::path::Path;

/// Runs apt-mirror with `config` for the mirrors `ids` (all when empty) and
/// returns its exit status. Panics if no runtime can be built: tests only.
pub fn run(config: &Path, ids: &[&str]) -> u8 {
    let args = apt_mirror::Args {
        config: config.to_path_buf(),
        check_config: false,
        mirrors: ids.iter().map(|s| s.to_string()).collect(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for apt-mirror");
    rt.block_on(apt_mirror::run(&args))
}
