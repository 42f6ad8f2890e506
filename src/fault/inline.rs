//! The fault proxy as a run uses it: in front of the target, in its family
//! (on a loopback port before a TCP target, on a Unix socket of its own in a
//! private directory before a Unix-socket one), its sockets left out of the
//! driver's counts, stopped on drop.

use super::{Control, FaultEvent, ProxyStats};
use crate::domain::InodeSet;
use crate::net::Address;
use anyhow::Context;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The in-process fault proxy, when the scenario has faults.
pub(crate) struct InlineProxy {
    pub addr: Address,
    /// The directory of its Unix socket, removed when the proxy goes.
    _dir: Option<tempfile::TempDir>,
    pub control: Arc<Control>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// Stops the proxy even if the run is abandoned without calling `stop`.
    _stop_on_drop: tokio_util::sync::DropGuard,
}

impl InlineProxy {
    /// Listens where the target's family says and forwards to `upstream`, ending TLS on the
    /// way with `tls`; `sockets` collects the proxy's socket inodes.
    pub(crate) async fn start(
        upstream: Address,
        tls: Option<super::ProxyTls>,
        sockets: InodeSet,
    ) -> anyhow::Result<InlineProxy> {
        let (at, dir) = if upstream.is_unix() {
            let dir = tempfile::Builder::new()
                .prefix("fdsoak-proxy-")
                .tempdir()
                .context("making a directory for the fault proxy's socket")?;
            (Address::Unix(dir.path().join("proxy.sock")), Some(dir))
        } else {
            (Address::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], 0))), None)
        };
        let listener = at.bind().await.context("binding the fault proxy")?;
        let addr = listener.local_addr()?;
        let control = Arc::new(Control::with_inodes(sockets));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(super::proxy::run(
            listener,
            super::proxy::Upstream {
                addr: upstream.clone(),
                tls,
            },
            control.clone(),
            shutdown.clone(),
        ));
        tracing::info!("fault proxy {addr} → {upstream}");
        let _stop_on_drop = shutdown.clone().drop_guard();
        Ok(InlineProxy {
            addr,
            _dir: dir,
            control,
            shutdown,
            task,
            _stop_on_drop,
        })
    }

    /// Closes every proxied connection and returns what happened.
    pub(crate) async fn stop(self) -> (Vec<FaultEvent>, ProxyStats) {
        self.shutdown.cancel();
        let _ = self.task.await;
        (self.control.events(), self.control.stats())
    }
}
