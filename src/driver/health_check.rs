//! The `health_check` workload: unary grpc.health.v1.Health/Check calls on
//! the open-model timetable, each with its own deadline, on a channel chosen
//! by the workload's channel policy.

use super::channel::ChannelSource;
use super::rate::{self, Pace};
use crate::metrics::WorkloadStats;
use crate::proto::health::health_client::HealthClient;
use crate::proto::health::HealthCheckRequest;
use crate::transport::stages;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A validated health_check workload.
#[derive(Debug, Clone)]
pub struct Spec {
    pub pace: Pace,
    pub deadline: Duration,
    pub service: String,
    pub retry: Option<super::retry::Policy>,
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
        let retry = spec.retry.clone();
        async move {
            let attempt = |channel| {
                let mut req = tonic::Request::new(HealthCheckRequest {
                    service: service.clone(),
                });
                source.decorate(&mut req);
                if stages::enabled() {
                    req.extensions_mut().insert(stages::Due(due));
                }
                check(channel, req, deadline)
            };
            let code = super::retry::call(&source, retry.as_ref(), &stats, attempt).await;
            // Latency runs from the scheduled start, across every attempt and backoff.
            stats.finish(code, due.elapsed());
        }
    };
    rate::run(spec.pace, until, &stop, &stats, call).await;
}

/// One Health/Check attempt on `channel`, bounded by `deadline`.
async fn check(
    channel: crate::transport::conn::Conn,
    mut req: tonic::Request<HealthCheckRequest>,
    deadline: Duration,
) -> tonic::Code {
    req.set_timeout(deadline);
    match tokio::time::timeout(deadline, HealthClient::new(channel).check(req)).await {
        Ok(Ok(_)) => tonic::Code::Ok,
        Ok(Err(status)) => crate::metrics::code_of(&status),
        Err(_) => tonic::Code::DeadlineExceeded,
    }
}
