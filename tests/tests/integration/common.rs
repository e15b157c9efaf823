//! Running one test alone in a child process of this binary. Every
//! end-to-end test shares the `integration` binary, and so its process:
//! a test that changes process-wide state (an environment variable read by
//! every TLS client) or measures it (open descriptors, RSS) runs its body in
//! a child process of this executable started for it alone (`--exact`, one
//! test thread), and the parent test passes only if that child ran it and
//! it passed.

use std::process::Command;

/// Names, in a child process, the one test it runs alone.
const ALONE_ENV: &str = "INTEGRATION_TEST_ALONE";

/// Whether this process is the child started by [`run_alone`] for the test
/// `name` (its path in this binary, e.g. `cacher_leaks::ten_thousand`).
pub fn is_alone(name: &str) -> bool {
    std::env::var(ALONE_ENV).is_ok_and(|v| v == name)
}

/// Runs the test `name` (its path in this binary) again in a child process
/// of this executable, alone, with [`is_alone`] true there; prints its
/// output, and panics unless exactly that one test ran and passed.
///
/// The test calls this first and returns after it unless [`is_alone`]:
/// `if !common::is_alone(NAME) { return common::run_alone(NAME); }`.
pub fn run_alone(name: &str) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args([
            "--exact",
            name,
            "--include-ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(ALONE_ENV, name)
        .output()
        .unwrap_or_else(|e| panic!("running {name} in a child process: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{name}, run alone in a child process:\n{stdout}{stderr}");
    assert!(
        out.status.success() && stdout.contains("running 1 test") && stdout.contains("1 passed"),
        "{name} alone in a child process: {}",
        out.status
    );
}
