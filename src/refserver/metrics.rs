//! `fdsoak serve --metrics-addr`: the built-in target's own process metrics
//! in the Prometheus text format, from the `prometheus` crate's process
//! collector (`process_open_fds`, `process_max_fds`, memory, threads, CPU).
//! It gives tests, and users trying `--fds-from`, a real endpoint to scrape.

use anyhow::Context;
use prometheus::{Encoder, Registry, TextEncoder};
use std::net::SocketAddr;

/// Binds `addr` and serves `GET /metrics` on it in the background; returns the bound address.
pub(crate) async fn serve(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let registry = Registry::new();
    registry
        .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
        .context("registering the process collector")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--metrics-addr: cannot bind {addr}"))?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move { page(&registry) }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("metrics endpoint stopped: {e}");
        }
    });
    Ok(bound)
}

/// The registry's metrics as one text page.
fn page(registry: &Registry) -> ([(axum::http::HeaderName, String); 1], Vec<u8>) {
    let encoder = TextEncoder::new();
    let mut buf = Vec::new();
    if let Err(e) = encoder.encode(&registry.gather(), &mut buf) {
        tracing::warn!("encoding metrics: {e}");
    }
    (
        [(axum::http::header::CONTENT_TYPE, encoder.format_type().to_string())],
        buf,
    )
}
