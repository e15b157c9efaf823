//! nginx on 127.0.0.1 with its own configuration, pid and log files in a
//! temporary directory, in the foreground, serving one directory the way
//! apt-mirror/README.md configures it (a copy of mirror_nginx_apt.rs's, until
//! the test kit has one).

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx, stopped when dropped.
pub struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx serving `root`; panics with its error log if it does not start.
    pub fn serve(root: &Path) -> Nginx {
        let nginx = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .expect("nginx is not installed (Debian package nginx-light)");
        let mut last_error = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
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
        location ~ /\. {{ deny all; }}
        location / {{ autoindex on; }}
    }}
}}
"#,
                root = root.display()
            );
            std::fs::write(dir.path().join("nginx.conf"), conf).expect("writing nginx.conf");
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
                .expect("starting nginx");
            let mut n = Nginx {
                child,
                port,
                _dir: dir,
            };
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
                std::fs::read_to_string(n._dir.path().join("error.log")).unwrap_or_default();
        }
        panic!("nginx did not start: {last_error}");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
