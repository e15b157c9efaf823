//! The consistent-tree machinery both binaries share: apt-cacher's metadata
//! generations and apt-mirror's snapshots are both trees of verified files
//! that clients must only ever see whole.
//!
//! The pieces, in the order a tree is built:
//! - [`release_files`]: the Release files of a suite and their size cap, the
//!   role of each Release entry (index, PDiff index, by-hash, patch) and
//!   where to fetch an index from (by-hash first);
//! - [`staged_file`]: a file streamed into a temporary file while it is
//!   hashed under a size cap, and renamed to its final name only once it
//!   verifies;
//! - [`atomic`]: atomic write of a small file, fsync of a directory, syncfs,
//!   and the atomic symlink swap;
//! - [`staging`]: a fresh, uniquely named directory in which a tree is built;
//! - [`publish`]: flush a staged tree to disk and swap the symlink that
//!   clients follow to it;
//! - [`generations`]: which published trees to keep (the current one and
//!   the `keep` newest complete ones before it) and removing the rest.
//!
//! Everything here is synchronous file-system work; async callers run it in
//! `spawn_blocking` or, for [`staged_file::StagedFile::write`], call it with
//! each received chunk.

mod error;

pub mod atomic;
pub mod generations;
pub mod publish;
pub mod release_files;
pub mod staged_file;
pub mod staging;

pub use error::TreeError;
pub use release_files::{RELEASE_FILES, RELEASE_LIMIT};
pub use staged_file::{StagedFile, VerifiedFile};
