//! The driver's own HTTP/2 connections, called through by tonic's clients.
//!
//! A tonic `Channel` puts every call through a buffer task, a reconnect
//! layer, a timeout layer and hyper's dispatcher (two tasks spawned per
//! request) before h2 sees it. A [`Conn`] is an h2 `SendRequest` used
//! directly: a call opens its stream and sends its body from its own task,
//! and reads the response there; only the connection has a task of its own,
//! which also sends the keepalive pings. A body still being written when its
//! response comes (client and bidirectional streams) is finished on a task.
//! [`SharedConn`] keeps one connection per workload, dialled when first used and
//! again whenever it has closed, as a lazy channel does.
//!
//! Connections are made by a [`Connector`] with the workload's settings: the
//! target's address (TCP or Unix socket), TLS from the run's
//! [`super::Transport`], the connect timeout, and keepalive. The constant
//! parts of every request (scheme, authority, user agent) are built once per
//! connector; the driver bounds each call with its own deadline, so no
//! timer is added here. Readiness, reflection and the rpc workload's
//! readiness check dial through the same [`Connector`], so they test the path
//! the load takes ([`Connector::dial`] keeps the failure's words for them).
//! Only the client demo and the reference server's backend channels use
//! tonic's `Channel`: they stand for a user's program, which would.

use super::h2body::{status_of, Incoming, Pipe};
use super::heard::{Heard, Tap};
use super::Dial;
use bytes::Bytes;
use h2::client::SendRequest;
use http::header::{HeaderValue, USER_AGENT};
use http::uri::{Authority, Scheme};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::body::Body;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The user agent fdsoak's calls carry.
pub(super) const AGENT: &str = concat!("fdsoak/", env!("CARGO_PKG_VERSION"));
/// Flow-control windows, as hyper's HTTP/2 client (and so tonic's channel) sets them.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;
const MAX_SEND_BUFFER: usize = 1024 * 1024;

/// Makes connections to one address with one workload's settings.
#[derive(Clone)]
pub(crate) struct Connector(Arc<Settings>);

struct Settings {
    dial: Dial,
    tls: Option<super::tls::Client>,
    origin: Origin,
    connect_timeout: Duration,
    keepalive: Option<(Duration, Duration)>,
}

/// What every request on a connection carries, built once.
#[derive(Clone)]
struct Origin {
    scheme: Scheme,
    authority: Authority,
    agent: HeaderValue,
}

impl Connector {
    /// Connections to the dial's address in its transport, each bounded by
    /// `connect_timeout` (TCP, TLS and the HTTP/2 preface), with keepalive pings
    /// (interval, timeout) when given, so a dead connection is noticed.
    pub(crate) fn new(
        dial: &Dial,
        connect_timeout: Duration,
        keepalive: Option<(Duration, Duration)>,
    ) -> anyhow::Result<Self> {
        let tls = dial.transport.rustls(&dial.addr)?;
        let origin = Origin {
            scheme: if tls.is_some() { Scheme::HTTPS } else { Scheme::HTTP },
            authority: Authority::try_from(dial.transport.authority(&dial.addr))?,
            agent: HeaderValue::from_static(AGENT),
        };
        Ok(Connector(Arc::new(Settings {
            dial: dial.clone(),
            tls,
            origin,
            connect_timeout,
            keepalive,
        })))
    }

    /// Dials a new connection now. A failure is UNAVAILABLE, or DEADLINE_EXCEEDED on timeout.
    pub(crate) async fn connect(&self) -> Result<Conn, tonic::Code> {
        self.dial().await.map_err(|e| {
            tracing::debug!("connecting to {}: {}", self.0.dial.addr, e.message);
            e.code
        })
    }

    /// Dials a new connection now, keeping what went wrong in words: which step
    /// failed (`connect error`, or `transport error` for TLS and the HTTP/2
    /// preface, as tonic's channels said it) and why.
    pub(crate) async fn dial(&self) -> Result<Conn, DialError> {
        // Boxed: the handshake's state (TLS included) is large, and would otherwise be
        // moved with every call's future, though only a dial ever needs it.
        match tokio::time::timeout(self.0.connect_timeout, Box::pin(self.handshake())).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(message)) => Err(DialError {
                code: tonic::Code::Unavailable,
                message,
            }),
            Err(_) => Err(DialError {
                code: tonic::Code::DeadlineExceeded,
                message: format!("no connection within {:?}", self.0.connect_timeout),
            }),
        }
    }

    async fn handshake(&self) -> Result<Conn, String> {
        let s = &self.0;
        let kind = if s.dial.addr.tcp().is_some() { "tcp" } else { "unix" };
        let stream = (s.dial.addr.connect().await).map_err(|e| format!("{kind} connect error: {e}"))?;
        let started = match &s.tls {
            None => self.start(stream).await,
            Some(tls) => {
                let io = tokio_rustls::TlsConnector::from(tls.config.clone())
                    .connect(tls.name.clone(), stream)
                    .await
                    .map_err(|e| format!("transport error: TLS handshake: {e}"))?;
                if io.get_ref().1.alpn_protocol() != Some(b"h2") {
                    return Err("transport error: the server did not agree to HTTP/2 (ALPN h2) over TLS".into());
                }
                self.start(io).await
            }
        };
        started.map_err(|e| format!("transport error: HTTP/2 handshake: {e}"))
    }

    /// Starts HTTP/2 on `io`. The connection is driven by a task of its own that
    /// ends when the connection does: when the peer closes it, when a keepalive
    /// ping goes unanswered, or when every [`Conn`] on it is dropped and its streams are done.
    async fn start<T>(&self, io: T) -> Result<Conn, BoxError>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let pending = super::stages::pending();
        let heard = Heard::default();
        let io = super::stages::Stamped::new(Tap::new(io, heard.clone()), pending.clone());
        let (send, mut conn) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_send_buffer_size(MAX_SEND_BUFFER)
            .enable_push(false)
            .handshake::<_, Bytes>(io)
            .await?;
        let closed = Arc::new(AtomicBool::new(false));
        let flag = closed.clone();
        let keepalive = self.0.keepalive;
        let mut pings = conn.ping_pong();
        tokio::spawn(async move {
            let pinging = async {
                let (Some((every, timeout)), Some(pings)) = (keepalive, pings.as_mut()) else {
                    return std::future::pending().await;
                };
                loop {
                    tokio::time::sleep(every).await;
                    if pings.send_ping(h2::Ping::opaque()).is_err() {
                        return "the keepalive ping could not be sent";
                    }
                    match tokio::time::timeout(timeout, std::future::poll_fn(|cx| pings.poll_pong(cx))).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(_)) => return "the connection failed while pinging",
                        Err(_) => return "no answer to a keepalive ping",
                    }
                }
            };
            tokio::select! {
                ended = &mut conn => if let Err(e) = ended {
                    tracing::debug!("connection ended: {e}");
                },
                why = pinging => tracing::debug!("connection dropped: {why}"),
            }
            // Dropping the connection fails whatever streams it still had.
            flag.store(true, Ordering::Relaxed);
        });
        Ok(Conn {
            send,
            origin: self.0.origin.clone(),
            closed,
            pending,
            heard,
        })
    }
}

/// Why a dial failed: the status code a call would get, and the words for a person.
#[derive(Debug, Clone)]
pub struct DialError {
    pub code: tonic::Code,
    pub message: String,
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DialError {}

/// One HTTP/2 connection, for tonic's clients to call through. Clones share it;
/// it closes when the last clone is dropped and its calls are done.
#[derive(Clone)]
pub struct Conn {
    pub(super) send: SendRequest<Bytes>,
    origin: Origin,
    /// Set when the connection's task has ended, or it refused a new stream (GOAWAY).
    closed: Arc<AtomicBool>,
    /// Requests handed over and not yet written, when the lag breakdown is on ([`super::stages`]).
    pending: Option<super::stages::Pending>,
    /// The last GOAWAY its server sent, for the words of a call's failure.
    pub(super) heard: Heard,
}

impl Conn {
    /// Whether the connection has closed, or takes no new streams.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// A failure to open a stream: the connection is done for new calls, and the
    /// call never reached the server (UNAVAILABLE).
    pub(super) fn refused(&self, e: &h2::Error) -> tonic::Status {
        self.closed.store(true, Ordering::Relaxed);
        let mut status = status_of(e, &self.heard);
        if status.code() != tonic::Code::Unavailable {
            status = tonic::Status::unavailable(status.message().to_string());
        }
        status
    }

    /// The full URI of a call of `path` on this connection.
    pub(super) fn uri(&self, path: http::uri::PathAndQuery) -> Result<http::Uri, http::uri::InvalidUriParts> {
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(self.origin.scheme.clone());
        uri.authority = Some(self.origin.authority.clone());
        uri.path_and_query = Some(path);
        http::Uri::from_parts(uri)
    }

    /// Notes, for the lag breakdown, that the call due at `due` was handed to HTTP/2.
    pub(super) fn handed(&self, due: tokio::time::Instant) {
        if let Some(pending) = &self.pending {
            super::stages::record(super::stages::Stage::Handed, due);
            crate::domain::lock(pending).push_back(due);
        }
    }
}

impl tower::Service<http::Request<Body>> for Conn {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.send
            .poll_ready(cx)
            .map_err(|e| Box::new(self.refused(&e)) as BoxError)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let (mut head, body) = req.into_parts();
        // tonic's clients give the path alone; the origin is the connection's.
        let mut uri = std::mem::take(&mut head.uri).into_parts();
        uri.scheme = Some(self.origin.scheme.clone());
        uri.authority = Some(self.origin.authority.clone());
        match http::Uri::from_parts(uri) {
            Ok(u) => head.uri = u,
            Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
        }
        head.headers.insert(USER_AGENT, self.origin.agent.clone());
        let end = http_body::Body::is_end_stream(&body);
        let due = head.extensions.get::<super::stages::Due>().copied();
        let (response, stream) = match self.send.send_request(http::Request::from_parts(head, ()), end) {
            Ok(v) => v,
            Err(e) => return Box::pin(std::future::ready(Err(Box::new(self.refused(&e)) as BoxError))),
        };
        if let Some(super::stages::Due(due)) = due {
            self.handed(due);
        }
        let mut pipe = (!end).then(|| Pipe::new(body, stream));
        let mut response = response;
        let heard = self.heard.clone();
        Box::pin(async move {
            // Send the body while waiting for the answer; a unary body is sent at the first poll.
            let mut sent = pipe.is_none();
            let answer = std::future::poll_fn(|cx| {
                if let (false, Some(p)) = (sent, pipe.as_mut()) {
                    if let Poll::Ready(r) = p.poll_send(cx) {
                        sent = true;
                        r?;
                    }
                }
                Pin::new(&mut response)
                    .poll(cx)
                    .map_err(|e| Box::new(status_of(&e, &heard)) as BoxError)
            })
            .await?;
            let (head, recv) = answer.into_parts();
            let body = match (sent, pipe) {
                (false, Some(p)) => p.finish_elsewhere(recv, heard),
                _ => Incoming::new(recv, heard),
            };
            Ok(http::Response::from_parts(head, Body::new(body)))
        })
    }
}

/// A workload's one connection, dialled when first used and again whenever it has
/// closed. Callers that find it closed while another is dialling wait for that
/// dial and share its outcome, so a dead target costs one dial at a time.
pub(crate) struct SharedConn {
    connector: Connector,
    current: Mutex<Current>,
    dialing: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Current {
    conn: Option<Conn>,
    /// Dials finished so far, and how the last one failed.
    dials: u64,
    failed: Option<tonic::Code>,
}

impl SharedConn {
    pub(crate) fn new(connector: Connector) -> SharedConn {
        SharedConn {
            connector,
            current: Mutex::default(),
            dialing: tokio::sync::Mutex::new(()),
        }
    }

    /// The open connection, dialling one if there is none.
    pub(crate) async fn get(&self) -> Result<Conn, tonic::Code> {
        let seen = {
            let cur = crate::domain::lock(&self.current);
            if let Some(c) = cur.conn.as_ref().filter(|c| !c.is_closed()) {
                return Ok(c.clone());
            }
            cur.dials
        };
        let _one = self.dialing.lock().await;
        {
            let cur = crate::domain::lock(&self.current);
            if cur.dials != seen {
                // A dial finished while this caller waited: its outcome is this caller's.
                match (&cur.conn, cur.failed) {
                    (Some(c), _) if !c.is_closed() => return Ok(c.clone()),
                    (_, Some(code)) => return Err(code),
                    _ => {}
                }
            }
        }
        let dialled = self.connector.connect().await;
        let mut cur = crate::domain::lock(&self.current);
        cur.dials += 1;
        cur.conn = dialled.as_ref().ok().cloned();
        cur.failed = dialled.as_ref().err().copied();
        dialled
    }
}
