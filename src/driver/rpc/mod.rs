//! The `rpc` workload: any method, its bodies encoded from JSON, paced,
//! retried and given channels exactly as `health_check` is (the same [`rate`](super::rate), [`retry`](super::retry)
//! and [`channel`](super::channel) pieces).
//!
//! A unary call's latency runs from its scheduled start to its reply. A
//! server-streaming call records the time to its first message as its
//! latency and counts every message; a stream that fdsoak ends itself, at
//! `stream_duration` or after `max_messages`, is OK, not an error. The
//! deadline bounds a unary call, and a stream's wait for its first message.
//! Unary and server-streaming calls are [`call`]'s; client-streaming and
//! bidirectional methods are [`streams`]'. Both are given the same [`Call`]:
//! what every attempt of one call shares.

mod call;
pub(crate) mod streams;

use super::channel::ChannelSource;
use super::rate::{self, Pace};
use crate::metrics::WorkloadStats;
use crate::rpc::{codec::Raw, Method};
pub(crate) use call::Call;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A validated rpc workload.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub pace: Pace,
    pub deadline: Duration,
    pub retry: Option<super::retry::Policy>,
    pub stream_duration: Option<Duration>,
    pub max_messages: Option<u64>,
    /// Client-streaming and bidirectional: the pause between messages, and how a stream ends.
    pub send_interval: Option<Duration>,
    pub hangup: crate::scenario::Hangup,
    pub parked: Arc<streams::Parked>,
    pub method: Arc<Method>,
}

/// What one call sends: a request, or (client-streaming, bidirectional) a stream's messages.
#[derive(Clone)]
enum Payload {
    One(bytes::Bytes),
    Stream(Arc<Vec<bytes::Bytes>>),
}

pub(crate) async fn run(
    spec: Spec,
    source: ChannelSource,
    stats: Arc<WorkloadStats>,
    until: Instant,
    stop: CancellationToken,
) {
    let pace = spec.pace;
    let call_stats = stats.clone();
    let numbers = Arc::new(AtomicU64::new(0));
    let spec = Arc::new(spec);
    let call = move |due: Instant| {
        let (source, stats, spec) = (source.clone(), call_stats.clone(), spec.clone());
        let n = numbers.fetch_add(1, Relaxed);
        async move {
            let bodies = &spec.method.bodies;
            let body = if spec.method.client_streaming {
                bodies.stream(n).map(|m| Payload::Stream(Arc::new(m)))
            } else {
                bodies.get(n).map(Payload::One)
            };
            let body = match body {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("request {n}: {e}");
                    stats.finish(tonic::Code::InvalidArgument, due.elapsed());
                    return;
                }
            };
            let call = Call::new(spec.clone(), stats.clone(), due);
            let attempt = |channel| {
                let mut meta = tonic::Request::new(());
                source.decorate(&mut meta);
                let (body, call) = (body.clone(), call.clone());
                async move {
                    match body {
                        Payload::One(b) => call::one(channel, meta, b, &call).await,
                        Payload::Stream(messages) => streams::call(channel, meta, messages, &call).await,
                    }
                }
            };
            let code = super::retry::call(&source, spec.retry.as_ref(), &stats, attempt).await;
            // Unary: latency from the scheduled start, across every attempt. A stream: to its first message.
            stats.finish(code, call.latency());
        }
    };
    rate::run(pace, until, &stop, &stats, call).await;
}

/// The `ready = "rpc"` check: calls `method` on a fresh channel until it answers with any
/// status but UNAVAILABLE, for at most `timeout`. Returns the last status seen otherwise.
pub(crate) async fn wait_answer(
    dial: &crate::transport::Dial,
    method: &Method,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no attempt made");
    while Instant::now() < deadline {
        let attempt = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(2));
        match tokio::time::timeout(attempt, call_once(dial, method)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(status)) if status.code() != tonic::Code::Unavailable => return Ok(()),
            Ok(Err(status)) => last = format!("{}: {}", status.code(), status.message()),
            Err(_) => last = "no answer".into(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!(
        "{} did not answer within {timeout:?} (last: {last})",
        method.path
    ))
}

async fn call_once(dial: &crate::transport::Dial, method: &Method) -> Result<(), tonic::Status> {
    let unavailable = |e: &dyn std::fmt::Display| tonic::Status::unavailable(e.to_string());
    let channel = dial
        .connect(Duration::from_secs(2))
        .await
        .map_err(|e| tonic::Status::new(e.code, e.message))?;
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(method.path.as_str())
        .map_err(|e| tonic::Status::internal(e.to_string()))?;
    let body = method.bodies.get(0).map_err(tonic::Status::invalid_argument)?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| unavailable(&e))?;
    let mut req = tonic::Request::new(body);
    dial.transport.decorate(&mut req);
    if method.server_streaming {
        grpc.server_streaming(req, path, Raw)
            .await?
            .into_inner()
            .message()
            .await?;
    } else {
        grpc.unary(req, path, Raw).await?;
    }
    Ok(())
}
