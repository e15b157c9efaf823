//! One suite of one mapping: its current generation, the previous ones
//! still in their grace period, when upstream was last checked, and the
//! lock that serializes its refreshes.

use super::revalidate::{KeptValidators, LastCheck};
use super::*;

#[derive(Debug, Default)]
pub(crate) struct SuiteState {
    pub(crate) loaded: bool,
    pub(crate) current: Option<Arc<Gen>>,
    pub(crate) previous: Vec<(Arc<Gen>, Instant)>,
    pub(crate) checked: Option<Instant>,
    /// How the last check of upstream (begun at `checked`) ended.
    pub(crate) last_check: LastCheck,
    /// The validators of the current generation's first Release file,
    /// for the next conditional GET (memory only: after a restart the
    /// first check is a plain GET).
    pub(crate) validators: Option<KeptValidators>,
    pub(crate) next_id: u64,
    /// Dropped for want of clients ([`super::idle`]): no longer served.
    pub(crate) dropped: bool,
    /// Who signed, what was left out, the last refusal.
    pub(crate) signature: super::signed::SuiteSignature,
}

/// One suite of one mapping.
#[derive(Debug)]
pub struct Suite {
    pub(crate) mapping: usize,
    pub(crate) dir: String,
    pub(crate) path: PathBuf,
    pub(crate) lock: tokio::sync::Mutex<()>,
    pub(crate) state: RwLock<SuiteState>,
    /// When a client last asked for its Release or an index (or when it
    /// was made or loaded): see [`super::idle`].
    pub(crate) last_asked: Mutex<Instant>,
}

impl Suite {
    pub(super) fn state(&self) -> std::sync::RwLockReadGuard<'_, SuiteState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }
    pub(super) fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, SuiteState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
    pub(crate) fn current(&self) -> Option<Arc<Gen>> {
        self.state().current.clone()
    }
    /// Notes that a client asked for this suite now.
    pub(crate) fn mark_asked(&self) {
        *self.last_asked.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }
    /// How long no client asked for it.
    pub(crate) fn idle_for(&self) -> Duration {
        self.last_asked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }
}
