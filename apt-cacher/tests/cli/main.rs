//! apt-cacher's one integration-test binary: the tests that run the real
//! `apt-cacher` executable (signals, pipes, sockets passed as systemd does,
//! unit files, the files the Debian package ships), one module each, with
//! their shared helpers in `common`. One binary instead of one per file:
//! the crate is linked once.
//!
//! Run one module with `cargo test -p apt-cacher --test cli lifecycle::`.

mod common;

mod debian_files;
mod go_migration;
mod import_command;
mod lifecycle;
mod listen_sockets;
mod log_pipe;
mod systemd_units;
