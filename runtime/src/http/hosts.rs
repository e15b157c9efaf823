//! At most `max_conns` requests in flight per upstream host: one semaphore
//! per host key (`host:port`), shared by every request to that host.

use super::url::{host_key, Url};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Per-host request limits; `0` means unlimited.
#[derive(Debug)]
pub struct HostLimits {
    max_conns: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl HostLimits {
    /// At most `max_conns` requests per host (0: no limit).
    pub fn new(max_conns: usize) -> HostLimits {
        HostLimits {
            max_conns,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// The semaphore of `url`'s host; `None` when unlimited.
    pub fn for_url(&self, url: &Url) -> Option<Arc<Semaphore>> {
        if self.max_conns == 0 {
            return None;
        }
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        Some(
            hosts
                .entry(host_key(url))
                .or_insert_with(|| Arc::new(Semaphore::new(self.max_conns)))
                .clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_semaphore_per_host_and_port() {
        let limits = HostLimits::new(2);
        let a = limits.for_url(&Url::parse("http://h/x").unwrap()).unwrap();
        let b = limits
            .for_url(&Url::parse("http://h:80/y").unwrap())
            .unwrap();
        let c = limits.for_url(&Url::parse("https://h/y").unwrap()).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(a.available_permits(), 2);
        assert!(HostLimits::new(0)
            .for_url(&Url::parse("http://h/").unwrap())
            .is_none());
    }
}
