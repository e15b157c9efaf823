//! `runtime`: what both binaries, `apt-cacher` and `apt-mirror`, need to be
//! well-behaved long-running programs, written once (the role
//! `cybozu-go/well` plays for the Go originals). Nothing here knows APT:
//! the formats and verification are `aptindex`'s.
//!
//! - [`logging`]: a `tracing` logger that never blocks nor kills the
//!   program (bounded queue, one writer thread, reopen on SIGUSR1), the
//!   `[log]` table and the level and format names;
//! - [`signals`]: SIGTERM/SIGINT → a `CancellationToken`, a second one
//!   exits at once; SIGUSR1 reopens the log;
//! - [`notify`]: systemd's `sd_notify` (`READY=1`, `STOPPING=1`, `STATUS=`);
//! - [`config`]: where a configuration error is (line, key, `file:line`);
//! - [`http`]: the HTTP client both use to reach upstreams: how it is
//!   built, per-host limits, URL joining, one error type, retry policy.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod http;
pub mod logging;
pub mod notify;
pub mod signals;
