//! The `rpc` workload: any method, its bodies encoded from JSON, paced,
//! retried and given channels exactly as `health_check` is (the same [`rate`](super::rate), [`retry`](super::retry)
//! and [`channel`](super::channel) pieces).
//!
//! A unary call's latency runs from its scheduled start to its reply. A
//! server-streaming call records the time to its first message as its
//! latency and counts every message; a stream that fdsoak ends itself, at
//! `stream_duration` or after `max_messages`, is OK, not an error. The
//! deadline bounds a unary call, and a stream's wait for its first message.
//! Client-streaming and bidirectional methods are [`super::streams`]'.

use super::channel::ChannelSource;
use super::rate::{self, Pace};
use crate::metrics::WorkloadStats;
use crate::rpc::{codec::Raw, Method};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A validated rpc workload.
#[derive(Debug, Clone)]
pub struct Spec {
    pub pace: Pace,
    pub deadline: Duration,
    pub retry: Option<super::retry::Policy>,
    pub stream_duration: Option<Duration>,
    pub max_messages: Option<u64>,
    /// Client-streaming and bidirectional: the pause between messages, and how a stream ends.
    pub send_interval: Option<Duration>,
    pub hangup: crate::scenario::Hangup,
    pub parked: Arc<super::streams::Parked>,
    pub method: Arc<Method>,
}

/// What one call sends: a request, or (client-streaming, bidirectional) a stream's messages.
#[derive(Clone)]
enum Payload {
    One(bytes::Bytes),
    Stream(Arc<Vec<bytes::Bytes>>),
}

pub async fn run(
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
            let first = Arc::new(std::sync::Mutex::new(None::<Duration>));
            let attempt = |channel| {
                let mut req = tonic::Request::new(());
                source.decorate(&mut req);
                one_call(
                    channel,
                    spec.clone(),
                    req,
                    body.clone(),
                    stats.clone(),
                    due,
                    first.clone(),
                )
            };
            let code = super::retry::call(&source, spec.retry.as_ref(), &stats, attempt).await;
            // Unary: latency from the scheduled start, across every attempt. A stream: to its first message.
            let to_first = *crate::vocab::lock(&first);
            stats.finish(code, to_first.unwrap_or_else(|| due.elapsed()));
        }
    };
    rate::run(pace, until, &stop, &stats, call).await;
}

/// One attempt on `channel`: a unary call, or a stream read until the server ends it or fdsoak does.
async fn one_call(
    channel: crate::transport::conn::Conn,
    spec: Arc<Spec>,
    meta: tonic::Request<()>,
    body: Payload,
    stats: Arc<WorkloadStats>,
    due: Instant,
    first: Arc<std::sync::Mutex<Option<Duration>>>,
) -> tonic::Code {
    let path = match tonic::codegen::http::uri::PathAndQuery::try_from(spec.method.path.as_str()) {
        Ok(p) => p,
        Err(_) => return tonic::Code::Internal,
    };
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut req = match body {
        Payload::Stream(messages) => {
            let timing = super::streams::Timing { due, first: &first };
            return super::streams::call(grpc, path, meta, messages, &spec, &stats, timing).await;
        }
        Payload::One(b) => {
            let (metadata, extensions, ()) = meta.into_parts();
            tonic::Request::from_parts(metadata, extensions, b)
        }
    };
    if !spec.method.server_streaming {
        // A stream's grpc-timeout would end it at the deadline; its wait for the first message is bounded below.
        req.set_timeout(spec.deadline);
    }
    let start = async {
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        if spec.method.server_streaming {
            grpc.server_streaming(req, path, Raw)
                .await
                .map(|r| Some(r.into_inner()))
        } else {
            grpc.unary(req, path, Raw).await.map(|_| None)
        }
    };
    let stream = match tokio::time::timeout(spec.deadline, start).await {
        Ok(Ok(Some(stream))) => stream,
        Ok(Ok(None)) => return tonic::Code::Ok,
        Ok(Err(status)) => return crate::metrics::code_of(&status),
        Err(_) => return tonic::Code::DeadlineExceeded,
    };
    read_stream(stream, &spec, &stats, due, &first).await
}

/// Counts a stream's messages until the server ends it, or until fdsoak's own bound.
pub(super) async fn read_stream(
    mut stream: tonic::Streaming<()>,
    spec: &Spec,
    stats: &WorkloadStats,
    due: Instant,
    first: &std::sync::Mutex<Option<Duration>>,
) -> tonic::Code {
    let opened = Instant::now();
    // Without a bound of its own, a stream still ends with the phase (the workload is stopped).
    let end = spec.stream_duration.map(|d| opened + d);
    let mut count = 0u64;
    loop {
        let next = async {
            match end {
                Some(end) => tokio::time::timeout_at(end, stream.message()).await.ok(),
                None => Some(stream.message().await),
            }
        };
        let wait_first = count == 0 && end.is_none_or(|e| e > opened + spec.deadline);
        let msg = if wait_first {
            match tokio::time::timeout(spec.deadline, next).await {
                Ok(m) => m,
                Err(_) => return tonic::Code::DeadlineExceeded,
            }
        } else {
            next.await
        };
        match msg {
            // fdsoak's own bound: ending the stream here is the plan, not a failure.
            None => return tonic::Code::Ok,
            Some(Ok(Some(()))) => {
                count += 1;
                stats.messages.fetch_add(1, Relaxed);
                if count == 1 {
                    *crate::vocab::lock(first) = Some(due.elapsed());
                }
                if spec.max_messages.is_some_and(|m| count >= m) {
                    return tonic::Code::Ok;
                }
            }
            Some(Ok(None)) => return tonic::Code::Ok,
            Some(Err(status)) => return crate::metrics::code_of(&status),
        }
    }
}

/// The `ready = "rpc"` check: calls `method` on a fresh channel until it answers with any
/// status but UNAVAILABLE, for at most `timeout`. Returns the last status seen otherwise.
pub async fn wait_answer(dial: &crate::transport::Dial, method: &Method, timeout: Duration) -> Result<(), String> {
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
    let endpoint = dial.endpoint().map_err(|e| unavailable(&e))?;
    let channel = dial.connect(&endpoint).await.map_err(|e| unavailable(&e))?;
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
