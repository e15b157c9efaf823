//! apt-cacher's request target → route → cache key (`mapping::Router::route`
//! on a GET of the input as a URI, then `CacheKey::for_file` and the key
//! strings, and the upstream URL joining) must not panic, and whatever it
//! routes to a file is a safe relative path. Needs `--features programs`.
#![no_main]

use apt_cacher::cache::key::{CacheKey, Lookup};
use apt_cacher::config::Mapping;
use apt_cacher::mapping::{Route, Router};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn router() -> &'static Router {
    static R: OnceLock<Router> = OnceLock::new();
    R.get_or_init(|| {
        let m = |prefix: &str, url: &str| Mapping {
            prefix: prefix.into(),
            url: url::Url::parse(url).unwrap(),
            aliases: vec![url::Url::parse("http://mirror.example.org/debian").unwrap()],
            redirect_hosts: Vec::new(),
            fallbacks: Vec::new(),
            keyrings: Vec::new(),
            local: None,
        };
        let mut r = Router::new(
            vec![
                m("debian", "http://deb.example.org/debian"),
                m("security", "https://security.example.org/debian-security"),
                m("ubuntu", "http://[::1]:8080/ubuntu"),
            ],
            vec!["git.example.org:443".into()],
        );
        r.set_self_port(3142);
        r
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(uri) = http::Uri::try_from(data) else {
        return;
    };
    for method in [http::Method::GET, http::Method::CONNECT] {
        if let Route::File { mapping, path } = router().route(&method, &uri) {
            assert!(aptindex::path::is_safe_relative(&path), "{path:?}");
            let _ = aptindex::path::classify(&path);
            let _ = router().upstream_url(mapping, &path);
            let prefix = &router().mappings()[mapping].prefix;
            for lookup in [Lookup::Unlisted, Lookup::Undecided] {
                let key = CacheKey::for_file(prefix, &path, &lookup);
                let _ = key.storage_key();
                let _ = key.coalesce_key();
                let _ = key.what();
            }
        }
    }
});
