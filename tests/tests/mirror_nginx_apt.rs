//! The real stack: apt-mirror mirrors a generated upstream, real nginx
//! serves the mirror directory, and the real `apt-get update` and
//! `apt-get install --download-only` run against it, before and after an
//! update. Needs the Debian packages `nginx-light` (or `nginx`) and `apt`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{AptEnv, PackageSpec, Repo, Upstream};

/// nginx on 127.0.0.1 with its own configuration, pid and log files in a
/// temporary directory, in the foreground, serving `root`.
struct Nginx {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nginx {
    fn serve(root: &Path) -> Nginx {
        let nginx = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .expect("nginx is not installed (Debian package nginx-light)");
        let mut last_error = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let d = dir.path().display();
            let conf = format!(
                r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type application/octet-stream;
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        # As in the README: the lock, snapshot and pool directories are not served directly.
        location ~ /\. {{ deny all; }}
        location / {{ autoindex on; }}
    }}
}}
"#,
                root = root.display()
            );
            std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
            let child = Command::new(nginx)
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(dir.path().join("nginx.conf"))
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut n = Nginx { child, port, dir };
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = n.child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return n;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            last_error =
                std::fs::read_to_string(n.dir.path().join("error.log")).unwrap_or_default();
        }
        panic!("nginx did not start: {last_error}");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Status code of a GET of `path`.
    fn status(&self, path: &str) -> u16 {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        let head = String::from_utf8_lossy(&buf[..buf.len().min(64)]).to_string();
        head.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_mirror(config: &Path) -> u8 {
    let args = apt_mirror::Args {
        config: config.to_path_buf(),
        check_config: false,
        mirrors: Vec::new(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(apt_mirror::run(&args))
}

fn archive_names(apt: &AptEnv) -> Vec<String> {
    let mut v: Vec<String> = apt
        .downloaded_archives()
        .unwrap()
        .iter()
        .filter_map(|p: &PathBuf| p.file_name()?.to_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

#[test]
fn apt_get_through_nginx_before_and_after_an_update() {
    let tmp = tempfile::tempdir().unwrap();
    let mut repo = Repo::builder(tmp.path().join("upstream"))
        .by_hash(true)
        .translations(true)
        .generated_packages(8, 3000)
        .package(PackageSpec::new("tool", "1.0").size(5000))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    repo.key()
        .write_public(&tmp.path().join("key.gpg"))
        .unwrap();
    let mirror_dir = tmp.path().join("mirror");
    let config = tmp.path().join("mirror.toml");
    std::fs::write(
        &config,
        format!(
            r#"dir = "{}"
max_conns = 4
[mirror.deb]
url = "{}"
suites = ["stable"]
sections = ["main"]
architectures = ["amd64"]
keyring = "key.gpg"
"#,
            mirror_dir.display(),
            up.url()
        ),
    )
    .unwrap();
    assert_eq!(run_mirror(&config), 0);
    // The pool is shared between snapshots: a relative symlink nginx follows.
    let pool = std::fs::read_link(mirror_dir.join("deb/pool")).unwrap();
    assert!(
        pool.to_string_lossy().starts_with("../../.deb.pool-"),
        "{pool:?}"
    );

    let nginx = Nginx::serve(&mirror_dir);
    let mut apt = AptEnv::with_key(repo.key()).unwrap();
    apt.add_source(&format!("{}/deb", nginx.url()), "stable", &["main"])
        .unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["tool", "pkg0001"])
        .unwrap()
        .ok_clean()
        .unwrap();
    assert_eq!(
        archive_names(&apt),
        ["pkg0001_1.0_amd64.deb", "tool_1.0_amd64.deb"]
    );

    // A client that read the old InRelease before the swap...
    let old_release = std::fs::read_to_string(mirror_dir.join("deb/dists/stable/Release")).unwrap();
    let old_sha256 = old_release
        .lines()
        .skip_while(|l| !l.starts_with("SHA256:"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .find(|l| l.ends_with("main/binary-amd64/Packages.xz"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();

    // Upstream update: a new version of tool, pkg0001 removed, a new package.
    repo.replace(PackageSpec::new("tool", "2.0").size(6000));
    repo.remove("pkg0001");
    repo.add(PackageSpec::new("fresh", "1.0")).unwrap();
    repo.publish().unwrap();
    assert_eq!(run_mirror(&config), 0);

    // ...still finds its indices by hash in the new snapshot.
    assert_eq!(
        nginx.status(&format!(
            "/deb/dists/stable/main/binary-amd64/by-hash/SHA256/{old_sha256}"
        )),
        200
    );
    apt.clean().unwrap().ok().unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["tool", "fresh"])
        .unwrap()
        .ok_clean()
        .unwrap();
    assert_eq!(
        archive_names(&apt),
        ["fresh_1.0_amd64.deb", "tool_2.0_amd64.deb"]
    );
    let got = std::fs::read(apt.archives_dir().join("tool_2.0_amd64.deb")).unwrap();
    let want = std::fs::read(repo.root().join(&repo.package("tool").unwrap().pool_path)).unwrap();
    assert_eq!(got, want);
    let out = apt.install_download_only(&["pkg0001"]).unwrap();
    assert!(!out.success(), "removed package still installable");

    // Without by-hash on the client side too.
    apt.by_hash(false).unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    // The unchanged rerun keeps serving the same tree.
    let before = std::fs::read_link(mirror_dir.join("deb")).unwrap();
    assert_eq!(run_mirror(&config), 0);
    assert_eq!(std::fs::read_link(mirror_dir.join("deb")).unwrap(), before);
    apt.update().unwrap().ok_clean().unwrap();
}

#[test]
fn apt_get_through_nginx_flat_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("upstream"))
        .suite("flat/")
        .generated_packages(3, 1000)
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    repo.key()
        .write_public(&tmp.path().join("key.asc"))
        .unwrap();
    let mirror_dir = tmp.path().join("mirror");
    let config = tmp.path().join("mirror.toml");
    std::fs::write(
        &config,
        format!(
            "dir = \"{}\"\n[mirror.flat]\nurl = \"{}\"\nsuites = [\"flat/\"]\nkeyring = [\"key.asc\"]\n",
            mirror_dir.display(),
            up.url()
        ),
    )
    .unwrap();
    assert_eq!(run_mirror(&config), 0);
    let nginx = Nginx::serve(&mirror_dir);
    let mut apt = AptEnv::with_key(repo.key()).unwrap();
    apt.add_source(&format!("{}/flat", nginx.url()), "flat/", &[])
        .unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["pkg0002"])
        .unwrap()
        .ok_clean()
        .unwrap();
    assert_eq!(archive_names(&apt), ["pkg0002_1.0_amd64.deb"]);
}
