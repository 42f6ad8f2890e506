//! `[export]`: what a run shows outside itself while it lasts. For now, the
//! live Prometheus endpoint (`metrics_addr`, or `run --metrics-addr`).

use serde::{Deserialize, Serialize};

/// The `[export]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportSpec {
    /// Serve the run's live metrics in the Prometheus text format at
    /// `http://ADDR/metrics` while it lasts (`IP:PORT`; port 0 picks a free one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl ExportSpec {
    pub fn is_empty(&self) -> bool {
        self.metrics_addr.is_none()
    }
}
