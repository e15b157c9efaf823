//! The end-to-end tests of the workspace in one test binary (`integration`):
//! each former test file is a module, so apt-cacher, apt-mirror and the test
//! kit are linked once instead of once per file. Run one module with
//! `cargo test -p integration-tests --test integration cacher_e2e::`.
//!
//! One binary means one process for all of them. What is process-wide is
//! scoped: a test that sets an environment variable for every TLS client
//! (`cacher_https`) or counts the process's descriptors and RSS
//! (`cacher_leaks`) runs alone in a child process (`common`); children
//! re-run for a umask or a `kill -9` are named by their full test path; the
//! release build of `deb_packages` runs under `nice -n 19` beside the tests
//! that measure time; `sendfile::bytes_sent()` is only compared as a
//! difference that other tests can only grow.

mod common;

mod cacher_bench;
mod cacher_e2e;
mod cacher_failover;
mod cacher_fresh;
mod cacher_hostile;
mod cacher_https;
mod cacher_import;
mod cacher_inprocess;
mod cacher_ipv6;
mod cacher_kill9;
mod cacher_leaks;
mod cacher_local;
mod cacher_midupdate;
mod cacher_one_address;
mod cacher_pdiffs;
mod cacher_restart;
mod cacher_retention;
mod cacher_signed;
mod cacher_status;
mod cacher_timeouts;
mod deb_packages;
mod hostile_cache;
mod hostile_config_release;
mod hostile_h2_window;
mod hostile_holds;
mod hostile_indices;
mod hostile_one_host;
mod hostile_redirects;
mod hostile_suites;
mod mirror_disk_full;
mod mirror_e2e;
mod mirror_nginx_apt;
mod mirror_pdiffs;
mod mirror_signatures;
mod status_loopback;
mod testkit_pdiff;
mod testkit_smoke;
mod tree_flows;
