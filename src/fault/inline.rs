//! The fault proxy as a run uses it: bound on loopback in front of the
//! target, its sockets left out of the driver's counts, stopped on drop.

use super::{Control, FaultEvent, ProxyStats};
use crate::vocab::InodeSet;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The in-process fault proxy, when the scenario has faults.
pub struct InlineProxy {
    pub addr: SocketAddr,
    pub control: Arc<Control>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// Stops the proxy even if the run is abandoned without calling `stop`.
    _stop_on_drop: tokio_util::sync::DropGuard,
}

impl InlineProxy {
    /// Binds a loopback port and forwards it to `upstream`; `sockets` collects the proxy's socket inodes.
    pub async fn start(upstream: SocketAddr, sockets: InodeSet) -> anyhow::Result<InlineProxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the fault proxy")?;
        let addr = listener.local_addr()?;
        let control = Arc::new(Control::with_inodes(sockets));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(super::proxy::run(listener, upstream, control.clone(), shutdown.clone()));
        tracing::info!("fault proxy {addr} → {upstream}");
        let _stop_on_drop = shutdown.clone().drop_guard();
        Ok(InlineProxy {
            addr,
            control,
            shutdown,
            task,
            _stop_on_drop,
        })
    }

    /// Closes every proxied connection and returns what happened.
    pub async fn stop(self) -> (Vec<FaultEvent>, ProxyStats) {
        self.shutdown.cancel();
        let _ = self.task.await;
        (self.control.events(), self.control.stats())
    }
}
