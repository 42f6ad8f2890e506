//! Bodies over an h2 stream, for [`super::conn`]: a request body sent as h2
//! DATA frames as the stream's flow control allows ([`Pipe`]), a response body
//! read from one ([`Incoming`]), and how an h2 error reads as a gRPC status
//! ([`status_of`]).

use super::heard::Heard;
use bytes::{Buf, Bytes};
use h2::{RecvStream, SendStream};
use http_body::{Body, Frame};
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Sends a request body on an h2 stream: each frame as the stream's send window
/// allows, then the end of the stream (or the trailers, if the body has any).
pub(super) struct Pipe {
    body: tonic::body::Body,
    stream: SendStream<Bytes>,
    pending: Option<Bytes>,
}

impl Pipe {
    pub(super) fn new(body: tonic::body::Body, stream: SendStream<Bytes>) -> Pipe {
        Pipe {
            body,
            stream,
            pending: None,
        }
    }

    /// Ready once the whole body is sent, or the stream has failed or been reset.
    pub(super) fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        loop {
            if let Some(data) = self.pending.as_mut() {
                self.stream.reserve_capacity(data.len());
                let granted = match ready!(self.stream.poll_capacity(cx)) {
                    Some(Ok(n)) => n,
                    Some(Err(e)) => return Poll::Ready(Err(h2_error(e))),
                    // The stream was reset: the response says why.
                    None => return Poll::Ready(Ok(())),
                };
                let chunk = data.split_to(granted.min(data.len()));
                if data.is_empty() {
                    self.pending = None;
                }
                self.stream.send_data(chunk, false).map_err(h2_error)?;
                continue;
            }
            if let Poll::Ready(reset) = self.stream.poll_reset(cx) {
                // The server no longer wants the body; what it answered is in the response.
                return Poll::Ready(reset.map(|_| ()).map_err(h2_error));
            }
            match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                None => {
                    self.stream.send_data(Bytes::new(), true).map_err(h2_error)?;
                    return Poll::Ready(Ok(()));
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(mut data) => {
                        let bytes = data.copy_to_bytes(data.remaining());
                        if !bytes.is_empty() {
                            self.pending = Some(bytes);
                        }
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            self.stream.send_trailers(trailers).map_err(h2_error)?;
                            return Poll::Ready(Ok(()));
                        }
                    }
                },
                Some(Err(e)) => {
                    self.stream.send_reset(h2::Reason::CANCEL);
                    return Poll::Ready(Err(e.into()));
                }
            }
        }
    }

    /// Sends the rest of the body on a task of its own (a stream still being written
    /// when its response has come: client streaming and bidirectional calls). The
    /// [`Incoming`] it returns resets the stream (CANCEL) if it is dropped before
    /// the response ends: the caller gave up the call, and a cancel is not a half-close.
    pub(super) fn finish_elsewhere(mut self, recv: RecvStream, heard: Heard) -> Incoming {
        let (give_up, mut given_up) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            std::future::poll_fn(|cx| {
                if let Poll::Ready(Ok(())) = Pin::new(&mut given_up).poll(cx) {
                    self.stream.send_reset(h2::Reason::CANCEL);
                    return Poll::Ready(());
                }
                self.poll_send(cx).map(|_| ())
            })
            .await;
        });
        Incoming {
            recv,
            heard,
            data_done: false,
            give_up: Some(give_up),
        }
    }
}

/// A response body read from an h2 stream: its DATA frames, then its trailers,
/// the window given back as each frame is taken.
pub(super) struct Incoming {
    recv: RecvStream,
    heard: Heard,
    data_done: bool,
    /// Tells the task still sending the request body that the call was given up.
    give_up: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Incoming {
    pub(super) fn new(recv: RecvStream, heard: Heard) -> Incoming {
        Incoming {
            recv,
            heard,
            data_done: false,
            give_up: None,
        }
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Some(give_up) = self.give_up.take() {
            if !self.recv.is_end_stream() {
                let _ = give_up.send(());
            }
        }
    }
}

impl Body for Incoming {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if !self.data_done {
            match ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(status_of(&e, &self.heard)))),
                None => self.data_done = true,
            }
        }
        match ready!(self.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(status_of(&e, &self.heard)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}

/// An h2 error as the status tonic's client reads from the service.
fn h2_error(e: h2::Error) -> BoxError {
    // The response, read with the connection's words, says what the server said.
    Box::new(status_of(&e, &Heard::default()))
}

/// An h2 error as a gRPC status: its code as [`code_of`] maps it, and in its message
/// what the server said at the HTTP/2 level (`heard`: its reset of the stream, or the
/// connection's last GOAWAY with its code and debug data), as grpcio tells it.
pub(super) fn status_of(e: &h2::Error, heard: &Heard) -> tonic::Status {
    let message = match heard.cause_of(e) {
        // h2's own words for these hold the same, less plainly.
        Some(cause) if e.is_remote() && (e.is_reset() || e.is_go_away()) => format!("h2 protocol error: {cause}"),
        Some(cause) => format!("h2 protocol error: {e}, after {cause}"),
        None => format!("h2 protocol error: {e}"),
    };
    tonic::Status::new(code_of(e), message)
}

/// An h2 error's gRPC status code, as gRPC maps HTTP/2 errors: by the reset's or
/// GOAWAY's reason when there is one; a connection that failed or closed
/// (no reason: an I/O error) is UNAVAILABLE.
pub(super) fn code_of(e: &h2::Error) -> tonic::Code {
    use h2::Reason;
    use tonic::Code;
    match e.reason() {
        None => Code::Unavailable,
        Some(Reason::REFUSED_STREAM) => Code::Unavailable,
        Some(Reason::CANCEL) => Code::Cancelled,
        Some(Reason::ENHANCE_YOUR_CALM) => Code::ResourceExhausted,
        Some(Reason::INADEQUATE_SECURITY) => Code::PermissionDenied,
        // A GOAWAY without error closes the connection to new streams: try another.
        Some(Reason::NO_ERROR) if e.is_go_away() => Code::Unavailable,
        Some(_) => Code::Internal,
    }
}
