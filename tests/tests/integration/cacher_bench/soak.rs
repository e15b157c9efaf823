//! The soak: does the release apt-cacher stay flat under hours of hostile
//! everyday traffic? Several isolated real apt-get clients loop over
//! `update` and `install --download-only` of random packages, and a few
//! HTTP clients fetch random pool files and indices (every third one hangs
//! up mid-body), while the upstream publishes a new generation every few
//! seconds and faults are injected in turn (5xx, truncation, corruption,
//! delays, resets, stalls). The cacher's RSS, open descriptors and threads
//! are sampled at start, every minute and at the end (after the clients
//! stop and a quiet spell). Criterion: the end sample is within a small
//! slack of the one taken after warm-up (minute 2): descriptors ≤ +16,
//! threads ≤ +8, RSS ≤ +64 MiB. `bench/soak.sh` runs it
//! (`SOAK_MINUTES`, default 30); `#[ignore]`d in normal test runs.

use super::{free_port, wait_listening, Proc};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::{AptEnv, Compression, PackageSpec, Repo, Times, Upstream};

const PACKAGES: usize = 40;
const APT_CLIENTS: usize = 4;
const HTTP_CLIENTS: usize = 3;

/// One sample of the cacher process.
#[derive(Clone, Copy, Debug)]
struct Sample {
    minute: f64,
    rss_kib: u64,
    fds: usize,
    threads: u64,
}

fn status_field(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn sample(pid: u32, start: Instant) -> Sample {
    Sample {
        minute: start.elapsed().as_secs_f64() / 60.0,
        rss_kib: status_field(pid, "VmRSS:"),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()),
        threads: status_field(pid, "Threads:"),
    }
}

fn print_sample(what: &str, s: &Sample) {
    println!(
        "soak {what:<8} t={:>6.2} min  rss={:>7} KiB  fds={:>4}  threads={:>3}",
        s.minute, s.rss_kib, s.fds, s.threads
    );
}

/// The release cacher, re-checking upstream every 2 s, with short upstream
/// timeouts so that stalls end quickly.
fn start_cacher(dir: &Path, upstream: SocketAddr) -> (Proc, SocketAddr) {
    let port = free_port();
    std::fs::create_dir_all(dir).unwrap();
    let conf = dir.join("cacher.toml");
    std::fs::write(
        &conf,
        format!(
            "listen_address = \"127.0.0.1:{port}\"\nmeta_dir = \"{}\"\ncache_dir = \"{}\"\n\
             cache_capacity = 1\ncheck_interval = 2\ncache_period = 1\nmax_conns = 8\n\
             [timeouts]\nidle_read = 3\noverall = 60\n\
             [log]\nlevel = \"error\"\n[mapping]\ndebian = \"http://{upstream}\"\n",
            dir.join("meta").display(),
            dir.join("cache").display()
        ),
    )
    .unwrap();
    let bin = std::env::var("CACHER_BIN").unwrap_or_else(|_| "target/release/apt-cacher".into());
    let child = Command::new(&bin)
        .arg("-f")
        .arg(&conf)
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_listening(addr);
    (Proc(child), addr)
}

/// Counters of what the clients saw.
#[derive(Default)]
struct Seen {
    apt_runs: AtomicUsize,
    apt_failed: AtomicUsize,
    mismatches: AtomicUsize,
    http_ok: AtomicUsize,
    http_failed: AtomicUsize,
    hangups: AtomicUsize,
    generations: AtomicUsize,
    faults: AtomicUsize,
}

/// A small deterministic generator (no shared RNG state between tasks).
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn pkg_name(state: &mut u64) -> String {
    format!("pkg{:04}", next(state) as usize % PACKAGES)
}

async fn apt_loop(mut apt: AptEnv, seed: u64, stop: Arc<AtomicBool>, seen: Arc<Seen>) {
    let mut rng = seed | 1;
    apt.retries(1).unwrap();
    while !stop.load(Ordering::Relaxed) {
        let out = apt.update_async().await.unwrap();
        let pkgs: Vec<String> = (0..3).map(|_| pkg_name(&mut rng)).collect();
        let names: Vec<&str> = pkgs.iter().map(String::as_str).collect();
        let inst = apt.install_download_only_async(&names).await.unwrap();
        for o in [&out, &inst] {
            seen.apt_runs.fetch_add(1, Ordering::Relaxed);
            if o.hash_sum_mismatch() {
                seen.mismatches.fetch_add(1, Ordering::Relaxed);
            }
            if !o.success() {
                seen.apt_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Forget the archives so that the next round downloads again.
        for deb in apt.downloaded_archives().unwrap_or_default() {
            let _ = std::fs::remove_file(deb);
        }
    }
}

async fn http_loop(
    addr: SocketAddr,
    repo: Arc<Mutex<Repo>>,
    seed: u64,
    stop: Arc<AtomicBool>,
    seen: Arc<Seen>,
) {
    let client = super::client();
    let mut rng = seed | 1;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let path = {
            let r = repo.lock().unwrap();
            let pkgs = r.packages();
            match next(&mut rng) % 4 {
                0 => "dists/stable/InRelease".to_string(),
                1 => "dists/stable/main/binary-amd64/Packages.xz".to_string(),
                _ => pkgs[next(&mut rng) as usize % pkgs.len()].pool_path.clone(),
            }
        };
        let url = format!("http://{addr}/debian/{path}");
        match client.get(&url).send().await {
            Ok(mut r) => {
                if n.is_multiple_of(3) {
                    let _ = r.chunk().await;
                    drop(r);
                    seen.hangups.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let mut ok = r.status().is_success();
                loop {
                    match r.chunk().await {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(_) => {
                            ok = false;
                            break;
                        }
                    }
                }
                let c = if ok { &seen.http_ok } else { &seen.http_failed };
                c.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                seen.http_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Publishes a new generation every 4 s (one package rebuilt at a new version).
fn churn(repo: Arc<Mutex<Repo>>, stop: Arc<AtomicBool>, seen: Arc<Seen>) {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut version = 1u64;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_secs(4));
        version += 1;
        let name = pkg_name(&mut rng);
        let mut r = repo.lock().unwrap();
        r.replace(PackageSpec::new(&name, &format!("{version}.0")).size(8_000));
        r.publish().unwrap();
        seen.generations.fetch_add(1, Ordering::Relaxed);
    }
}

/// Injects one fault every 3 s, in turn.
fn faults(up: &Upstream, stop: &AtomicBool, seen: &Seen) {
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_secs(3));
        match i % 8 {
            0 => up.fail_status("*.deb", 503, Times::N(3)),
            1 => up.fail_status("*InRelease", 500, Times::Once),
            2 => up.truncate("*.deb", 100, Times::N(2)),
            3 => up.corrupt("*.deb", Times::N(2)),
            4 => up.delay("*Packages*", Duration::from_secs(2), Times::N(2)),
            5 => up.reset("*", Times::N(2)),
            6 => up.stall("*.deb", Times::Once),
            _ => up.truncate("*Packages*", 50, Times::Once),
        }
        i += 1;
        seen.faults.fetch_add(1, Ordering::Relaxed);
    }
    up.clear_faults();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a long soak of the release binary: bench/soak.sh"]
async fn soak_mixed_apt_traffic_with_churn_and_faults() {
    let minutes: f64 = std::env::var("SOAK_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30.0);
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .by_hash(true)
        .compressions(&[Compression::Xz, Compression::Gz])
        .generated_packages(PACKAGES, 8_000)
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let repo = Arc::new(Mutex::new(repo));
    let (proc_, addr) = start_cacher(&tmp.path().join("cacher"), up.addr());
    let pid = proc_.0.id();
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let mut samples = vec![sample(pid, start)];
    print_sample("start", &samples[0]);

    let mut tasks = Vec::new();
    for i in 0..APT_CLIENTS {
        let mut apt = AptEnv::new().unwrap();
        apt.add_source(&format!("http://{addr}/debian"), "stable", &["main"])
            .unwrap();
        tasks.push(tokio::spawn(apt_loop(
            apt,
            0x1234_5678 + i as u64 * 7919,
            stop.clone(),
            seen.clone(),
        )));
    }
    for i in 0..HTTP_CLIENTS {
        tasks.push(tokio::spawn(http_loop(
            addr,
            repo.clone(),
            0xabcd_ef01 + i as u64 * 104_729,
            stop.clone(),
            seen.clone(),
        )));
    }
    let churner = {
        let (r, s, n) = (repo.clone(), stop.clone(), seen.clone());
        std::thread::spawn(move || churn(r, s, n))
    };
    let injector = {
        // The upstream moves to the injector thread (it is not `Sync`) and
        // comes back when the clients have stopped.
        let (s, n) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            faults(&up, &s, &n);
            up
        })
    };

    let total = Duration::from_secs_f64(minutes * 60.0);
    let mut next_sample = Duration::from_secs(60);
    while start.elapsed() < total {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if start.elapsed() >= next_sample {
            let s = sample(pid, start);
            print_sample("minute", &s);
            samples.push(s);
            next_sample += Duration::from_secs(60);
            assert!(
                proc_.0.id() == pid && Path::new(&format!("/proc/{pid}")).exists(),
                "the cacher died"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    churner.join().unwrap();
    let _up = injector.join().unwrap();
    // Quiet: pooled upstream connections and idle blocking threads time out.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let end = sample(pid, start);
    print_sample("end", &end);

    let n = |c: &AtomicUsize| c.load(Ordering::Relaxed);
    println!(
        "soak clients: apt runs {} (failed {}, hash sum mismatches {}), http ok {} failed {} hang-ups {}; upstream generations {}, faults injected {}",
        n(&seen.apt_runs),
        n(&seen.apt_failed),
        n(&seen.mismatches),
        n(&seen.http_ok),
        n(&seen.http_failed),
        n(&seen.hangups),
        n(&seen.generations),
        n(&seen.faults)
    );
    // The baseline after warm-up: minute 2 (or the last sample of a short run).
    let base = samples.get(2).or(samples.last()).copied().unwrap();
    let peak_rss = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    println!(
        "soak baseline (t={:.2} min) rss={} KiB fds={} threads={}; end rss={} KiB fds={} threads={}; peak sampled rss={} KiB",
        base.minute, base.rss_kib, base.fds, base.threads, end.rss_kib, end.fds, end.threads, peak_rss
    );
    assert!(n(&seen.apt_runs) > 0, "no apt run finished");
    assert_eq!(n(&seen.mismatches), 0, "apt saw a Hash Sum mismatch");
    assert!(
        end.fds <= base.fds + 16,
        "descriptors grew: {base:?} → {end:?}"
    );
    assert!(
        end.threads <= base.threads + 8,
        "threads grew: {base:?} → {end:?}"
    );
    assert!(
        end.rss_kib <= base.rss_kib + 64 * 1024,
        "RSS grew: {base:?} → {end:?}"
    );
}
