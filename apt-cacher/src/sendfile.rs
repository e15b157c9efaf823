//! The client socket, sending memory-mapped file bytes with `sendfile(2)`.
//!
//! Large cache files and large downloads in flight reach hyper as slices of
//! a shared memory map ([`crate::mapped`]). Written with `writev`, every
//! byte is copied from the page cache into the socket: with hundreds of
//! clients of one file that copy is most of the proxy's CPU time. When a
//! buffer hyper writes lies wholly inside such a map, [`ClientSocket`]
//! sends the same file range with `sendfile` instead, and the socket takes
//! references to the page-cache pages, as nginx does with `sendfile on`.
//!
//! hyper still frames every response: the status line and headers (and any
//! other bytes) go out with an ordinary write, flagged `MSG_MORE` when map
//! bytes follow so that they share a packet. The bytes sent are the same
//! either way; only how they reach the socket differs. Maps only cover
//! bytes that are written and never change afterwards, and a map keeps its
//! file open while hyper holds any slice of it.

use crate::mapped;
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Buffers smaller than this are written as they are: `sendfile` pays off
/// for large slices (HTTP/1 bodies go out in 1 MiB frames), and HTTP/2's
/// 16 KiB DATA frames keep their single `writev`.
const MIN_SENDFILE: usize = 64 * 1024;

/// Bytes sent with `sendfile` since start (all connections).
static SENT: AtomicU64 = AtomicU64::new(0);

/// Bytes sent with `sendfile` since start, by all connections.
pub fn bytes_sent() -> u64 {
    SENT.load(Ordering::Relaxed)
}

/// `sendfile` errors that mean "not possible for this file" (a file system
/// without it, an offset it cannot take): the bytes are written instead.
fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOVERFLOW | libc::EOPNOTSUPP)
    )
}

/// A client TCP connection whose writes of mapped file bytes use `sendfile`.
#[derive(Debug)]
pub struct ClientSocket(TcpStream);

impl ClientSocket {
    /// Wraps an accepted client connection.
    pub fn new(stream: TcpStream) -> ClientSocket {
        ClientSocket(stream)
    }

    /// Runs the non-blocking socket operation `op` once the socket is
    /// writable, until it does not report `WouldBlock`.
    fn poll_op(
        &self,
        cx: &mut Context<'_>,
        mut op: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_io(Interest::WRITABLE, &mut op) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

/// `sendfile(2)` of `len` bytes of `file` at `offset` to the socket `out`.
fn sendfile(out: &TcpStream, file: &std::fs::File, offset: u64, len: usize) -> io::Result<usize> {
    let mut off = libc::off_t::try_from(offset).map_err(io::Error::other)?;
    // SAFETY: both descriptors are open for the whole call (the socket is
    // borrowed, the file belongs to a map the caller holds), and `off` is a
    // valid, writable off_t.
    #[allow(unsafe_code)]
    let n = unsafe { libc::sendfile(out.as_raw_fd(), file.as_raw_fd(), &mut off, len) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

impl AsyncRead for ClientSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // The first large buffer that lies in a map.
        let found = bufs.iter().enumerate().find_map(|(i, b)| {
            if b.len() < MIN_SENDFILE {
                return None;
            }
            mapped::file_range(b).map(|(map, offset)| (i, map, offset))
        });
        match found {
            None => Pin::new(&mut self.0).poll_write_vectored(cx, bufs),
            // Nothing (or only empty buffers) before it: send the file range.
            Some((i, map, offset)) if bufs[..i].iter().all(|b| b.is_empty()) => {
                let len = bufs[i].len();
                match self.poll_op(cx, || sendfile(&self.0, map.file(), offset, len)) {
                    Poll::Ready(Ok(n)) => {
                        SENT.fetch_add(n as u64, Ordering::Relaxed);
                        Poll::Ready(Ok(n))
                    }
                    Poll::Ready(Err(e)) if unsupported(&e) => {
                        Pin::new(&mut self.0).poll_write_vectored(cx, &bufs[i..=i])
                    }
                    other => other,
                }
            }
            Some((i, _, _)) => {
                // What comes before the map bytes (headers, framing): sent
                // now, held for the map bytes that follow (MSG_MORE).
                let sock = socket2::SockRef::from(&self.0);
                self.poll_op(cx, || {
                    sock.send_vectored_with_flags(&bufs[..i], libc::MSG_MORE | libc::MSG_NOSIGNAL)
                })
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::io::Write;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Bytes of a map go out through `sendfile`, mixed in order with other
    /// buffers, whole and in odd slices; the peer reads exactly them.
    #[tokio::test]
    async fn mapped_and_plain_buffers_arrive_in_order() {
        let len = mapped::MIN_MAPPED as usize + 4321;
        let data: Vec<u8> = (0..len).map(|i| (i % 239) as u8).collect();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&data).unwrap();
        // SAFETY: the file is not changed while mapped.
        #[allow(unsafe_code)]
        let map: Bytes = unsafe { mapped::map(f.as_file()) }
            .unwrap()
            .expect("resident");
        assert!(mapped::file_range(&map[10..5000]).is_some());
        assert!(mapped::file_range(b"not mapped").is_none());

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut sock = ClientSocket::new(TcpStream::connect(addr).await.unwrap());
        let head = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        let sent_before = bytes_sent();
        let pieces = [
            map.slice(0..100_000),
            map.slice(100_000..100_001),
            map.slice(100_001..len - 7),
            map.slice(len - 7..len),
        ];
        let mut expected = head.clone();
        let mut bufs: Vec<Bytes> = vec![Bytes::from(head)];
        for p in pieces {
            expected.extend_from_slice(&p);
            bufs.push(p);
            bufs.push(Bytes::from_static(b"\r\n"));
            expected.extend_from_slice(b"\r\n");
        }
        // Write everything with vectored writes, advancing by what each took.
        let mut cur = 0usize; // index into bufs
        let mut off = 0usize; // offset into bufs[cur]
        while cur < bufs.len() {
            let slices: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&bufs[cur][off..]))
                .chain(bufs[cur + 1..].iter().map(|b| IoSlice::new(b)))
                .collect();
            let mut n = sock.write_vectored(&slices).await.unwrap();
            assert!(n > 0);
            while n > 0 {
                let left = bufs[cur].len() - off;
                if n >= left {
                    n -= left;
                    cur += 1;
                    off = 0;
                } else {
                    off += n;
                    n = 0;
                }
            }
        }
        sock.shutdown().await.unwrap();
        drop(sock);
        let got = reader.await.unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes differ");
        // The large map slices went out through sendfile (other tests may
        // add to the counter too, hence at least).
        assert!(bytes_sent() - sent_before >= (len - 100_008) as u64);
    }
}
