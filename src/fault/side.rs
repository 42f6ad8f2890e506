//! One side of a proxied connection, as the proxy's loop reads and writes
//! it: the socket itself, or, when the proxy ends TLS (`[tls] proxy_cert`),
//! the TLS session over it, so the loop sees HTTP/2 in the clear either
//! way. A reset acts on the socket beneath: SO_LINGER 0, then the close
//! sends an RST (and no TLS close_notify, as when a link drops).

use crate::net::{ReadHalf, Stream, WriteHalf};
use rustix::net::sockopt::set_socket_linger;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What the proxy needs to end its clients' TLS and speak TLS on to the target.
#[derive(Clone)]
pub struct ProxyTls {
    /// The certificate and key it presents, ALPN `h2`.
    pub server: Arc<rustls::ServerConfig>,
    /// The scenario's `[tls]` settings, toward the target.
    pub client: Arc<rustls::ClientConfig>,
    /// The name the target's certificate must prove.
    pub name: rustls::pki_types::ServerName<'static>,
}

/// A TLS session, server or client end, over a socket.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

enum Rd {
    Plain(ReadHalf),
    Tls(tokio::io::ReadHalf<Box<dyn Io>>),
}

enum Wr {
    Plain(WriteHalf),
    Tls(tokio::io::WriteHalf<Box<dyn Io>>),
}

/// One side; its halves None once closed.
pub(super) struct Side {
    rd: Option<Rd>,
    wr: Option<Wr>,
    /// The socket beneath, valid while either half lives.
    raw: RawFd,
}

/// Makes the next close of this socket send RST instead of FIN (TCP; a Unix socket just closes).
pub(super) fn abort(s: &impl AsFd) {
    let _ = set_socket_linger(s, Some(Duration::ZERO));
}

impl Side {
    /// The socket itself.
    pub(super) fn plain(s: Stream) -> Side {
        let raw = s.as_fd().as_raw_fd();
        let (rd, wr) = s.into_split();
        Side {
            rd: Some(Rd::Plain(rd)),
            wr: Some(Wr::Plain(wr)),
            raw,
        }
    }

    /// Ends a client's TLS on `s`.
    pub(super) async fn accept(s: Stream, tls: &ProxyTls) -> std::io::Result<Side> {
        let raw = s.as_fd().as_raw_fd();
        let session = tokio_rustls::TlsAcceptor::from(tls.server.clone()).accept(s).await?;
        Ok(Side::tls(Box::new(session), raw))
    }

    /// Starts TLS to the target on `s`.
    pub(super) async fn connect(s: Stream, tls: &ProxyTls) -> std::io::Result<Side> {
        let raw = s.as_fd().as_raw_fd();
        let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
        let session = connector.connect(tls.name.clone(), s).await?;
        Ok(Side::tls(Box::new(session), raw))
    }

    fn tls(session: Box<dyn Io>, raw: RawFd) -> Side {
        let (rd, wr) = tokio::io::split(session);
        Side {
            rd: Some(Rd::Tls(rd)),
            wr: Some(Wr::Tls(wr)),
            raw,
        }
    }

    pub(super) fn is_reading(&self) -> bool {
        self.rd.is_some()
    }

    pub(super) fn is_writing(&self) -> bool {
        self.wr.is_some()
    }

    /// Stops reading this side (it closed).
    pub(super) fn stop_reading(&mut self) {
        self.rd = None;
    }

    /// Reads into `buf`; never returns once this side is closed.
    pub(super) async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.rd.as_mut() {
            Some(Rd::Plain(r)) => r.read(buf).await,
            Some(Rd::Tls(r)) => r.read(buf).await,
            None => std::future::pending().await,
        }
    }

    /// Writes `bytes`, if this side is still open for writing; false on a failed write.
    pub(super) async fn write(&mut self, bytes: &[u8]) -> bool {
        match self.wr.as_mut() {
            Some(Wr::Plain(w)) => w.write_all(bytes).await.is_ok(),
            Some(Wr::Tls(w)) => w.write_all(bytes).await.is_ok(),
            None => true,
        }
    }

    /// Sends what a TLS session holds back (a record is written whole); plain sockets hold nothing.
    pub(super) async fn flush(&mut self) -> bool {
        match self.wr.as_mut() {
            Some(Wr::Tls(w)) => w.flush().await.is_ok(),
            _ => true,
        }
    }

    /// Aborts the socket: an RST, without a FIN (or a close_notify) first.
    pub(super) fn reset(&mut self) {
        if self.rd.is_some() || self.wr.is_some() {
            // SAFETY: a half still owns the socket, so the descriptor is open.
            abort(&unsafe { BorrowedFd::borrow_raw(self.raw) });
        }
        if let Some(Wr::Plain(wr)) = self.wr.take() {
            // Close without the FIN a dropped write half would send first.
            wr.forget();
        }
        self.rd = None;
    }

    /// Closes the write side: a FIN (after a close_notify under TLS).
    pub(super) async fn finish(&mut self) {
        match self.wr.take() {
            Some(Wr::Plain(mut w)) => {
                let _ = w.shutdown().await;
            }
            Some(Wr::Tls(mut w)) => {
                let _ = w.shutdown().await;
            }
            None => {}
        }
    }
}
