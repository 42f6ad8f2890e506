//! Client-streaming and bidirectional calls of the `rpc` workload: each call
//! is one stream that sends every body of the workload, in order, paced by
//! `send_interval`, and then ends the way `hangup` says:
//!
//! - `half_close`: half-closes after the last message and reads replies
//!   until the server ends the stream (or fdsoak's bound);
//! - `cancel`: never half-closes; cancels (RST_STREAM CANCEL) at fdsoak's
//!   bound (`stream_duration`, `max_messages`), or once its last message is
//!   sent when it has none;
//! - `abandon`: stops reading once its last message is sent and keeps the
//!   stream as it is, neither half-closed nor cancelled, until the workload
//!   ends: the client that forgot a stream. At most [`MAX_PARKED`] are kept;
//!   beyond that a stream is cancelled instead.
//!
//! Replies are counted as messages; the latency is the time to the first
//! reply. A stream that fdsoak ends itself is OK.

use super::call::{read_stream, Call};
use super::Spec;
use crate::rpc::codec::Raw;
use crate::scenario::Hangup;
use bytes::Bytes;
use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

/// Streams kept open by `hangup = "abandon"` in one workload, at most.
pub(crate) const MAX_PARKED: usize = 10_000;

/// Abandoned streams (their sender and their call), dropped when the workload ends.
#[derive(Default)]
pub(crate) struct Parked(Mutex<Vec<Box<dyn Any + Send>>>);

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Parked({})", crate::domain::lock(&self.0).len())
    }
}

impl Parked {
    /// Keeps `what` until the workload ends; false when full (the caller drops it: a cancel).
    fn keep(&self, what: Box<dyn Any + Send>) -> bool {
        let mut v = crate::domain::lock(&self.0);
        if v.len() >= MAX_PARKED {
            return false;
        }
        v.push(what);
        true
    }
}

/// Aborts a task when dropped (the sender of a stream's messages).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One stream on `channel`: sends `messages`, then reads and ends as the workload's `hangup` says.
pub(crate) async fn call(
    channel: crate::transport::conn::Conn,
    meta: tonic::Request<()>,
    messages: Arc<Vec<Bytes>>,
    call: &Call,
) -> tonic::Code {
    let Some(path) = call.path() else {
        return tonic::Code::Internal;
    };
    let spec = &*call.spec;
    let mut grpc = tonic::client::Grpc::new(channel);
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let (metadata, extensions, ()) = meta.into_parts();
    let req = tonic::Request::from_parts(metadata, extensions, ReceiverStream::new(rx));
    let (sent_tx, sent_rx) = oneshot::channel::<()>();
    let (interval, half_close) = (spec.send_interval, spec.hangup == Hangup::HalfClose);
    // Declared before the call, so dropped after it: a cancel is a reset, not a half-close first.
    let sender = AbortOnDrop(tokio::spawn(async move {
        for m in messages.iter() {
            if tx.send(m.clone()).await.is_err() {
                return;
            }
            if let Some(d) = interval {
                tokio::time::sleep(d).await;
            }
        }
        let _ = sent_tx.send(());
        if !half_close {
            // Keep the request side open: no half-close, ever; the stream ends by a cancel.
            std::future::pending::<()>().await;
        }
    }));
    if let Err(e) = grpc.ready().await {
        return crate::metrics::code_of(&tonic::Status::unavailable(e.to_string()));
    }
    let sent = async {
        let _ = sent_rx.await;
    };
    if spec.method.server_streaming {
        let mut pending = Box::pin(grpc.streaming(req, path, Raw));
        let stream = match tokio::time::timeout(spec.deadline, &mut pending).await {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) => return crate::driver::failed(&call.stats, &status),
            Err(_) => return tonic::Code::DeadlineExceeded,
        };
        match spec.hangup {
            Hangup::HalfClose => read_stream(stream, call).await,
            Hangup::Cancel => {
                let bound = async {
                    sent.await;
                    if let Some(d) = spec.stream_duration {
                        tokio::time::sleep(d).await;
                    }
                };
                tokio::select! {
                    code = read_stream(stream, call) => code,
                    _ = bound => tonic::Code::Ok,
                }
            }
            Hangup::Abandon => {
                sent.await;
                park(spec, Box::new((sender, stream)))
            }
        }
    } else {
        // The call owns its client, so that an abandoned one can be kept whole.
        let mut pending = Box::pin(async move { grpc.client_streaming(req, path, Raw).await });
        // The reply may come early (an error); otherwise all messages go first.
        tokio::select! {
            r = &mut pending => return answered(r, call),
            _ = sent => {}
        }
        match spec.hangup {
            Hangup::HalfClose => match tokio::time::timeout(spec.deadline, pending).await {
                Ok(r) => answered(r, call),
                Err(_) => tonic::Code::DeadlineExceeded,
            },
            Hangup::Cancel => {
                let bound = spec.stream_duration.unwrap_or(Duration::ZERO);
                match tokio::time::timeout(bound, pending).await {
                    Ok(r) => answered(r, call),
                    Err(_) => tonic::Code::Ok,
                }
            }
            Hangup::Abandon => park(spec, Box::new((sender, pending))),
        }
    }
}

/// Parks an abandoned stream: OK, or a cancel (also OK) when the bin is full.
fn park(spec: &Spec, what: Box<dyn Any + Send>) -> tonic::Code {
    if !spec.parked.keep(what) {
        tracing::debug!("{MAX_PARKED} streams already abandoned: this one is cancelled");
    }
    tonic::Code::Ok
}

/// The code of a client-streaming call's single reply; the reply counts as a message.
fn answered(r: Result<tonic::Response<()>, tonic::Status>, call: &Call) -> tonic::Code {
    match r {
        Ok(_) => {
            call.replied(true);
            tonic::Code::Ok
        }
        Err(status) => crate::driver::failed(&call.stats, &status),
    }
}
