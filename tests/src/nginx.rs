//! nginx serving a directory the way Debian runs it, for tests that put real
//! `apt-get` behind real nginx: the master process runs as root and the
//! workers as `www-data` (the `user` directive of Debian's `nginx.conf`), so
//! a file or directory that `www-data` cannot read gives `403 Forbidden`,
//! as it would on a real server. The `server { }` block is the one
//! `apt-mirror/README.md` recommends, read from the README at test time
//! (only `listen` and `root` are replaced), so the tests check the
//! configuration users copy.
//!
//! The served directory must be reachable by `www-data`: a temporary
//! directory is `0700`, so tests put what they serve under
//! [`public_tempdir`] (`0755`). Starting nginx this way needs root; without
//! it, or without the `www-data` user, [`Nginx::serve`] fails and says so.
//! nginx (Debian package `nginx-light` or `nginx`) runs in the foreground as
//! a child of the test, on 127.0.0.1, with its configuration, pid and logs in
//! a temporary directory; it is stopped when the [`Nginx`] is dropped.

use anyhow::{bail, ensure, Context};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user Debian's nginx workers run as.
pub const WORKER_USER: &str = "www-data";
/// The README that holds the recommended `server { }` block.
const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../apt-mirror/README.md");
/// In the README's block: replaced by the test's address.
const README_LISTEN: &str = "listen 80;";
/// In the README's block: replaced by the served directory.
const README_ROOT: &str = "root /var/spool/apt-mirror;";
/// How long nginx may take to start or to stop.
const START_STOP: Duration = Duration::from_secs(10);

/// A running nginx (see the module documentation).
#[derive(Debug)]
pub struct Nginx {
    binary: PathBuf,
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// One nginx worker process and the ids it runs with (real, effective,
/// saved, file system: `/proc/<pid>/status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    /// Process id.
    pub pid: u32,
    /// User ids.
    pub uids: [u32; 4],
    /// Group ids.
    pub gids: [u32; 4],
}

/// A temporary directory that other users may traverse and list (`0755`),
/// to hold what nginx's workers serve.
pub fn public_tempdir() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod 0755 {}", dir.path().display()))?;
    Ok(dir)
}

/// The ```` ```nginx ```` block of `apt-mirror/README.md`, verbatim.
pub fn readme_server_block() -> anyhow::Result<String> {
    let text = std::fs::read_to_string(README).with_context(|| format!("reading {README}"))?;
    let fence = "```nginx\n";
    let Some(start) = text.find(fence) else {
        bail!("{README}: no ```nginx block (the server block nginx tests are run with)");
    };
    let body = &text[start + fence.len()..];
    let Some(end) = body.find("\n```") else {
        bail!("{README}: the ```nginx block is not closed");
    };
    let block = &body[..end + 1];
    ensure!(
        block.trim_start().starts_with("server {"),
        "{README}: the ```nginx block is not a server {{ }} block:\n{block}"
    );
    Ok(block.to_string())
}

/// The README's block with `listen` on 127.0.0.1:`port` and `root` at `root`.
fn server_block(port: u16, root: &Path) -> anyhow::Result<String> {
    let root_str = root
        .to_str()
        .filter(|r| !r.contains(|c: char| c.is_whitespace() || ";\"'{}$\\".contains(c)))
        .with_context(|| format!("{}: not usable as nginx's root", root.display()))?;
    let mut block = readme_server_block()?;
    for (from, to) in [
        (README_LISTEN, format!("listen 127.0.0.1:{port};")),
        (README_ROOT, format!("root {root_str};")),
    ] {
        let n = block.matches(from).count();
        ensure!(
            n == 1,
            "{README}: the ```nginx block has {n} `{from}` (one expected):\n{block}"
        );
        block = block.replace(from, &to);
    }
    Ok(block)
}

/// `/proc/<pid>/status` lines `Uid:` and `Gid:`.
fn ids_of(pid: u32) -> anyhow::Result<([u32; 4], [u32; 4])> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let ids = |key: &str| -> anyhow::Result<[u32; 4]> {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .with_context(|| format!("{path}: no {key} line"))?;
        let v: Vec<u32> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("{path}: {key}{line}"))?;
        v.try_into()
            .map_err(|v| anyhow::anyhow!("{path}: {key} has {v:?}, not four ids"))
    };
    Ok((ids("Uid:")?, ids("Gid:")?))
}

/// The user and group id of `name` in `/etc/passwd`.
pub fn user_ids(name: &str) -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    let line = passwd
        .lines()
        .find(|l| l.split(':').next() == Some(name))
        .with_context(|| {
            format!("no user {name} in /etc/passwd (Debian's nginx runs its workers as {name})")
        })?;
    let f: Vec<&str> = line.split(':').collect();
    let id = |i: usize| -> anyhow::Result<u32> {
        f.get(i)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("/etc/passwd: bad line {line:?}"))
    };
    Ok((id(2)?, id(3)?))
}

/// The processes whose parent is `parent` (from `/proc/<pid>/stat`).
fn children_of(parent: u32) -> anyhow::Result<Vec<u32>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").context("reading /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // Gone meanwhile: not a child.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    Ok(out)
}

fn nginx_binary() -> anyhow::Result<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .context("nginx is not installed (Debian package nginx-light)")
}

impl Nginx {
    /// Starts nginx serving `root` (see the module documentation), and
    /// checks that its master runs as root and its workers as
    /// [`WORKER_USER`].
    pub fn serve(root: &Path) -> anyhow::Result<Nginx> {
        let binary = nginx_binary()?;
        let (self_uids, _) = ids_of(std::process::id())?;
        ensure!(
            self_uids[1] == 0,
            "nginx is started the way Debian starts it (master as root, workers as {WORKER_USER}): \
             the tests must run as root (effective uid is {})",
            self_uids[1]
        );
        let www = user_ids(WORKER_USER)?;
        let mut last_error = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().context("creating nginx's directory")?;
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .context("finding a free port")?
                .port();
            let d = dir.path().display();
            let mime = Path::new("/etc/nginx/mime.types");
            let types = if mime.is_file() {
                format!("include {};", mime.display())
            } else {
                String::new()
            };
            let conf = format!(
                r#"# As Debian's /etc/nginx/nginx.conf: master as root, workers as {WORKER_USER}.
user {WORKER_USER};
daemon off;
master_process on;
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
    sendfile on;
    tcp_nopush on;
    {types}
    default_type application/octet-stream;
    # From apt-mirror/README.md, verbatim but for `listen` and `root`:
{server}}}
"#,
                server = server_block(port, root)?,
            );
            let conf_path = dir.path().join("nginx.conf");
            std::fs::write(&conf_path, conf)
                .with_context(|| format!("writing {}", conf_path.display()))?;
            let child = Command::new(&binary)
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf_path)
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {}", binary.display()))?;
            let mut n = Nginx {
                binary: binary.clone(),
                child,
                port,
                dir,
            };
            let t = Instant::now();
            while t.elapsed() < START_STOP {
                if let Ok(Some(_)) = n.child.try_wait() {
                    break;
                }
                let up = TcpStream::connect(("127.0.0.1", port)).is_ok();
                let workers = n.workers()?;
                if up && !workers.is_empty() {
                    // A worker is seen between its setgid and its setuid on
                    // a busy machine: only a worker still not www-data when
                    // the start time is up is an error.
                    match n.check_users(&workers, www) {
                        Ok(()) => return Ok(n),
                        Err(e) if t.elapsed() + Duration::from_millis(20) >= START_STOP => {
                            return Err(e)
                        }
                        Err(_) => {}
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            last_error = n.error_log();
        }
        bail!("nginx did not start: {last_error}")
    }

    fn check_users(&self, workers: &[Worker], (uid, gid): (u32, u32)) -> anyhow::Result<()> {
        let (master_uids, _) = ids_of(self.child.id())?;
        ensure!(
            master_uids == [0; 4],
            "nginx master {} runs with uids {master_uids:?}, not as root",
            self.child.id()
        );
        for w in workers {
            ensure!(
                w.uids == [uid; 4] && w.gids == [gid; 4],
                "nginx worker {} runs with uids {:?} gids {:?}, not as {WORKER_USER} ({uid}:{gid})",
                w.pid,
                w.uids,
                w.gids
            );
        }
        Ok(())
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The worker processes (children of the master) and their ids.
    pub fn workers(&self) -> anyhow::Result<Vec<Worker>> {
        let mut out = Vec::new();
        for pid in children_of(self.child.id())? {
            // A worker that exited meanwhile is not listed.
            if let Ok((uids, gids)) = ids_of(pid) {
                out.push(Worker { pid, uids, gids });
            }
        }
        Ok(out)
    }

    /// The status code of a `GET` of `path` (HTTP/1.0, from 127.0.0.1).
    pub fn status(&self, path: &str) -> anyhow::Result<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))
            .with_context(|| format!("connecting to {}", self.url()))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut head = Vec::new();
        s.take(64 << 10)
            .read_to_end(&mut head)
            .with_context(|| format!("reading the response to GET {path}"))?;
        let line = String::from_utf8_lossy(&head[..head.len().min(64)]).to_string();
        line.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .with_context(|| format!("GET {path}: no status line in {line:?}"))
    }

    /// What nginx wrote to its error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // `nginx -s stop`: the master stops its workers, then exits; killed
        // only if it does not.
        let _ = Command::new(&self.binary)
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(self.dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(self.dir.path().join("error.log"))
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let t = Instant::now();
        while t.elapsed() < START_STOP {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_block_is_found_and_substituted() {
        let block = server_block(8080, Path::new("/srv/m")).unwrap();
        assert!(block.contains("listen 127.0.0.1:8080;"), "{block}");
        assert!(block.contains("root /srv/m;"), "{block}");
        assert!(!block.contains("/var/spool/apt-mirror"), "{block}");
        assert!(server_block(8080, Path::new("/srv/a b")).is_err());
    }
}
