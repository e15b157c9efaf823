//! The open client connections, by client address (an IPv6 address by its
//! /64: one host owns a whole /64 and picks addresses from it at will, as
//! privacy addresses do): the per-address limit
//! (`max_clients_per_host`, so that one host holding idle connections
//! cannot take every `max_clients` place) and, when every place is taken
//! and another client waits, the choice of an idle keep-alive connection
//! to close first (the one idle longest, once idle for `idle_reap`). The
//! table holds one entry per open connection and one per address with a
//! connection, so it is bounded by `max_clients` (plus the one accepted
//! connection waiting for a place).

use crate::client_timeouts::Activity;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A connection refused because its address already holds its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{client} already holds {limit} connections (max_clients_per_host)")]
pub struct OverLimit {
    /// The client's address.
    pub client: IpAddr,
    /// The limit it reached.
    pub limit: usize,
    /// True for the first refusal since the address reached its limit (so
    /// that a flood is logged once, not once per connection).
    pub first: bool,
}

/// The open connections (see the module doc).
#[derive(Debug, Default)]
pub struct ClientTable {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    hosts: HashMap<IpAddr, Host>,
    conns: HashMap<u64, Activity>,
    next_id: u64,
}

#[derive(Debug, Default)]
struct Host {
    open: usize,
    /// A refusal was logged since the address reached its limit.
    refused: bool,
}

/// One admitted connection's entry; dropping it (when the connection
/// closes) frees its address's place.
#[derive(Debug)]
pub struct Slot {
    table: Arc<ClientTable>,
    client: IpAddr,
    id: u64,
}

impl ClientTable {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `client` (whose requests report to
    /// `activity`) unless that address already holds `limit` connections.
    pub fn admit(
        self: &Arc<Self>,
        client: IpAddr,
        limit: usize,
        activity: Activity,
    ) -> Result<Slot, OverLimit> {
        let client = host_key(client);
        let mut inner = self.lock();
        let host = inner.hosts.entry(client).or_default();
        if host.open >= limit {
            let first = !host.refused;
            host.refused = true;
            return Err(OverLimit {
                client,
                limit,
                first,
            });
        }
        host.open += 1;
        let id = inner.next_id;
        inner.next_id = inner.next_id.wrapping_add(1);
        inner.conns.insert(id, activity);
        Ok(Slot {
            table: self.clone(),
            client,
            id,
        })
    }

    /// Connections open from `client`.
    pub fn open_from(&self, client: IpAddr) -> usize {
        self.lock()
            .hosts
            .get(&host_key(client))
            .map_or(0, |h| h.open)
    }

    /// Asks the connection idle longest (at least `min_idle`: no request
    /// being served or begun) to close; false when there is none.
    pub fn reap_idle(&self, min_idle: Duration) -> bool {
        let inner = self.lock();
        let oldest = inner
            .conns
            .values()
            .filter_map(|a| a.idle_for().map(|idle| (idle, a)))
            .filter(|(idle, _)| *idle >= min_idle)
            .max_by_key(|(idle, _)| *idle);
        oldest.is_some_and(|(_, a)| a.reap_if_idle())
    }
}

/// The address a client's connections are counted under: an IPv4 address
/// (also written IPv4-mapped) as it is, an IPv6 address by its /64.
fn host_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.table.lock();
        inner.conns.remove(&self.id);
        if let Some(host) = inner.hosts.get_mut(&self.client) {
            host.open = host.open.saturating_sub(1);
            host.refused = false;
            if host.open == 0 {
                inner.hosts.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_host_is_counted_by_its_64() {
        let table = Arc::new(ClientTable::default());
        let a: IpAddr = "2001:db8:1:2::a".parse().unwrap();
        let a2: IpAddr = "2001:db8:1:2:ffff::b".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::a".parse().unwrap();
        let _held = table.admit(a, 1, Activity::default()).unwrap();
        assert!(table.admit(a2, 1, Activity::default()).is_err());
        assert!(table.admit(other, 1, Activity::default()).is_ok());
        assert_eq!(table.open_from(a2), 1);
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let _m = table.admit(mapped, 1, Activity::default()).unwrap();
        assert!(table.admit(v4, 1, Activity::default()).is_err());
    }

    #[tokio::test]
    async fn per_address_limit_and_reaping() {
        let table = Arc::new(ClientTable::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let held: Vec<Slot> = (0..3)
            .map(|_| table.admit(a, 3, Activity::default()).unwrap())
            .collect();
        let e = table.admit(a, 3, Activity::default()).unwrap_err();
        assert!(e.first, "{e}");
        assert!(!table.admit(a, 3, Activity::default()).unwrap_err().first);
        let other = table.admit(b, 3, Activity::default()).unwrap();
        assert_eq!((table.open_from(a), table.open_from(b)), (3, 1));
        drop(held);
        drop(other);
        assert_eq!(table.open_from(a), 0);
        assert!(table.lock().hosts.is_empty() && table.lock().conns.is_empty());

        // Only a connection idle long enough, and not one serving a request.
        let idle = Activity::default();
        let busy = Activity::default();
        let _s1 = table.admit(a, 3, idle.clone()).unwrap();
        let _s2 = table.admit(a, 3, busy.clone()).unwrap();
        let _request = busy.request();
        assert!(!table.reap_idle(Duration::from_secs(3600)));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(table.reap_idle(Duration::from_millis(10)));
        assert!(idle.reaped() && !busy.reaped());
    }
}
