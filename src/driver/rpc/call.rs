//! One unary or server-streaming call of the `rpc` workload, and the
//! reading of a stream's replies that every streaming call shares; with
//! [`Call`], what every attempt of one call shares.

use super::Spec;
use crate::metrics::WorkloadStats;
use crate::rpc::codec::Raw;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// One call of a workload, across its attempts: the workload, where it counts,
/// when it was due, and when its first reply came (a stream's latency).
#[derive(Clone)]
pub(crate) struct Call {
    pub spec: Arc<Spec>,
    pub stats: Arc<WorkloadStats>,
    pub due: Instant,
    first: Arc<Mutex<Option<Duration>>>,
}

impl Call {
    pub(crate) fn new(spec: Arc<Spec>, stats: Arc<WorkloadStats>, due: Instant) -> Call {
        Call {
            spec,
            stats,
            due,
            first: Arc::default(),
        }
    }

    /// The method's path, as HTTP/2 sends it.
    pub(crate) fn path(&self) -> Option<tonic::codegen::http::uri::PathAndQuery> {
        tonic::codegen::http::uri::PathAndQuery::try_from(self.spec.method.path.as_str()).ok()
    }

    /// Notes a reply (a message of a stream, or a client stream's answer); `first`:
    /// the attempt's first, which sets the latency. Later messages only count, so a
    /// long stream takes no lock per message.
    pub(crate) fn replied(&self, first: bool) {
        self.stats.messages.fetch_add(1, Relaxed);
        if first {
            let mut at = crate::domain::lock(&self.first);
            if at.is_none() {
                *at = Some(self.due.elapsed());
            }
        }
    }

    /// The call's latency: to its first reply when it had one that counts
    /// (streams), else from the scheduled start to now, across every attempt.
    pub(crate) fn latency(&self) -> Duration {
        crate::domain::lock(&self.first).unwrap_or_else(|| self.due.elapsed())
    }
}

/// One attempt on `channel` of a unary call, or of a server stream read until
/// the server ends it or fdsoak does.
pub(super) async fn one(
    channel: crate::transport::conn::Conn,
    meta: tonic::Request<()>,
    body: bytes::Bytes,
    call: &Call,
) -> tonic::Code {
    let Some(path) = call.path() else {
        return tonic::Code::Internal;
    };
    let spec = &call.spec;
    let mut grpc = tonic::client::Grpc::new(channel);
    let (metadata, extensions, ()) = meta.into_parts();
    let mut req = tonic::Request::from_parts(metadata, extensions, body);
    if crate::transport::stages::enabled() {
        req.extensions_mut().insert(crate::transport::stages::Due(call.due));
    }
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
        Ok(Err(status)) => return crate::driver::failed(&call.stats, &status),
        Err(_) => return tonic::Code::DeadlineExceeded,
    };
    read_stream(stream, call).await
}

/// Counts a stream's messages until the server ends it, or until fdsoak's own bound.
pub(super) async fn read_stream(mut stream: tonic::Streaming<()>, call: &Call) -> tonic::Code {
    let spec = &call.spec;
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
                call.replied(count == 1);
                if spec.max_messages.is_some_and(|m| count >= m) {
                    return tonic::Code::Ok;
                }
            }
            Some(Ok(None)) => return tonic::Code::Ok,
            Some(Err(status)) => return crate::driver::failed(&call.stats, &status),
        }
    }
}
