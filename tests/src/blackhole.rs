//! A TCP address on 127.0.0.1 where connecting hangs, for tests of connect
//! timeouts (a closed port refuses at once, which tests nothing).
//!
//! How: a socket listening with a backlog of 0 that never accepts, whose
//! accept queue this module fills with its own connections. Linux then drops
//! further SYNs (with the default `net.ipv4.tcp_abort_on_overflow = 0` and
//! also with 1, which only concerns the final ACK), so a new `connect()`
//! waits, retransmitting its SYN, until the client gives up. [`Blackhole::new`]
//! checks this: it fails unless a probe connection actually times out.

use anyhow::{bail, Context};
use socket2::{Domain, SockAddr, Socket, Type};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a probe connect may take before the queue counts as full.
const PROBE: Duration = Duration::from_millis(250);
/// Connections tried before giving up on filling the queue.
const MAX_FILL: usize = 16;

/// A listening address whose connects hang until dropped (see the module
/// documentation). Dropping it closes the listener and its queued
/// connections.
#[derive(Debug)]
pub struct Blackhole {
    addr: SocketAddr,
    _listener: Socket,
    _queued: Vec<TcpStream>,
}

impl Blackhole {
    /// Listens on 127.0.0.1 with a free port, fills the accept queue, and
    /// checks that one more connect times out (costs about a quarter second).
    pub fn new() -> anyhow::Result<Blackhole> {
        let listener =
            Socket::new(Domain::IPV4, Type::STREAM, None).context("creating a TCP socket")?;
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        listener
            .bind(&SockAddr::from(any))
            .context("binding 127.0.0.1:0")?;
        listener.listen(0).context("listen(0)")?;
        let addr = listener
            .local_addr()
            .context("reading the bound address")?
            .as_socket()
            .context("the bound address is not an IP address")?;
        let mut queued = Vec::new();
        while queued.len() < MAX_FILL {
            match TcpStream::connect_timeout(&addr, PROBE) {
                Ok(s) => queued.push(s),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Ok(Blackhole {
                        addr,
                        _listener: listener,
                        _queued: queued,
                    })
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("filling the accept queue of {addr}"))
                }
            }
        }
        bail!("{addr}: the accept queue did not fill after {MAX_FILL} connections")
    }

    /// The address (127.0.0.1 and a port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
