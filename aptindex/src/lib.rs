//! `aptindex`: the APT repository metadata library that `apt-cacher` and
//! `apt-mirror` stand on.
//!
//! It reads and checks the files an APT repository is made of:
//! deb822 control files ([`deb822`]), `Release`/`InRelease` ([`release`]),
//! the indices they list and the files those name ([`index`]), checksums
//! ([`checksum`]), compression ([`compress`]), repository paths and by-hash
//! ([`path`]), PDiff indices ([`pdiff`]), OpenPGP signatures ([`signature`])
//! and which Release files to believe ([`trust`]); [`fsmode`] holds the
//! modes of the files both binaries publish. [`tree`] is the consistent-tree
//! machinery both binaries build on: verified staged files, atomic publish
//! by symlink swap, keep-N generations.
//!
//! Everything here is synchronous and does no network I/O; every parser takes
//! untrusted bytes and returns a typed error instead of panicking.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checksum;
pub mod compress;
pub mod deb822;
pub mod fsmode;
pub mod index;
pub mod path;
pub mod pdiff;
pub mod release;
pub mod signature;
pub mod tree;
pub mod trust;

pub use checksum::{ChecksumError, Checksums, HashKind, Hasher};
pub use compress::Compression;
pub use index::{FileEntry, IndexKind};
pub use path::PathKind;
pub use pdiff::DiffIndex;
pub use release::Release;
