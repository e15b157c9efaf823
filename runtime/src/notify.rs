//! systemd's readiness protocol (`sd_notify`, `Type=notify`): a datagram
//! such as `READY=1`, `STOPPING=1` or `STATUS=…` sent to the socket named by
//! `NOTIFY_SOCKET`. Without that variable (not started by systemd, or not
//! `Type=notify`) nothing is sent; a failure is only logged, since the
//! program works the same either way.

use std::ffi::OsStr;

/// The service is ready (listening): `READY=1`.
pub const READY: &str = "READY=1";
/// The service is stopping: `STOPPING=1`.
pub const STOPPING: &str = "STOPPING=1";

/// Sends `state` (e.g. [`READY`], [`STOPPING`], `"STATUS=…"`) to systemd's
/// notification socket if `NOTIFY_SOCKET` is set; failures are only logged.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send_notify(&path, state) {
        tracing::warn!(socket = %path.to_string_lossy(), error = %e, "cannot notify systemd");
    }
}

/// Sends `STATUS=<text>`, the one-line status `systemctl status` shows.
pub fn status(text: &str) {
    notify(&format!("STATUS={}", text.replace('\n', " ")));
}

/// Sends `state` to the datagram socket `path` (`@name`: an abstract socket).
pub fn send_notify(path: &OsStr, state: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let bytes = path.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        // An abstract socket name.
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(path)?,
    };
    let socket = UnixDatagram::unbound()?;
    socket.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_reaches_a_datagram_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        send_notify(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }
}
