//! `runtime`: what both binaries, `apt-cacher` and `apt-mirror`, need to be
//! well-behaved long-running programs, written once (the role
//! `cybozu-go/well` plays for the Go originals). Nothing here knows APT:
//! the formats and verification are `aptindex`'s.
//!
//! - [`logging`]: a `tracing` logger that never blocks nor kills the
//!   program (bounded queue, one writer thread, reopen on SIGUSR1), the
//!   `[log]` table and the level and format names;

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod logging;
