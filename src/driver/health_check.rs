//! The `health_check` workload: unary grpc.health.v1.Health/Check calls on
//! the open-model timetable, each with its own deadline, on a channel chosen
//! by the workload's channel policy. The request is the same every time, so it
//! is built once and sent straight over HTTP/2 ([`crate::transport::unary`]).

use super::channel::ChannelSource;
use super::rate::{self, Pace};
use crate::metrics::WorkloadStats;
use crate::proto::health::HealthCheckRequest;
use crate::transport::conn::Conn;
use crate::transport::unary::Prepared;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A validated health_check workload.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub pace: Pace,
    pub deadline: Duration,
    pub service: String,
    pub retry: Option<super::retry::Policy>,
}

pub(crate) async fn run(
    spec: Spec,
    source: ChannelSource,
    stats: Arc<WorkloadStats>,
    until: Instant,
    stop: CancellationToken,
) {
    let request = HealthCheckRequest {
        service: spec.service.clone(),
    };
    // The same request every time: its headers and encoded message are built once.
    let prepared = Arc::new(Prepared::new(CHECK, &request, spec.deadline, source.transport()));
    let call_stats = stats.clone();
    let call = move |due: Instant| {
        let source = source.clone();
        let stats = call_stats.clone();
        let prepared = prepared.clone();
        let deadline = spec.deadline;
        let retry = spec.retry.clone();
        async move {
            let attempt = |channel| check(channel, &prepared, deadline, due, &stats);
            let code = super::retry::call(&source, retry.as_ref(), &stats, attempt).await;
            // Latency runs from the scheduled start, across every attempt and backoff.
            stats.finish(code, due.elapsed());
        }
    };
    rate::run(spec.pace, until, &stop, &stats, call).await;
}

/// The method every call asks.
const CHECK: &str = "/grpc.health.v1.Health/Check";

/// One Health/Check attempt on `channel`, bounded by `deadline`.
/// What the server said when it failed at the HTTP/2 level is noted in `stats`.
async fn check(
    mut channel: Conn,
    prepared: &Prepared,
    deadline: Duration,
    due: Instant,
    stats: &WorkloadStats,
) -> tonic::Code {
    match tokio::time::timeout(deadline, channel.unary(prepared, due)).await {
        Ok(answer) => {
            if let Some(cause) = &answer.cause {
                stats.caused(answer.code, &cause.to_string());
            }
            answer.code
        }
        Err(_) => tonic::Code::DeadlineExceeded,
    }
}
