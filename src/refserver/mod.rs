//! `fdsoak serve`: the built-in reference target.
//!
//! A tonic server that speaks grpc.health.v1 (Check and Watch with the
//! standard semantics) and the demo Chatbot service. Off by default, knobs
//! inject the real leak classes fdsoak hunts: files opened and kept, health
//! checks to a "backend" over channels that are never dropped (the client
//! bug behind fdsoak), and duplicated accepted sockets that turn into
//! CLOSE_WAIT when peers leave. Accept errors such as EMFILE are logged and
//! retried after a pause, so the server survives running out of descriptors.

mod backend;
pub(crate) mod behaviour;
pub(crate) mod chat;
pub(crate) mod metrics;

use crate::net::Address;
use crate::proto::demo::chatbot_server::ChatbotServer;
use crate::proto::health::health_check_response::ServingStatus;
use crate::proto::health::health_client::HealthClient;
use crate::proto::health::health_server::{Health, HealthServer};
use crate::proto::health::{HealthCheckRequest, HealthCheckResponse};
use crate::scenario::Reflection;
use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status};

/// The service name the leak-channel knob asks its "backend" about; these
/// Checks are not counted, so the knob does not feed itself.
pub(crate) const BACKEND_SERVICE: &str = "fdsoak.internal.Backend";

/// Services that report SERVING.
const KNOWN_SERVICES: [&str; 4] = ["", "grpc.health.v1.Health", "fdsoak.demo.v1.Chatbot", BACKEND_SERVICE];

use crate::scenario::Knobs;
use behaviour::State;

/// What the knobs have leaked so far. Kept alive for the life of the server, on purpose.
#[derive(Default)]
pub(super) struct Leaks {
    pub(super) files: Mutex<Vec<std::fs::File>>,
    pub(super) channels: Mutex<Vec<tonic::transport::Channel>>,
    sockets: Mutex<Vec<OwnedFd>>,
}

/// A fresh channel to the "backend" (this server itself).
pub(super) async fn backend_channel(addr: &Address) -> anyhow::Result<tonic::transport::Channel> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{}", authority(addr)))?;
    let endpoint = endpoint.connect_timeout(Duration::from_secs(2));
    Ok(match addr {
        Address::Tcp(_) => endpoint.connect().await?,
        unix => {
            endpoint
                .connect_with_connector(crate::net::connector(unix.clone()))
                .await?
        }
    })
}

/// The HTTP/2 authority for a channel to `addr`: its host and port, or `localhost` for a Unix socket.
fn authority(addr: &Address) -> String {
    addr.tcp().map_or_else(|| "localhost".into(), |a| a.to_string())
}

#[derive(Clone)]
struct HealthSvc {
    knobs: Arc<Knobs>,
    leaks: Arc<Leaks>,
    checks: Arc<AtomicU64>,
    self_addr: Address,
    /// The stall window, as instants.
    stall: Option<(tokio::time::Instant, tokio::time::Instant)>,
    /// Behaviours scheduled from outside (`--control-stdin`).
    state: Arc<State>,
    /// The backend every Check asks first (`--backend`).
    backend: Option<Arc<backend::Backend>>,
}

impl HealthSvc {
    async fn apply_knobs(&self) {
        let n = self.checks.fetch_add(1, Ordering::Relaxed) + 1;
        if self.knobs.leak_fd_every.is_some_and(|k| n.is_multiple_of(k)) {
            // Any regular file will do: our own executable always opens.
            match std::fs::File::open(OWN_EXE) {
                Ok(f) => crate::domain::lock(&self.leaks.files).push(f),
                Err(e) => tracing::warn!("leak-fd-every: open failed: {e}"),
            }
        }
        if self.knobs.leak_channel_every.is_some_and(|k| n.is_multiple_of(k)) {
            if let Err(e) = self.check_backend().await {
                tracing::warn!("leak-channel-every: backend check failed: {e}");
            }
        }
    }

    /// The bug that started fdsoak: a fresh channel per backend health check, never closed.
    async fn check_backend(&self) -> anyhow::Result<()> {
        let channel = backend_channel(&self.self_addr).await?;
        let mut client = HealthClient::new(channel.clone());
        let mut req = Request::new(HealthCheckRequest {
            service: BACKEND_SERVICE.into(),
        });
        req.set_timeout(Duration::from_secs(2));
        client.check(req).await?;
        crate::domain::lock(&self.leaks.channels).push(channel);
        Ok(())
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for HealthSvc {
    async fn check(&self, req: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        let service = req.into_inner().service;
        if let Some((from, until)) = self.stall {
            let now = tokio::time::Instant::now();
            if now >= from && now < until {
                tokio::time::sleep_until(until).await;
            }
        }
        if let Some(until) = self.state.stalled_until() {
            tokio::time::sleep_until(until).await;
        }
        if service != BACKEND_SERVICE {
            self.apply_knobs().await;
            if let Some(b) = &self.backend {
                if !b.healthy().await {
                    return Ok(Response::new(HealthCheckResponse {
                        status: ServingStatus::NotServing as i32,
                    }));
                }
            }
        }
        if let Some(status) = self.state.status(&service) {
            return Ok(Response::new(HealthCheckResponse { status: status as i32 }));
        }
        if !KNOWN_SERVICES.contains(&service.as_str()) {
            return Err(Status::not_found(format!("unknown service {service:?}")));
        }
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let service = req.into_inner().service;
        let state = self.state.clone();
        let status_now = move || {
            state
                .status(&service)
                .unwrap_or(if KNOWN_SERVICES.contains(&service.as_str()) {
                    ServingStatus::Serving
                } else {
                    // Per the health protocol: report SERVICE_UNKNOWN and keep the stream open.
                    ServingStatus::ServiceUnknown
                })
        };
        let (tx, rx) = mpsc::channel(4);
        let (mut changes, mut end) = (self.state.changes.subscribe(), self.state.end_watches.subscribe());
        tokio::spawn(async move {
            let mut last = status_now();
            if tx.send(Ok(HealthCheckResponse { status: last as i32 })).await.is_err() {
                return;
            }
            // Send each change of status; end with UNAVAILABLE when told to; stop when the client goes.
            loop {
                tokio::select! {
                    r = changes.changed() => {
                        if r.is_err() { return; }
                        let now = status_now();
                        if now != last {
                            last = now;
                            if tx.send(Ok(HealthCheckResponse { status: now as i32 })).await.is_err() {
                                return;
                            }
                        }
                    }
                    r = end.changed() => {
                        if r.is_ok() {
                            let _ = tx.send(Err(Status::unavailable("watch ended by the server"))).await;
                        }
                        return;
                    }
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// An accepted connection. With `hold_closed_conns`, shutting down the write
/// side is a no-op and a duplicate of the socket is kept elsewhere, so when
/// the peer leaves, our end is never closed: the socket stays in CLOSE_WAIT,
/// exactly as in a server that forgets to close dead connections.
struct Conn {
    stream: crate::net::Stream,
    hold: bool,
}

impl Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.hold {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Accepts connections, surviving accept errors (EMFILE included) with a short pause.
async fn accept_loop(
    listener: crate::net::Listener,
    tx: mpsc::Sender<Result<Conn, std::io::Error>>,
    knobs: Arc<Knobs>,
    leaks: Arc<Leaks>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) if knobs.stop_accepting_on_error => {
                tracing::error!("accept failed: {e}; no longer accepting (--stop-accepting-on-error)");
                // Keep serving the connections already open, accept nothing new, ever.
                std::future::pending::<crate::net::Stream>().await
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if knobs.hold_closed_conns {
            match stream.as_fd().try_clone_to_owned() {
                Ok(dup) => crate::domain::lock(&leaks.sockets).push(dup),
                Err(e) => tracing::warn!("hold-closed-conns: dup failed: {e}"),
            }
        }
        let conn = Conn {
            stream,
            hold: knobs.hold_closed_conns,
        };
        if tx.send(Ok(conn)).await.is_err() {
            return;
        }
    }
}

/// `--require-token-env`: every call must carry `authorization: Bearer TOKEN`.
#[derive(Clone)]
struct Auth(Option<Arc<str>>);

impl Auth {
    fn from_knobs(knobs: &Knobs) -> anyhow::Result<Auth> {
        let Some(name) = &knobs.require_token_env else {
            return Ok(Auth(None));
        };
        let token = std::env::var(name).map_err(|_| anyhow::anyhow!("--require-token-env: {name} is not set"))?;
        Ok(Auth(Some(format!("Bearer {token}").into())))
    }
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        match &self.0 {
            Some(want) if req.metadata().get("authorization").and_then(|v| v.to_str().ok()) != Some(want) => {
                Err(Status::unauthenticated("a bearer token is required"))
            }
            _ => Ok(req),
        }
    }
}

/// This process's executable, which opens even once a rebuild has replaced its file.
pub(crate) const OWN_EXE: &str = "/proc/self/exe";

/// Serves on an already-bound listener (over TLS when `tls` is given) until `shutdown` resolves.
pub(crate) async fn serve(
    listener: crate::net::Listener,
    tls: Option<tonic::transport::ServerTlsConfig>,
    knobs: Knobs,
    state: Arc<State>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let self_addr = listener.local_addr()?;
    let started = tokio::time::Instant::now();
    let stall = knobs.stall().map(|(at, dur)| (started + at, started + at + dur));
    let knobs = Arc::new(knobs);
    let leaks = Arc::new(Leaks::default());
    let backend = knobs
        .backend
        .as_deref()
        .map(|b| backend::Backend::new(b, &self_addr, knobs.leak_backend_on_retry, leaks.clone()))
        .transpose()?
        .map(Arc::new);
    let health = HealthSvc {
        knobs: knobs.clone(),
        leaks: leaks.clone(),
        checks: Arc::new(AtomicU64::new(0)),
        self_addr: self_addr.clone(),
        stall,
        state,
        backend,
    };
    let (tx, rx) = mpsc::channel(64);
    let leaks_for_chat = leaks.clone();
    let acceptor = tokio::spawn(accept_loop(listener, tx, knobs.clone(), leaks));
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    if let Some(age) = knobs.max_connection_age {
        builder = builder.max_connection_age(age);
    }
    if let Some(grace) = knobs.max_connection_age_grace {
        builder = builder.max_connection_age_grace(grace);
    }
    if let Some((interval, timeout)) = knobs.keepalive() {
        builder = builder
            .http2_keepalive_interval(Some(interval))
            .http2_keepalive_timeout(Some(timeout));
    }
    let reflection = |b: tonic_reflection::server::Builder<'static>| {
        b.register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
    };
    let b = tonic_reflection::server::Builder::configure;
    let mode = knobs.reflection;
    let v1 = (mode == Reflection::Both)
        .then(|| reflection(b()).build_v1())
        .transpose()?;
    let v1alpha = (mode != Reflection::None)
        .then(|| reflection(b()).build_v1alpha())
        .transpose()?;
    let auth = Auth::from_knobs(&knobs)?;
    let health = (!knobs.no_health).then(|| InterceptedService::new(HealthServer::new(health), auth.clone()));
    let chat = ChatbotServer::new(chat::ChatSvc::new(knobs.clone(), leaks_for_chat, self_addr));
    let result = builder
        .add_optional_service(health)
        .add_service(InterceptedService::new(chat, auth.clone()))
        .add_optional_service(v1.map(|s| InterceptedService::new(s, auth.clone())))
        .add_optional_service(v1alpha.map(|s| InterceptedService::new(s, auth.clone())))
        .serve_with_incoming_shutdown(ReceiverStream::new(rx), shutdown)
        .await;
    acceptor.abort();
    result.map_err(Into::into)
}
