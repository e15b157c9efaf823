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
}

/// One suite of one mapping.
#[derive(Debug)]
pub struct Suite {
    pub(crate) mapping: usize,
    pub(crate) dir: String,
    pub(crate) path: PathBuf,
    pub(crate) lock: tokio::sync::Mutex<()>,
    pub(crate) state: RwLock<SuiteState>,
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
}
