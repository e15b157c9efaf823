//! Benchmarks of apt-cacher against its references, run side by side in
//! one process (`bench/cacher.sh` runs them; they are `#[ignore]`d in
//! normal test runs). The cacher under test is the release binary named by
//! `CACHER_BIN`; the reference upstream is nginx (`NGINX`, default
//! `/usr/sbin/nginx`) serving the same files. Everything listens on
//! 127.0.0.1. Sizes can be scaled down with environment variables (see
//! each benchmark).

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::{AptEnv, Repo};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(addr: SocketAddr) {
    let start = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{addr} never came up"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// CPU seconds (user + system, all threads) that process `pid` has used,
/// plus, with `children`, those of its live children (nginx's workers).
fn cpu_secs(pid: u32, children: bool) -> f64 {
    let ticks = |stat: &str| -> Option<(u32, f64)> {
        // Fields after the ")" that closes the command name: state is 3,
        // ppid 4, utime 14, stime 15 (1-based, as in proc(5)).
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ppid = f.get(1)?.parse().ok()?;
        let t: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some((ppid, t / 100.0))
    };
    let mut total = 0.0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let me = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok());
        if let Some((ppid, t)) = ticks(&stat) {
            if me == Some(pid) || (children && ppid == pid) {
                total += t;
            }
        }
    }
    total
}

/// CPU seconds this test process has used so far.
fn own_cpu_secs() -> f64 {
    cpu_secs(std::process::id(), false)
}

/// A child process killed (by its own pid) when dropped.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        // SIGTERM first (nginx's master then stops its workers), then SIGKILL.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        std::thread::sleep(Duration::from_millis(100));
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Nginx {
    p: Proc,
    addr: SocketAddr,
    log: PathBuf,
}

fn nginx(root: &Path, work: &Path) -> Nginx {
    std::fs::create_dir_all(work).unwrap();
    let port = free_port();
    let log = work.join("access.log");
    let conf = work.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off; worker_processes 2; pid {w}/nginx.pid; error_log {w}/error.log;\n\
             events {{ worker_connections 4096; }}\n\
             http {{ access_log {log}; sendfile on; tcp_nopush on; keepalive_requests 100000;\n\
               client_body_temp_path {w}; proxy_temp_path {w}; fastcgi_temp_path {w}; uwsgi_temp_path {w}; scgi_temp_path {w};\n\
               server {{ listen 127.0.0.1:{port}; root {root}; }} }}\n",
            w = work.display(),
            log = log.display(),
            root = root.display()
        ),
    )
    .unwrap();
    let bin = std::env::var("NGINX").unwrap_or_else(|_| "/usr/sbin/nginx".into());
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(work)
        .spawn()
        .expect("starting nginx");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_listening(addr);
    Nginx {
        p: Proc(child),
        addr,
        log,
    }
}

impl Nginx {
    fn requests_for(&self, path: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&format!("GET {path} ")))
            .count()
    }
}

struct Cacher {
    p: Proc,
    addr: SocketAddr,
}

fn cacher(dir: &Path, upstream: SocketAddr) -> (Cacher, Duration) {
    let port = free_port();
    std::fs::create_dir_all(dir).unwrap();
    let conf = dir.join("cacher.toml");
    std::fs::write(
        &conf,
        format!(
            "listen_address = \"127.0.0.1:{port}\"\nmeta_dir = \"{}\"\ncache_dir = \"{}\"\ncache_capacity = 100\nmax_conns = 0\n[log]\nlevel = \"warning\"\n[mapping]\ndebian = \"http://{upstream}\"\n",
            dir.join("meta").display(),
            dir.join("cache").display()
        ),
    )
    .unwrap();
    let bin =
        std::env::var("CACHER_BIN").unwrap_or_else(|_| "target-cacher/release/apt-cacher".into());
    let start = Instant::now();
    let child = Command::new(&bin)
        .arg("-f")
        .arg(&conf)
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_listening(addr);
    (
        Cacher {
            p: Proc(child),
            addr,
        },
        start.elapsed(),
    )
}

impl Cacher {
    /// Peak resident set size (VmHWM) in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.p.0.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

fn line(what: &str, reference: &str, ref_v: f64, ours: f64, unit: &str, target: &str) {
    let ratio = if ref_v > 0.0 { ours / ref_v } else { f64::NAN };
    println!("{what:<48} {reference:<14} {ref_v:>10.3} {unit:<5} | apt-cacher {ours:>10.3} {unit:<5} | ratio {ratio:>6.3} (target {target})");
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(2000)
        .build()
        .unwrap()
}

/// GETs `url` and discards the body; returns (bytes, time to first byte).
async fn fetch(client: &reqwest::Client, url: &str) -> (u64, Duration) {
    let start = Instant::now();
    let mut r = client.get(url).send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    let mut n = 0;
    let mut ttfb = None;
    while let Some(c) = r.chunk().await.unwrap() {
        ttfb.get_or_insert(start.elapsed());
        n += c.len() as u64;
    }
    (n, ttfb.unwrap_or(start.elapsed()))
}

/// `clients` concurrent GETs of `url`; every 20th client also compares
/// every byte it receives with `expected` (a sample, so that the check does
/// not dominate the clients' CPU time). Returns the wall time and the
/// bytes received.
async fn concurrent(url: &str, clients: usize, expected: Arc<Vec<u8>>) -> (Duration, u64) {
    let c = client();
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (c, url, expected) = (c.clone(), url.to_string(), expected.clone());
            tokio::spawn(async move {
                if i % 20 != 0 {
                    return fetch(&c, &url).await.0;
                }
                let mut r = c.get(&url).send().await.unwrap();
                assert!(r.status().is_success(), "{url}: {}", r.status());
                let mut n = 0usize;
                while let Some(chunk) = r.chunk().await.unwrap() {
                    assert!(
                        expected.get(n..n + chunk.len()) == Some(&chunk[..]),
                        "client {i}: wrong bytes at offset {n}"
                    );
                    n += chunk.len();
                }
                assert_eq!(n, expected.len(), "client {i}: short body");
                n as u64
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    (start.elapsed(), total)
}

fn write_big(path: &Path, mib: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    // MiB `i` holds bytes `(i * 7 + j * 13) % 251`: one period-251 pattern,
    // written from offset `i * 155 % 251` (155 * 13 = 7 mod 251), so this
    // debug-built test does no per-byte work for each MiB.
    let pattern: Vec<u8> = (0..(1 << 20) + 251).map(|j| (j * 13 % 251) as u8).collect();
    for i in 0..mib {
        let k = i * 155 % 251;
        f.write_all(&pattern[k..k + (1 << 20)]).unwrap();
    }
}

/// apt-get downloading every package of a generated repository: direct, cold cacher, warm cacher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_apt_all_packages() {
    let n = env_usize("BENCH_PACKAGES", 2000);
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("www"))
        .generated_packages(n, 8192)
        .build()
        .unwrap();
    let ng = nginx(repo.root(), &tmp.path().join("nginx"));
    let names: Vec<String> = repo
        .packages()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    async fn run(uri: &str, names: &[&str]) -> Duration {
        let mut apt = AptEnv::new().unwrap();
        apt.add_source(uri, "stable", &["main"]).unwrap();
        apt.update_async().await.unwrap().ok_clean().unwrap();
        let start = Instant::now();
        apt.install_download_only_async(names)
            .await
            .unwrap()
            .ok_clean()
            .unwrap();
        let t = start.elapsed();
        assert_eq!(apt.downloaded_archives().unwrap().len(), names.len());
        t
    }
    // Rounds of direct / cold (a fresh cacher) / warm, each ratio taken
    // within its round (the machine's speed drifts between rounds); the
    // median round is reported, with all of them.
    let rounds = env_usize("BENCH_ROUNDS", 3);
    let mut results = Vec::new();
    for round in 0..rounds {
        let direct = run(&format!("http://{}", ng.addr), &names).await;
        let (c, _) = cacher(&tmp.path().join(format!("cacher{round}")), ng.addr);
        let uri = format!("http://{}/debian", c.addr);
        let cold = run(&uri, &names).await;
        let warm = run(&uri, &names).await;
        println!(
            "  round {}: direct {:.3} s, cold {:.3} s ({:.3}), warm {:.3} s ({:.3})",
            round + 1,
            direct.as_secs_f64(),
            cold.as_secs_f64(),
            cold.as_secs_f64() / direct.as_secs_f64(),
            warm.as_secs_f64(),
            warm.as_secs_f64() / direct.as_secs_f64()
        );
        results.push((direct, cold, warm));
    }
    let median = |f: &dyn Fn(&(Duration, Duration, Duration)) -> f64| {
        let mut v: Vec<f64> = results.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let direct = median(&|r| r.0.as_secs_f64());
    println!(
        "apt-get install --download-only of {n} packages (8 KiB each), median of {rounds} rounds:"
    );
    line(
        "  cold cacher vs direct",
        "nginx direct",
        direct,
        direct * median(&|r| r.1.as_secs_f64() / r.0.as_secs_f64()),
        "s",
        "<= 1.1",
    );
    line(
        "  warm cacher vs direct",
        "nginx direct",
        direct,
        direct * median(&|r| r.2.as_secs_f64() / r.0.as_secs_f64()),
        "s",
        "<= 1.0",
    );
}

/// 200 concurrent clients of one cold 200 MiB file: exactly one upstream
/// request. `BENCH_ROUNDS` rounds (3), each nginx direct then a cold file
/// through the cacher, alternating; per-round ratios and their median.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_concurrent_cold_big_file() {
    let clients = env_usize("BENCH_CLIENTS", 200);
    let mib = env_usize("BENCH_MIB", 200);
    let rounds = env_usize("BENCH_ROUNDS", 3).max(1);
    let tmp = tempfile::tempdir().unwrap();
    let www = tmp.path().join("www");
    let cold_name = |r: usize| match r {
        0 => "big2.deb".to_string(),
        r => format!("big2-{r}.deb"),
    };
    write_big(&www.join("pool/big.deb"), mib);
    for r in 0..rounds {
        write_big(&www.join("pool").join(cold_name(r)), mib);
    }
    let ng = nginx(&www, &tmp.path().join("nginx"));
    let ng_pid = ng.p.0.id();
    let expected = Arc::new(std::fs::read(www.join("pool/big.deb")).unwrap());
    let (c, _) = cacher(&tmp.path().join("cacher"), ng.addr);
    let c_pid = c.p.0.id();
    println!("{clients} concurrent clients x {mib} MiB, cold, {rounds} rounds:");
    // CPU seconds so far: nginx (with its workers), this process, the cacher.
    let cpu = || {
        (
            cpu_secs(ng_pid, true),
            own_cpu_secs(),
            cpu_secs(c_pid, false),
        )
    };
    let mut ratios = Vec::new();
    for r in 0..rounds {
        let (cpu_ng0, cpu_me0, _) = cpu();
        let url = format!("http://{}/pool/big.deb", ng.addr);
        let (direct, bytes) = concurrent(&url, clients, expected.clone()).await;
        let (cpu_ng1, cpu_me1, cpu_c1) = cpu();
        assert_eq!(bytes, ((clients * mib) as u64) << 20);
        let name = cold_name(r);
        let url = format!("http://{}/debian/pool/{name}", c.addr);
        let (cold, bytes) = concurrent(&url, clients, expected.clone()).await;
        let (cpu_ng2, cpu_me2, cpu_c2) = cpu();
        assert_eq!(bytes, ((clients * mib) as u64) << 20);
        let upstream_requests = ng.requests_for(&format!("/pool/{name}"));
        println!(
            "  round {r}: upstream requests through the cacher: {upstream_requests}; CPU seconds, direct: nginx {:.2}, clients {:.2} | through the cacher: apt-cacher {:.2}, nginx {:.2}, clients {:.2}",
            cpu_ng1 - cpu_ng0,
            cpu_me1 - cpu_me0,
            cpu_c2 - cpu_c1,
            cpu_ng2 - cpu_ng1,
            cpu_me2 - cpu_me1
        );
        line(
            &format!("  round {r}: wall time"),
            "nginx direct",
            direct.as_secs_f64(),
            cold.as_secs_f64(),
            "s",
            "<= 1.2",
        );
        assert_eq!(upstream_requests, 1);
        ratios.push(cold.as_secs_f64() / direct.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "  wall-time ratios: {} (median {:.3}; target <= 1.2)",
        ratios
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(", "),
        ratios[ratios.len() / 2]
    );

    // Warm-hit throughput of one client, with three clients: this
    // process's reqwest (which shares the two cores with the servers and
    // the test harness), curl, and apt's own http method (apt-helper
    // download-file, the real client; it writes the file, as apt does).
    // Best of 5, alternating the two servers.
    let url_direct = format!("http://{}/pool/big2.deb", ng.addr);
    let url_cacher = format!("http://{}/debian/pool/big2.deb", c.addr);
    let mb = mib as f64 * 1.048576;
    let cl = client();
    let out = tmp.path().join("apt-helper.out");
    for client_name in ["reqwest (in-process)", "curl", "apt-helper download-file"] {
        let mut best = (f64::MAX, f64::MAX);
        for _ in 0..5 {
            for (i, url) in [&url_direct, &url_cacher].into_iter().enumerate() {
                let t = Instant::now();
                match client_name {
                    "curl" => external(Command::new("curl").args(["-sf", "-o", "/dev/null", url])),
                    "apt-helper download-file" => {
                        let _ = std::fs::remove_file(&out);
                        external(
                            Command::new("/usr/lib/apt/apt-helper")
                                .args(["-o", "Acquire::http::Proxy=DIRECT", "download-file", url])
                                .arg(&out),
                        )
                    }
                    _ => {
                        fetch(&cl, url).await;
                    }
                }
                let secs = t.elapsed().as_secs_f64();
                if i == 0 {
                    best.0 = best.0.min(secs);
                } else {
                    best.1 = best.1.min(secs);
                }
            }
        }
        line(
            &format!("warm-hit throughput, one client: {client_name}"),
            "nginx",
            mb / best.0,
            mb / best.1,
            "MB/s",
            ">= 0.8",
        );
    }
}

/// Runs an external client to completion; it must succeed.
fn external(cmd: &mut Command) {
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("running an external client");
    assert!(status.success(), "{cmd:?}: {status}");
}

/// Time to first byte of a cold miss, against the upstream's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_ttfb_cold_miss() {
    let files = 30;
    let tmp = tempfile::tempdir().unwrap();
    let www = tmp.path().join("www");
    for i in 0..files {
        write_big(&www.join(format!("pool/f{i}.deb")), 1);
    }
    let ng = nginx(&www, &tmp.path().join("nginx"));
    let (c, _) = cacher(&tmp.path().join("cacher"), ng.addr);
    let cl = client();
    let (mut up, mut ours) = (Vec::new(), Vec::new());
    for i in 0..files {
        up.push(
            fetch(&cl, &format!("http://{}/pool/f{i}.deb", ng.addr))
                .await
                .1,
        );
        ours.push(
            fetch(&cl, &format!("http://{}/debian/pool/f{i}.deb", c.addr))
                .await
                .1,
        );
    }
    up.sort();
    ours.sort();
    let (u, o) = (
        up[files / 2].as_secs_f64() * 1e3,
        ours[files / 2].as_secs_f64() * 1e3,
    );
    line(
        "cold-miss time to first byte (median)",
        "nginx",
        u,
        o,
        "ms",
        &format!("+{:.2} ms <= 10 ms", o - u),
    );
}

/// 1,000 concurrent keep-alive clients: peak RSS of the cacher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_1000_keepalive_clients_rss() {
    let clients = env_usize("BENCH_CONNS", 1000);
    let tmp = tempfile::tempdir().unwrap();
    let www = tmp.path().join("www");
    write_big(&www.join("pool/small.deb"), 1);
    let ng = nginx(&www, &tmp.path().join("nginx"));
    let (c, _) = cacher(&tmp.path().join("cacher"), ng.addr);
    let url = Arc::new(format!("http://{}/debian/pool/small.deb", c.addr));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                // One connection per client, kept alive for 5 requests.
                let cl = reqwest::Client::builder()
                    .no_proxy()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap();
                for _ in 0..5 {
                    fetch(&cl, &url).await;
                }
                cl
            })
        })
        .collect();
    let mut keep = Vec::new();
    for t in tasks {
        keep.push(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    let rss = c.peak_rss_kib() as f64 / 1024.0;
    println!(
        "{clients} keep-alive clients x 5 requests of 1 MiB in {:.2} s",
        elapsed.as_secs_f64()
    );
    line("  peak RSS", "limit", 150.0, rss, "MiB", "<= 1.0");
    drop(keep);
}

/// Start-up with 100,000 cached files: time until the first request is answered.
#[test]
#[ignore]
fn bench_startup_with_100k_files() {
    let files = env_usize("BENCH_FILES", 100_000);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cacher/cache/debian/pool/main");
    for d in 0..(files / 1000).max(1) {
        let dir = cache.join(format!("d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..1000.min(files) {
            std::fs::write(dir.join(format!("p{f}_1.0_amd64.deb#u")), b"x").unwrap();
        }
    }
    let upstream: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let (c, listening) = cacher(&tmp.path().join("cacher"), upstream);
    let url = "/debian/pool/main/d0/p0_1.0_amd64.deb";
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(c.addr).unwrap();
    write!(
        s,
        "GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    std::io::Read::read_to_string(&mut s, &mut resp).unwrap();
    let first = listening + t.elapsed();
    assert!(
        resp.starts_with("HTTP/1.1 200") && resp.ends_with("\r\n\r\nx"),
        "{resp}"
    );
    line(
        &format!("start-up with {files} cached files, first hit"),
        "limit",
        1.0,
        first.as_secs_f64(),
        "s",
        "<= 1.0",
    );
}
