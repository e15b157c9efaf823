//! Configuration files (TOML → apt-cacher's `Config::parse`, apt-mirror's
//! `Config::parse`) must not panic; their errors render. Needs
//! `--features programs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = apt_cacher::Config::parse("fuzz.toml", text) {
        let _ = e.to_string();
    }
    if let Err(e) =
        apt_mirror::config::Config::parse(std::path::Path::new("/fuzz/mirror.toml"), text)
    {
        let _ = e.to_string();
    }
});
