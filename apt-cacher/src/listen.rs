//! Where the cacher listens, and what it tells systemd. With socket
//! activation (`apt-cacher.socket`) systemd owns the listening sockets and
//! passes them as file descriptors 3, 4, … (`LISTEN_PID` = our pid,
//! `LISTEN_FDS` = how many); the cacher then accepts on every one of them
//! instead of binding `listen_address`. Because the sockets outlive the
//! process, connections that arrive while the cacher restarts wait in the
//! kernel's backlog: none is refused. Without those variables the cacher
//! binds each `listen_address` itself: `":port"` as one dual-stack socket on
//! `[::]` (IPv4 clients arrive as `::ffff:a.b.c.d`, which the server turns
//! back into plain IPv4 at accept), or on `0.0.0.0` when the host has no
//! IPv6; an explicit `[::]:port` is IPv6 only, so it can be listed next to
//! `0.0.0.0:port`.
//!
//! [`notify`] (from `runtime::notify`) sends `READY=1` / `STOPPING=1` to
//! systemd when `NOTIFY_SOCKET` is set (`Type=notify`); without it, it does nothing.

use crate::listen_address::ListenAddr;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

/// The first file descriptor systemd passes (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: i32 = 3;

/// The most sockets taken from systemd (`LISTEN_FDS` above it is an error).
pub const MAX_LISTEN_FDS: u32 = 64;

/// The listen backlog of a socket the cacher binds (the kernel caps it at
/// `net.core.somaxconn`): clients beyond `max_clients` wait there.
const BACKLOG: i32 = 4096;

/// Why no listening socket could be had.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Binding an address of `listen_address` failed.
    #[error("listening on {addr} (listen_address): {source}")]
    Bind {
        /// The configured address.
        addr: ListenAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The socket-activation variables are malformed or a passed
    /// descriptor is not a listening TCP socket.
    #[error("socket activation (LISTEN_FDS): {0}")]
    Activation(String),
    /// Neither systemd passed a socket nor `listen_address` names one.
    #[error("listen_address: no address to listen on")]
    NoAddress,
}

/// Where the listening sockets came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Bound by the cacher from `listen_address`.
    Bound,
    /// Passed by systemd (socket activation).
    Activated,
}

/// The sockets the cacher accepts on (at least one).
#[derive(Debug)]
pub struct Listening {
    /// The listening sockets.
    pub sockets: Vec<tokio::net::TcpListener>,
    /// Where they came from.
    pub origin: Origin,
}

/// The listening sockets: systemd's (socket activation) if it passed any to
/// this process, otherwise every address of `addrs` bound now. The
/// activation variables stay in the environment (removing them from a
/// multi-threaded process is unsound): a child cannot mistake them for its
/// own, as `LISTEN_PID` names this process.
pub fn listeners(addrs: &[ListenAddr]) -> Result<Listening, ListenError> {
    let activated = activated()?;
    let (std_listeners, origin) = if activated.is_empty() {
        let bound = addrs
            .iter()
            .map(|&addr| bind(addr).map_err(|source| ListenError::Bind { addr, source }))
            .collect::<Result<Vec<_>, _>>()?;
        (bound, Origin::Bound)
    } else {
        (activated, Origin::Activated)
    };
    let mut sockets = Vec::with_capacity(std_listeners.len());
    for (i, l) in std_listeners.into_iter().enumerate() {
        let setup = l
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(l));
        match (setup, origin) {
            (Ok(l), _) => sockets.push(l),
            (Err(source), Origin::Activated) => {
                return Err(ListenError::Activation(format!(
                    "file descriptor {}: {source}",
                    LISTEN_FDS_START + i as i32
                )))
            }
            (Err(source), Origin::Bound) => {
                let addr = addrs.get(i).copied().unwrap_or(ListenAddr::Any(0));
                return Err(ListenError::Bind { addr, source });
            }
        }
    }
    if sockets.is_empty() {
        return Err(ListenError::NoAddress);
    }
    Ok(Listening { sockets, origin })
}

/// Binds one `listen_address`.
fn bind(addr: ListenAddr) -> std::io::Result<std::net::TcpListener> {
    match addr {
        ListenAddr::Any(port) => bind_every(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))),
        // An IPv6 wildcard written out is IPv6 only (it may be listed next
        // to 0.0.0.0); an IPv4-mapped address needs IPv4 on the socket.
        ListenAddr::At(a @ SocketAddr::V6(v6)) => {
            bind_socket(a, v6.ip().to_ipv4_mapped().is_none())
        }
        ListenAddr::At(a) => bind_socket(a, false),
    }
}

/// Every address, IPv6 and IPv4: one dual-stack socket on `dual` (`[::]`
/// and the port), or `0.0.0.0` with the same port when the host cannot
/// bind IPv6 there (no IPv6 in the kernel, or IPv6 disabled).
fn bind_every(dual: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    match bind_socket(dual, false) {
        Err(e) if no_ipv6(&e) => {
            let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, dual.port()));
            tracing::info!(
                tried = %dual,
                error = %e,
                address = %v4,
                "no IPv6 on this host: listening on IPv4 only"
            );
            bind_socket(v4, false)
        }
        other => other,
    }
}

/// True when `e` says that this host cannot bind an IPv6 socket (as
/// opposed to a port in use or a permission).
fn no_ipv6(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL | libc::EPROTONOSUPPORT)
    )
}

/// A listening TCP socket on `addr` (`SO_REUSEADDR`, close-on-exec, IPv6
/// only when `v6_only`).
fn bind_socket(addr: SocketAddr, v6_only: bool) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(v6_only)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Set once systemd's descriptors have been taken: they are owned only once.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The sockets systemd passed to this process (none without activation).
fn activated() -> Result<Vec<std::net::TcpListener>, ListenError> {
    let (Some(pid), Some(fds)) = (
        std::env::var_os("LISTEN_PID"),
        std::env::var_os("LISTEN_FDS"),
    ) else {
        return Ok(Vec::new());
    };
    let pid = pid.to_string_lossy();
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        // Meant for another process (e.g. our parent): not ours to use.
        return Ok(Vec::new());
    }
    let fds = fds.to_string_lossy();
    let count: u32 = fds
        .trim()
        .parse()
        .map_err(|_| ListenError::Activation(format!("LISTEN_FDS={fds:?} is not a number")))?;
    if count > MAX_LISTEN_FDS {
        return Err(ListenError::Activation(format!(
            "LISTEN_FDS={count}: at most {MAX_LISTEN_FDS} sockets are taken"
        )));
    }
    let fds: Vec<i32> = (0..count as i32).map(|i| LISTEN_FDS_START + i).collect();
    // Check that every descriptor is a socket before taking ownership of any.
    for &fd in &fds {
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).map_err(|e| {
            ListenError::Activation(format!("file descriptor {fd} is not open: {e}"))
        })?;
        if !target.to_string_lossy().starts_with("socket:") {
            return Err(ListenError::Activation(format!(
                "file descriptor {fd} is {}, not a socket",
                target.display()
            )));
        }
    }
    if fds.is_empty() {
        return Ok(Vec::new());
    }
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(ListenError::Activation(format!(
            "file descriptors {LISTEN_FDS_START}.. were already taken"
        )));
    }
    // Owned from here on: each is closed when dropped, also on an error.
    let listeners: Vec<std::net::TcpListener> = fds.iter().map(|&fd| take_listener(fd)).collect();
    for (fd, listener) in fds.iter().zip(&listeners) {
        if let Err(e) = listener.local_addr() {
            return Err(ListenError::Activation(format!(
                "file descriptor {fd} is not a TCP socket: {e}"
            )));
        }
    }
    Ok(listeners)
}

/// Takes ownership of descriptor `fd` as a TCP listener.
///
/// One of the crate's audited `unsafe` blocks (the others are the memory
/// maps of `mapped` and `sendfile(2)`, see `lib.rs`): `FromRawFd` is unsafe because
/// the caller must own the descriptor. Here systemd handed it to this
/// process for exactly this use, [`activated`] checked that it is an open
/// socket, and `TAKEN` ensures it is taken at most once.
#[allow(unsafe_code)]
fn take_listener(fd: i32) -> std::net::TcpListener {
    use std::os::fd::FromRawFd;
    // SAFETY: see above — the descriptor is open, a socket, and owned by nobody else.
    unsafe { std::net::TcpListener::from_raw_fd(fd) }
}

/// Sends `state` to systemd when `NOTIFY_SOCKET` is set (`runtime::notify`).
pub use runtime::notify::notify;

#[cfg(test)]
mod tests {
    use super::*;

    fn has_ipv6_loopback() -> bool {
        std::net::TcpListener::bind("[::1]:0").is_ok()
    }

    #[test]
    fn any_port_is_one_dual_stack_socket() {
        if !has_ipv6_loopback() {
            eprintln!("SKIPPED: this host has no ::1");
            return;
        }
        let l = bind(ListenAddr::Any(0)).unwrap();
        let addr = l.local_addr().unwrap();
        assert_eq!(addr.ip(), std::net::IpAddr::from(Ipv6Addr::UNSPECIFIED));
        for ip in ["127.0.0.1", "::1"] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            std::net::TcpStream::connect((ip, addr.port())).unwrap();
            let (_, peer) = l.accept().unwrap();
            // The dual-stack socket sees IPv4 clients as ::ffff:a.b.c.d.
            assert_eq!(peer.ip().to_canonical(), ip);
        }
    }

    #[test]
    fn no_ipv6_falls_back_to_ipv4() {
        // An address this host does not have fails like a host without
        // IPv6 (EADDRNOTAVAIL): the same port on 0.0.0.0 is bound instead.
        let l = bind_every("[2001:db8::1]:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        assert_eq!(addr.ip(), std::net::IpAddr::from(Ipv4Addr::UNSPECIFIED));
        std::net::TcpStream::connect(("127.0.0.1", addr.port())).unwrap();
    }

    #[test]
    fn explicit_wildcards_can_be_listed_together() {
        if !has_ipv6_loopback() {
            eprintln!("SKIPPED: this host has no ::1");
            return;
        }
        let v4 = bind(ListenAddr::At("0.0.0.0:0".parse().unwrap())).unwrap();
        let port = v4.local_addr().unwrap().port();
        // [::] is IPv6 only: the same port next to 0.0.0.0 binds.
        let v6 = bind(ListenAddr::At(SocketAddr::from((
            Ipv6Addr::UNSPECIFIED,
            port,
        ))))
        .unwrap();
        std::net::TcpStream::connect(("::1", port)).unwrap();
        assert!(v6.accept().is_ok());
        // ":port" wants both and finds IPv4 taken: a clear error, no fallback.
        let e = bind(ListenAddr::Any(port)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
        drop(v4);
    }
}
