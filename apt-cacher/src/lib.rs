//! `apt-cacher`: a verifying, never-inconsistent caching proxy for APT.
//!
//! Clients reach it by path prefix (`http://cacher:3142/debian/...`) or as
//! an HTTP proxy (`Acquire::http::Proxy`); both lead to the same cache.
//! Metadata is served as consistent generations ([`generation`]), every
//! file a Release or index lists is verified while it streams
//! ([`cache`]), concurrent requests for one file share one upstream
//! download, and pool files live in an LRU-evicted storage ([`cache`]).
//!
//! Modules, in the order a request meets them: [`server`] (HTTP),
//! [`routes`] (the axum router: the `/~/` [`pages`], the proxy as fallback,
//! the [`access_log`] layer), [`mapping`] (routing a repository request),
//! [`handler`] (what to serve), [`generation`]
//! (metadata) with [`generation::pdiff`] (PDiff patches) and [`generation::pool_lookup`] (loading
//! the index that should list a pool file), [`local`] (pool files from a
//! local mirror), [`cache`] (pool files: key,
//! coalesced verified downloads, storage, eviction), [`upstream`] (HTTP client) with
//! [`failover`] (a mapping's several upstream URLs), [`response`] (HTTP details),
//! [`mapped`] and [`sendfile`] (large files sent from the page cache).
//! [`config`], [`listen_address`], [`listen`], [`writable`], [`defaults`]
//! and [`logging`] set it up; [`metrics`] (with [`exposition`]) and
//! [`status`] report on it (`/~/metrics`, `/~/status`, `/~/status.json`);
//! [`time`] computes deadlines and HTTP dates without panicking.
// Audited `unsafe` blocks: the memory maps in `mapped`; `sendfile(2)` in
// `sendfile`; taking systemd's listening socket in `listen`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod access_log;
pub mod cache;
pub mod client_table;
pub mod client_timeouts;
pub mod config;
pub mod defaults;
pub mod exposition;
pub mod failover;
pub mod generation;
pub mod handler;
pub mod import;
pub mod listen;
pub mod listen_address;
pub mod local;
pub mod logging;
pub mod mapped;
pub mod mapping;
pub mod metrics;
pub mod pages;

pub mod response;
pub mod routes;
pub mod sendfile;
pub mod server;
pub mod status;
pub mod status_allow;
pub mod time;
pub mod upstream;
pub mod writable;

pub use anyhow::Context;
pub use config::Config;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the start waits for the scan of `cache_dir` before the
/// listener opens anyway (the scan goes on in the background).
const SCAN_WAIT: Duration = Duration::from_millis(250);
/// The shutdown token type [`start`] and [`run`] take.
pub use tokio_util::sync::CancellationToken;

/// A running cacher (see [`start`]).
#[derive(Debug)]
pub struct Running {
    /// The address it listens on (the first, when there are several).
    pub addr: SocketAddr,
    /// Every address it listens on, in `listen_address` order.
    pub addrs: Vec<SocketAddr>,
    /// The application state (for tests and metrics).
    pub app: Arc<handler::App>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets in-flight responses finish (bounded), and returns.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.wait().await;
    }

    /// Waits until the server ends (after its shutdown token is cancelled).
    pub async fn wait(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the server task failed");
        }
    }
}

/// Opens the cache, binds every address of `config.listen` (or takes the
/// sockets systemd passed) and starts serving in the background until
/// `shutdown` is cancelled. Use port 0 to get a free port (see
/// [`Running::addr`]).
pub async fn start(config: Config, shutdown: CancellationToken) -> anyhow::Result<Running> {
    // Each mapping's keyring: a start error before anything else is opened.
    let keyrings = generation::Keyrings::load(&config.mappings)?;
    writable::create_dirs(&config)?;
    let cache_dir = config.cache_dir.clone();
    let capacity = config.cache_capacity;
    let metrics = Arc::new(metrics::Metrics::new());
    let store_metrics = metrics.clone();
    let budget = {
        let d = cache::storage::UnverifiedBudget::default_for(capacity);
        cache::storage::UnverifiedBudget {
            capacity: config.unverified.capacity.unwrap_or(d.capacity),
            ttl: config.unverified.ttl.unwrap_or(d.ttl),
        }
    };
    let store = tokio::task::spawn_blocking(move || {
        cache::Storage::open_unscanned(&cache_dir, capacity, budget, store_metrics)
    })
    .await?
    .with_context(|| format!("opening the cache in {}", config.cache_dir.display()))?;
    let store = Arc::new(store);
    // The files already cached are indexed in the background: a large
    // cache (100,000 files) takes a second or more to walk, and the
    // listener need not wait for it (a file not indexed yet is found by
    // its `lstat`). A small one is done before the listener opens.
    let mut scan = {
        let (store, dir) = (store.clone(), config.cache_dir.clone());
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            match store.scan_existing() {
                Ok(()) => {
                    let (files, bytes) = store.usage();
                    tracing::info!(dir = %dir.display(), files, bytes, ms = started.elapsed().as_millis() as u64, "cached files indexed");
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot walk the whole cache; files not indexed are found when asked for")
                }
            }
        })
    };
    let _ = tokio::time::timeout(SCAN_WAIT, &mut scan).await;
    let (files, bytes) = store.usage();
    let upstream = Arc::new(
        upstream::Upstream::new(&config, metrics.clone())
            .context("building the upstream client")?,
    );
    let downloads = Arc::new(cache::InFlight::new(upstream, metrics.clone()));
    let mut router = mapping::Router::new(config.mappings.clone(), config.connect_allow.clone());
    let gens = Arc::new(
        generation::Generations::new(&config, router.clone(), downloads.clone())
            .with_context(|| format!("opening metadata in {}", config.meta_dir.display()))?
            .with_keyrings(keyrings),
    );
    // Cached generations are read back (pool maps from their sidecars)
    // while the sockets are bound; a pool request that comes before this
    // is done waits for it (generation/startup.rs).
    {
        let gens = gens.clone();
        tokio::spawn(async move { gens.load_all().await });
    }
    let listening = listen::listeners(&config.listen)?;
    let addrs = listening
        .sockets
        .iter()
        .map(|l| l.local_addr())
        .collect::<std::io::Result<Vec<_>>>()
        .context("the address of a listening socket")?;
    let Some(&addr) = addrs.first() else {
        anyhow::bail!("no listening socket");
    };
    let mut self_ports: Vec<u16> = addrs.iter().map(|a| a.port()).collect();
    self_ports.sort_unstable();
    self_ports.dedup();
    for &port in &self_ports {
        router.set_self_port(port);
    }
    let socket = match listening.origin {
        listen::Origin::Activated => "from systemd (socket activation)",
        listen::Origin::Bound => "bound",
    };
    // `address` first: tests and scripts read it from this line.
    let all = addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(",");
    tracing::info!(address = %addr, all_addresses = %all, socket, cached_files = files, cached_bytes = bytes, mappings = config.mappings.len(), "apt-cacher serving");
    let app = Arc::new(handler::App {
        router,
        cache: cache::Cache::new(store.clone(), downloads.clone(), metrics.clone())
            .with_max_unverified(config.unverified.max_size),
        store,
        downloads,
        gens: gens.clone(),
        local: Arc::new(local::LocalMirrors::new(metrics.clone())),
        config,
        metrics,
        self_ports,
    });
    tokio::spawn(gens.clone().ticker(shutdown.clone()));
    {
        // Removes cached files no kept generation references, after
        // `retention` (once the generations are loaded).
        let sweeper = Arc::new(cache::retention::Sweeper::new(
            app.store.clone(),
            gens,
            app.metrics.clone(),
            app.config.retention,
        ));
        tokio::spawn(sweeper.run(shutdown.clone()));
    }
    {
        // systemd learns that the stop has begun as soon as it has (the
        // grace time for responses in flight follows).
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            listen::notify("STOPPING=1");
        });
    }
    let task = {
        let (app, shutdown) = (app.clone(), shutdown.clone());
        tokio::spawn(async move {
            server::serve(listening.sockets, app.clone(), shutdown).await;
            remove_temp_files(&app.config).await;
            tracing::info!("apt-cacher stopped");
        })
    };
    listen::notify("READY=1");
    Ok(Running {
        addr,
        addrs,
        app,
        shutdown,
        task,
    })
}

/// Removes what downloads left in the temporary directories of `cache_dir`
/// and `meta_dir` (after a graceful stop: nothing there is complete).
async fn remove_temp_files(config: &Config) {
    let dirs = [config.cache_dir.join(".tmp"), config.meta_dir.join(".tmp")];
    let _ = tokio::task::spawn_blocking(move || {
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                match removed {
                    Ok(()) => tracing::debug!(path = %path.display(), "removed temporary file"),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove temporary file"),
                }
            }
        }
    })
    .await;
}

/// Runs the cacher until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    start(config, shutdown).await?.wait().await;
    Ok(())
}
