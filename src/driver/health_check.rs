//! The `health_check` workload: unary grpc.health.v1.Health/Check calls on
//! the open-model timetable, each with its own deadline, on a channel chosen
//! by the workload's channel policy.

use super::channel::ChannelSource;
use super::rate;
use crate::metrics::WorkloadStats;
use crate::proto::health::health_client::HealthClient;
use crate::proto::health::HealthCheckRequest;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A validated health_check workload.
#[derive(Debug, Clone)]
pub struct Spec {
    pub rate: f64,
    pub max_in_flight: u64,
    pub deadline: Duration,
    pub service: String,
}

pub async fn run(
    spec: Spec,
    source: ChannelSource,
    stats: Arc<WorkloadStats>,
    until: Instant,
    stop: CancellationToken,
) {
    let call_stats = stats.clone();
    rate::open_model(spec.rate, spec.max_in_flight, until, &stop, &stats, move |due| {
        let source = source.clone();
        let stats = call_stats.clone();
        let service = spec.service.clone();
        let deadline = spec.deadline;
        async move {
            let code = match tokio::time::timeout(deadline, check(&source, service, deadline)).await {
                Ok(code) => code,
                Err(_) => tonic::Code::DeadlineExceeded,
            };
            stats.finish(code, due.elapsed());
        }
    })
    .await;
}

async fn check(source: &ChannelSource, service: String, deadline: Duration) -> tonic::Code {
    let channel = match source.acquire().await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut req = tonic::Request::new(HealthCheckRequest { service });
    req.set_timeout(deadline);
    let code = match HealthClient::new(channel.clone()).check(req).await {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    };
    source.release(channel);
    code
}
