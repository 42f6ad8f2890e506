//! A connected socket and a listener of either family, so that the fault
//! proxy, the built-in target and every channel treat TCP and Unix sockets
//! alike; and the connector tonic dials a Unix socket through.

use super::Address;
use hyper_util::rt::TokioIo;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{tcp, unix, TcpListener, TcpStream, UnixListener, UnixStream};

/// A connected socket, TCP (with Nagle off) or Unix.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Address {
    /// Connects to this address.
    pub async fn connect(&self) -> io::Result<Stream> {
        match self {
            Address::Tcp(a) => {
                let s = TcpStream::connect(a).await?;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
            _ => Ok(Stream::Unix(
                UnixStream::connect(self.unix_path().unwrap_or_default()).await?,
            )),
        }
    }

    /// Listens here. A socket file is removed when the listener is dropped; one
    /// that already exists is not replaced (the bind fails: address in use).
    pub async fn bind(&self) -> io::Result<Listener> {
        match self {
            Address::Tcp(a) => Ok(Listener::Tcp(TcpListener::bind(a).await?)),
            Address::Unix(p) => Ok(Listener::Unix(UnixListener::bind(p)?, Some(p.clone()))),
            Address::Abstract(_) => Ok(Listener::Unix(
                UnixListener::bind(self.unix_path().unwrap_or_default())?,
                None,
            )),
        }
    }
}

impl Stream {
    /// Splits into halves that each own their side of the socket.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Tcp(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
            Stream::Unix(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Unix(r), WriteHalf::Unix(w))
            }
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The reading side of a split [`Stream`].
#[derive(Debug)]
pub enum ReadHalf {
    Tcp(tcp::OwnedReadHalf),
    Unix(unix::OwnedReadHalf),
}

/// The writing side of a split [`Stream`]; dropping it shuts the socket's write side.
#[derive(Debug)]
pub enum WriteHalf {
    Tcp(tcp::OwnedWriteHalf),
    Unix(unix::OwnedWriteHalf),
}

impl ReadHalf {
    /// The socket both halves share.
    pub fn socket(&self) -> BorrowedFd<'_> {
        match self {
            ReadHalf::Tcp(r) => r.as_ref().as_fd(),
            ReadHalf::Unix(r) => r.as_ref().as_fd(),
        }
    }
}

impl WriteHalf {
    /// The socket both halves share.
    pub fn socket(&self) -> BorrowedFd<'_> {
        match self {
            WriteHalf::Tcp(w) => w.as_ref().as_fd(),
            WriteHalf::Unix(w) => w.as_ref().as_fd(),
        }
    }

    /// Drops this half without shutting the write side first (no FIN before a reset).
    pub fn forget(self) {
        match self {
            WriteHalf::Tcp(w) => w.forget(),
            WriteHalf::Unix(w) => w.forget(),
        }
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Tcp(r) => Pin::new(r).poll_read(cx, buf),
            ReadHalf::Unix(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(w) => Pin::new(w).poll_write(cx, buf),
            WriteHalf::Unix(w) => Pin::new(w).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(w) => Pin::new(w).poll_flush(cx),
            WriteHalf::Unix(w) => Pin::new(w).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(w) => Pin::new(w).poll_shutdown(cx),
            WriteHalf::Unix(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}

/// A listening socket of either family. A socket file it bound is removed on drop.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, Option<PathBuf>),
}

impl Listener {
    /// Accepts one connection (Nagle off for TCP).
    pub async fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Ok(Stream::Tcp(s))
            }
            Listener::Unix(l, _) => Ok(Stream::Unix(l.accept().await?.0)),
        }
    }

    /// Where it listens: the bound port for TCP, the address as bound for Unix.
    pub fn local_addr(&self) -> io::Result<Address> {
        match self {
            Listener::Tcp(l) => Ok(Address::Tcp(l.local_addr()?)),
            Listener::Unix(l, _) => {
                let a = l.local_addr()?;
                if let Some(p) = a.as_pathname() {
                    return Ok(Address::Unix(p.to_path_buf()));
                }
                use std::os::linux::net::SocketAddrExt;
                let a: std::os::unix::net::SocketAddr = a.into();
                match a.as_abstract_name() {
                    Some(n) => Ok(Address::Abstract(String::from_utf8_lossy(n).into_owned())),
                    None => Err(io::Error::other("an unnamed Unix listener")),
                }
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, Some(path)) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A tonic connector that dials `addr` for every connection a channel makes.
pub fn connector(
    addr: Address,
) -> impl tower::Service<
    tonic::transport::Uri,
    Response = TokioIo<Stream>,
    Error = io::Error,
    Future = impl std::future::Future<Output = io::Result<TokioIo<Stream>>> + Send,
> + Clone
       + Send
       + 'static {
    tower::service_fn(move |_: tonic::transport::Uri| {
        let addr = addr.clone();
        async move { addr.connect().await.map(TokioIo::new) }
    })
}
