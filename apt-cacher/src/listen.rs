//! Where the cacher listens, and what it tells systemd. With socket
//! activation (`apt-cacher.socket`) systemd owns the listening socket and
//! passes it as file descriptor 3 (`LISTEN_PID` = our pid, `LISTEN_FDS` ≥ 1);
//! the cacher then accepts on it instead of binding `listen_address`.
//! Because the socket outlives the process, connections that arrive while
//! the cacher restarts wait in the kernel's backlog: none is refused.
//! Without those variables the cacher binds `listen_address` itself.
//!
//! [`notify`] sends `READY=1` / `STOPPING=1` to systemd when
//! `NOTIFY_SOCKET` is set (`Type=notify`); without it, it does nothing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

/// The first file descriptor systemd passes (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: i32 = 3;

/// Why no listening socket could be had.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Binding `listen_address` failed.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The socket-activation variables are malformed or the passed
    /// descriptor is not a listening TCP socket.
    #[error("socket activation (LISTEN_FDS): {0}")]
    Activation(String),
}

/// The listening socket: systemd's (socket activation) if it passed one to
/// this process, otherwise `addr` bound now. The second value is true for
/// systemd's socket. The activation variables stay in the environment
/// (removing them from a multi-threaded process is unsound): a child cannot
/// mistake them for its own, as `LISTEN_PID` names this process.
pub fn listener(addr: SocketAddr) -> Result<(tokio::net::TcpListener, bool), ListenError> {
    let (std_listener, activated) = match activated()? {
        Some(l) => (l, true),
        None => (
            std::net::TcpListener::bind(addr)
                .map_err(|source| ListenError::Bind { addr, source })?,
            false,
        ),
    };
    let setup = std_listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(std_listener));
    match setup {
        Ok(l) => Ok((l, activated)),
        Err(source) if activated => Err(ListenError::Activation(format!(
            "file descriptor {LISTEN_FDS_START}: {source}"
        ))),
        Err(source) => Err(ListenError::Bind { addr, source }),
    }
}

/// Set once systemd's descriptor has been taken: it is owned only once.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The socket systemd passed to this process, if any.
fn activated() -> Result<Option<std::net::TcpListener>, ListenError> {
    let (Some(pid), Some(fds)) = (
        std::env::var_os("LISTEN_PID"),
        std::env::var_os("LISTEN_FDS"),
    ) else {
        return Ok(None);
    };
    let pid = pid.to_string_lossy();
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        // Meant for another process (e.g. our parent): not ours to use.
        return Ok(None);
    }
    let fds = fds.to_string_lossy();
    let count: u32 = fds
        .trim()
        .parse()
        .map_err(|_| ListenError::Activation(format!("LISTEN_FDS={fds:?} is not a number")))?;
    if count == 0 {
        return Ok(None);
    }
    if count > 1 {
        tracing::warn!(
            count,
            "systemd passed several sockets; listening on the first (file descriptor 3) only"
        );
    }
    let fd = LISTEN_FDS_START;
    // Check that the descriptor is a socket before taking ownership of it.
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map_err(|e| ListenError::Activation(format!("file descriptor {fd} is not open: {e}")))?;
    if !target.to_string_lossy().starts_with("socket:") {
        return Err(ListenError::Activation(format!(
            "file descriptor {fd} is {}, not a socket",
            target.display()
        )));
    }
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(ListenError::Activation(format!(
            "file descriptor {fd} was already taken"
        )));
    }
    let listener = take_listener(fd);
    match listener.local_addr() {
        Ok(_) => Ok(Some(listener)),
        Err(e) => Err(ListenError::Activation(format!(
            "file descriptor {fd} is not a TCP socket: {e}"
        ))),
    }
}

/// Takes ownership of descriptor `fd` as a TCP listener.
///
/// This is the one `unsafe` line of the crate: `FromRawFd` is unsafe because
/// the caller must own the descriptor. Here systemd handed it to this
/// process for exactly this use, [`activated`] checked that it is an open
/// socket, and `TAKEN` ensures it is taken at most once.
#[allow(unsafe_code)]
fn take_listener(fd: i32) -> std::net::TcpListener {
    use std::os::fd::FromRawFd;
    // SAFETY: see above — the descriptor is open, a socket, and owned by nobody else.
    unsafe { std::net::TcpListener::from_raw_fd(fd) }
}

/// Sends `state` (e.g. `"READY=1"`, `"STOPPING=1"`) to systemd's
/// notification socket if `NOTIFY_SOCKET` is set; failures are only logged.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send_notify(&path, state) {
        tracing::warn!(socket = %path.to_string_lossy(), error = %e, "cannot notify systemd");
    }
}

fn send_notify(path: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
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
