//! Test kit for end-to-end tests of the cacher and the mirror.
//!
//! - [`keys`]: a throw-away OpenPGP key that signs test repositories.
//! - [`repo`]: generated, signed APT repositories on disk, changeable between publishes.
//! - [`pdiff`]: PDiffs (`*.diff/Index` + ed-script patches) for those repositories.
//! - [`upstream`]: an in-process HTTP/HTTPS server with request counts, fault switches,
//!   hooks and atomically replaceable files, serving such a repository (the workspace's one
//!   fake upstream).
//! - [`apt`]: the real `apt-get`, isolated in a temporary directory.
//! - [`cacher`]: an apt-cacher configured and started for a test.
//! - [`browser`]: a page rendered by headless chromium to a PNG, read back by OCR.
//! - [`blackhole`]: an address on 127.0.0.1 where connecting hangs (connect timeouts).
//! - [`nginx`]: real nginx serving a directory the way Debian runs it (workers as
//!   `www-data`), with the server block of `apt-mirror/README.md`.
//!
//! Errors are `anyhow::Error` with context: this is test support code whose callers are tests.
//!
//! ```no_run
//! use testkit::{AptEnv, Compression, PackageSpec, Repo, Times, Upstream};
//! # fn main() -> anyhow::Result<()> {
//! let tmp = tempfile::tempdir()?;
//! let repo = Repo::builder(tmp.path().join("upstream"))
//!     .by_hash(true)
//!     .compressions(&[Compression::Xz, Compression::Gz])
//!     .package(PackageSpec::new("hello", "2.10-3").size(5000))
//!     .build()?;
//! let up = Upstream::serve(repo.root())?;
//! up.fail_status("*/Packages.xz", 503, Times::Once);
//! let mut apt = AptEnv::new()?;
//! apt.add_source(&up.url(), "stable", &["main"])?;
//! let out = apt.update()?;
//! assert!(!out.hash_sum_mismatch());
//! apt.install_download_only(&["hello"])?.ok_clean()?;
//! assert_eq!(apt.downloaded_archives()?.len(), 1);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod apt;
pub mod blackhole;
pub mod browser;
pub mod cacher;
pub mod keys;
pub mod mirror;
pub mod nginx;
pub use repo::pdiff;
pub mod rawhttp;
pub mod repo;
pub mod tmpfs;
pub mod upstream;

pub use apt::{AptEnv, AptOutput};
pub use blackhole::Blackhole;
pub use keys::TestKey;
pub use nginx::Nginx;
pub use pdiff::PdiffLayout;
pub use repo::{Checksums, Compression, IndexFile, Package, PackageSpec, Repo, RepoBuilder};
pub use upstream::{Fault, RequestRecord, TestCa, Times, Upstream};

/// A TCP port of 127.0.0.1 that was free a moment ago (for a server that
/// must be started on a known address, e.g. in a child process). Racy: another process may
/// take it first; prefer binding port 0 and reading the address, or passing the socket.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}
