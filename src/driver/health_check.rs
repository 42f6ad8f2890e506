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

/// How calls are paced.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Open model: `rate` calls per second on a timetable, skipping beyond `max_in_flight`.
    Open { rate: f64, max_in_flight: u64 },
    /// Closed model: `concurrency` calls back to back, for saturation.
    Closed { concurrency: u64 },
}

/// A validated health_check workload.
#[derive(Debug, Clone)]
pub struct Spec {
    pub pace: Pace,
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
    let call = move |due: Instant| {
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
    };
    match spec.pace {
        Pace::Open { rate, max_in_flight } => rate::open_model(rate, max_in_flight, until, &stop, &stats, call).await,
        Pace::Closed { concurrency } => rate::closed_model(concurrency, until, &stop, &stats, call).await,
    }
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
