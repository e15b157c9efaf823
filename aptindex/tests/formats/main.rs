//! aptindex's one integration-test binary: real-world fixtures, round
//! trips, PDiff indices, signatures (with `pgp` and the real `gpgv`), trust
//! decisions and the property tests that feed every parser garbage, one
//! module each. One binary instead of one per file: the crate is linked
//! once. (The criterion bench `parse` stays a bench of its own.)
//!
//! Run one module with `cargo test -p aptindex --test formats trust::`.

mod fixtures;
mod pdiff;
mod proptests;
mod roundtrip;
mod signature;
mod signature_gpgv;
mod signature_proptest;
mod trust;
