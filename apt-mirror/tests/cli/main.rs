//! apt-mirror's one integration-test binary: the tests that run the real
//! `apt-mirror` executable (dead pipes and full disks as log destinations,
//! unit files, the files the Debian package ships), one module each. One
//! binary instead of one per file: the crate is linked once.
//!
//! Run one module with `cargo test -p apt-mirror --test cli log_pipe::`.

mod debian_files;
mod log_pipe;
mod systemd_units;
