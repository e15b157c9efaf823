//! Reading one HTTP/1.1 response byte by byte from a raw TCP stream, for
//! tests that speak HTTP by hand (slow clients, pipelining, hostile paths),
//! and connecting from a chosen loopback address (127.0.0.2 is a second
//! "host" on Linux).

use std::net::{IpAddr, SocketAddr};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

/// A connection to `to` from address `from` (any port), e.g. 127.0.0.2.
pub async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match from {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// Reads one response (a `Content-Length` or a small chunked body);
/// returns its status and head (lower case).
pub async fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).await.unwrap(),
            1,
            "connection closed early"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    if head.contains("transfer-encoding: chunked") {
        // Small bodies only: read up to the last (empty) chunk.
        let mut body = Vec::new();
        while !(body.ends_with(b"\r\n0\r\n\r\n") || body == b"0\r\n\r\n") {
            assert_eq!(s.read(&mut byte).await.unwrap(), 1, "body cut short");
            body.push(byte[0]);
        }
    } else {
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await.unwrap();
    }
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head)
}
