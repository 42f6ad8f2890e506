//! `--backend ADDR`: a target that depends on another service, as most do.
//! Every Check first asks the backend (grpc.health.v1 Check, the whole
//! server) over one shared channel. A failed call is retried once on a
//! fresh channel, which replaces the shared one; the Check answers
//! NOT_SERVING when the retry fails too.
//!
//! The replaced channel is closed, as it should be, unless
//! `--leak-backend-on-retry`: then it is kept, open, for the life of the
//! server. That is the seed's bug, a health checker whose every retry opens
//! a fresh channel and never closes the old one; it shows when the link to
//! the backend drops or goes silent, which only a fault on the target's own
//! outbound connection (`via = "kernel"`) can cause.

use super::Leaks;
use crate::net::Address;
use crate::proto::health::health_client::HealthClient;
use crate::proto::health::HealthCheckRequest;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// How long one backend call may take before it counts as failed.
const BACKEND_DEADLINE: Duration = Duration::from_millis(300);

/// The backend and the shared channel to it.
pub(super) struct Backend {
    addr: Address,
    /// The service asked: the whole server's (""), or, of this server itself, one
    /// whose Checks ask no backend in turn.
    service: &'static str,
    leak_on_retry: bool,
    leaks: Arc<Leaks>,
    shared: tokio::sync::Mutex<Option<Channel>>,
}

impl Backend {
    /// The backend at `addr` ("self" is this server, at `self_addr`).
    pub(super) fn new(
        addr: &str,
        self_addr: &Address,
        leak_on_retry: bool,
        leaks: Arc<Leaks>,
    ) -> anyhow::Result<Backend> {
        let (addr, service) = match addr {
            "self" => (self_addr.clone(), super::BACKEND_SERVICE),
            other => (
                other.parse().map_err(|e| anyhow::anyhow!("--backend {other:?}: {e}"))?,
                "",
            ),
        };
        Ok(Backend {
            addr,
            service,
            leak_on_retry,
            leaks,
            shared: tokio::sync::Mutex::new(None),
        })
    }

    /// Asks the backend, retrying once on a fresh channel; false when it could not be reached.
    pub(super) async fn healthy(&self) -> bool {
        let first = match self.channel().await {
            Ok(ch) => ask(ch, self.service).await,
            Err(e) => Err(e),
        };
        let Err(e) = first else { return true };
        tracing::debug!("backend {}: {e}; retrying on a fresh channel", self.addr);
        let fresh = match super::backend_channel(&self.addr).await {
            Ok(ch) => ch,
            Err(e) => {
                tracing::warn!("backend {}: dialling: {e}", self.addr);
                return false;
            }
        };
        let old = self.shared.lock().await.replace(fresh.clone());
        if let (true, Some(old)) = (self.leak_on_retry, old) {
            crate::domain::lock(&self.leaks.channels).push(old);
        }
        ask(fresh, self.service).await.is_ok()
    }

    /// The shared channel, dialled on first use.
    async fn channel(&self) -> anyhow::Result<Channel> {
        let mut shared = self.shared.lock().await;
        if let Some(ch) = &*shared {
            return Ok(ch.clone());
        }
        let ch = super::backend_channel(&self.addr).await?;
        *shared = Some(ch.clone());
        Ok(ch)
    }
}

/// One Check of `service` on the backend.
async fn ask(channel: Channel, service: &str) -> anyhow::Result<()> {
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: service.into(),
    });
    req.set_timeout(BACKEND_DEADLINE);
    let mut client = HealthClient::new(channel);
    // The deadline bounds the wait here too: a blackholed link never answers.
    tokio::time::timeout(BACKEND_DEADLINE, client.check(req)).await??;
    Ok(())
}
