//! The `watch` workload: N concurrent grpc.health.v1.Health/Watch streams
//! held open through the phase, optionally closed and re-opened every
//! `reopen_every`. The latency recorded is the time to the first status
//! message; every message received is counted.

use super::channel::ChannelSource;
use crate::metrics::WorkloadStats;
use crate::proto::health::health_client::HealthClient;
use crate::proto::health::HealthCheckRequest;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A validated watch workload.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub streams: u64,
    pub reopen_every: Option<Duration>,
    pub deadline: Duration,
    pub service: String,
}

/// Pause after a failed stream before trying again, so a dead target is not hammered.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

pub(crate) async fn run(
    spec: Spec,
    source: ChannelSource,
    stats: Arc<WorkloadStats>,
    until: Instant,
    stop: CancellationToken,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..spec.streams {
        tasks.spawn(hold_stream(
            spec.clone(),
            source.clone(),
            stats.clone(),
            until,
            stop.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

async fn hold_stream(
    spec: Spec,
    source: ChannelSource,
    stats: Arc<WorkloadStats>,
    until: Instant,
    stop: CancellationToken,
) {
    while Instant::now() < until && !stop.is_cancelled() {
        let opened = Instant::now();
        stats.scheduled.fetch_add(1, Relaxed);
        stats.started.fetch_add(1, Relaxed);
        stats.in_flight.fetch_add(1, Relaxed);
        let end = spec.reopen_every.map_or(until, |d| (opened + d).min(until));
        let code = tokio::select! {
            code = one_stream(&spec, &source, &stats, opened, end) => code,
            _ = stop.cancelled() => tonic::Code::Cancelled,
        };
        stats.in_flight.fetch_sub(1, Relaxed);
        if code != tonic::Code::Ok {
            stats.finish(code, opened.elapsed());
            tokio::select! {
                _ = tokio::time::sleep(RETRY_PAUSE) => {}
                _ = stop.cancelled() => {}
            }
        }
    }
}

/// Opens one stream and holds it until `end`. Returns OK if it lasted, or the code it failed with.
async fn one_stream(
    spec: &Spec,
    source: &ChannelSource,
    stats: &WorkloadStats,
    opened: Instant,
    end: Instant,
) -> tonic::Code {
    let channel = match tokio::time::timeout(spec.deadline, source.acquire()).await {
        Ok(Ok(c)) => c,
        Ok(Err(code)) => return code,
        Err(_) => return tonic::Code::DeadlineExceeded,
    };
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: spec.service.clone(),
    });
    source.decorate(&mut req);
    let mut client = HealthClient::new(channel.clone());
    let mut stream = match tokio::time::timeout(spec.deadline, client.watch(req)).await {
        Ok(Ok(resp)) => resp.into_inner(),
        Ok(Err(status)) => return super::failed(stats, &status),
        Err(_) => return tonic::Code::DeadlineExceeded,
    };
    let mut first = true;
    let code = loop {
        let msg = tokio::select! {
            m = stream.message() => m,
            _ = tokio::time::sleep_until(end) => break tonic::Code::Ok,
        };
        match msg {
            Ok(Some(_)) => {
                stats.messages.fetch_add(1, Relaxed);
                if first {
                    stats.finish(tonic::Code::Ok, opened.elapsed());
                    first = false;
                }
            }
            // The server ended a stream that should stay open.
            Ok(None) => break tonic::Code::Unavailable,
            Err(status) => break super::failed(stats, &status),
        }
    };
    drop(stream);
    source.release(channel);
    code
}
