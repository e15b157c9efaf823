//! Client grace: a client served a Release keeps seeing that generation's
//! plain paths for `generation_grace`, even after a newer one is swapped
//! in; previous generations are removed once their grace period is over.
//!
//! A client is first its connection (address and port): apt fetches a
//! suite's Release and then its indices over one connection, so several
//! apt processes behind one address (a NAT gateway, or a host running
//! updates in parallel) each keep the generation they were served, even
//! when the Release changes between them. A request on a new connection
//! (apt reconnected mid-update) falls back to what its address was served
//! last.

use super::*;

/// At most this many clients (connections and addresses, each per suite)
/// are remembered.
const MAX_CLIENTS: usize = 200_000;

/// Who was served a Release: one connection, or (the fallback) every
/// connection from one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Client {
    /// One connection: the client's address and port.
    Connection(SocketAddr),
    /// Any connection from this address.
    Address(IpAddr),
}

impl Generations {
    /// Remembers that `client` (its connection and its address) was served
    /// the Release of `gen`.
    pub(super) fn record_client(&self, client: SocketAddr, suite: &Suite, gen: &Gen) {
        let mut c = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if c.len() >= MAX_CLIENTS {
            c.retain(|_, (_, t)| now.duration_since(*t) < self.grace);
        }
        // Still full (one client opening connection after connection):
        // connections are forgotten first (their requests fall back to
        // their address), then everything: a bounded table, at worst a
        // client served the current generation.
        if c.len() >= MAX_CLIENTS {
            c.retain(|(who, _, _), _| matches!(who, Client::Address(_)));
        }
        if c.len() >= MAX_CLIENTS {
            c.clear();
        }
        for who in [Client::Connection(client), Client::Address(client.ip())] {
            c.insert((who, suite.mapping, suite.dir.clone()), (gen.id, now));
        }
    }

    /// The generation whose plain paths `client` should see in `suite`:
    /// the one its connection was served, else the one its address was
    /// served last, while still in its grace period; else the current one.
    pub(crate) fn gen_for_client(&self, client: SocketAddr, suite: &Suite) -> Option<Arc<Gen>> {
        let st = suite.state();
        let current = st.current.clone()?;
        let c = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let served = [Client::Connection(client), Client::Address(client.ip())]
            .into_iter()
            .find_map(|who| c.get(&(who, suite.mapping, suite.dir.clone())));
        if let Some((id, t)) = served {
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
