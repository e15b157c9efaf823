//! Test kit for end-to-end tests of the cacher and the mirror.
//!
//! - [`keys`]: a throw-away OpenPGP key that signs test repositories.
//! - [`repo`]: generated, signed APT repositories on disk, changeable between publishes.
//! - [`upstream`]: an in-process HTTP/HTTPS server with request counts, fault switches and
//!   hooks, serving such a repository.
//! - [`apt`]: the real `apt-get`, isolated in a temporary directory.
//!
//! Errors are `anyhow::Error` with context: this is test support code whose callers are tests.
#![warn(missing_docs)]

pub mod apt;
pub mod keys;
pub mod repo;
pub mod upstream;

pub use apt::{AptEnv, AptOutput};
pub use keys::TestKey;
pub use repo::{Checksums, Compression, IndexFile, Package, PackageSpec, Repo, RepoBuilder};
pub use upstream::{Fault, RequestRecord, TestCa, Times, Upstream};
