//! One mirror's update ([`Update`]): what every step of it reads (the
//! run's context, the mirror's configuration, the counters, the snapshot
//! store). Its own file so that the steps (`run.rs`, `release.rs`,
//! `build.rs`, ...) depend on it and not on each other.

use super::{Context, Counters};
use crate::config::MirrorConfig;
use crate::snapshot::Store;

/// One mirror's update, from start to end (`run.rs`).
pub(super) struct Update<'a> {
    pub(super) ctx: &'a Context,
    pub(super) cfg: &'a MirrorConfig,
    pub(super) counters: &'a Counters,
    pub(super) store: Store,
}
