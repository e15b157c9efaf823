//! Client grace: a client (address) served a Release keeps seeing that
//! generation's plain paths for `generation_grace`, even after a newer
//! one is swapped in; previous generations are removed once their grace
//! period is over.

use super::*;

impl Generations {
    /// Remembers that `client` was served the Release of `gen`.
    pub(super) fn record_client(&self, client: IpAddr, suite: &Suite, gen: &Gen) {
        let mut c = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if c.len() > 100_000 {
            c.retain(|_, (_, t)| now.duration_since(*t) < self.grace);
        }
        c.insert((client, suite.mapping, suite.dir.clone()), (gen.id, now));
    }

    /// The generation whose plain paths `client` should see in `suite`.
    pub(crate) fn gen_for_client(&self, client: IpAddr, suite: &Suite) -> Option<Arc<Gen>> {
        let st = suite.state();
        let current = st.current.clone()?;
        let c = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((id, t)) = c.get(&(client, suite.mapping, suite.dir.clone())) {
            if *id != current.id && t.elapsed() < self.grace {
                if let Some((g, _)) = st.previous.iter().find(|(g, _)| g.id == *id) {
                    return Some(g.clone());
                }
            }
        }
        Some(current)
    }

    /// Drops previous generations whose grace period is over (called by the ticker).
    pub(super) fn expire(&self, suite: &Suite) {
        let dead = {
            let mut st = suite.state_mut();
            let grace = self.grace;
            let (dead, live): (Vec<_>, Vec<_>) = std::mem::take(&mut st.previous)
                .into_iter()
                .partition(|(_, t)| t.elapsed() >= grace);
            st.previous = live;
            dead
        };
        remove_gens(dead);
    }
}

pub(super) fn remove_gens(dead: Vec<(Arc<Gen>, Instant)>) {
    for (g, _) in dead {
        let dir = g.dir.clone();
        tracing::debug!(dir = %dir.display(), "removing expired generation");
        // Readers holding open files keep them; the directory goes now.
        std::thread::spawn(move || {
            let _ = aptindex::tree::generations::remove(&dir);
        });
    }
}
