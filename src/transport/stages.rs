//! Where a call's lateness comes from, for the benchmark: with
//! `FDSOAK_LAG_BREAKDOWN=FILE` set, the time from each call's due time to
//! four moments on its way out is recorded: the timetable's timer returning,
//! the call's first poll, the request handed to HTTP/2, and the start of the
//! first write to the socket after that (which carries its HEADERS frame). Each is an
//! HDR histogram; their percentiles go to FILE as JSON when a timetable
//! ends. Unset, nothing is recorded and nothing is allocated per call.
//! A connection's socket is wrapped in [`Stamped`], which notes its writes.
//! Streams opened by the client- and bidirectional-streaming methods are
//! not followed past their first poll.

use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use tokio::time::Instant;

/// The variable that turns the breakdown on, naming the file it is written to.
pub(crate) const ENV: &str = "FDSOAK_LAG_BREAKDOWN";

/// A moment on a call's way out, each measured from its due time.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stage {
    /// The timetable's timer returned for this call.
    Timer = 0,
    /// The call's task was first polled (the report's timetable lag).
    FirstPoll = 1,
    /// The request was handed to HTTP/2 (its stream opened).
    Handed = 2,
    /// The connection wrote to the socket with the request among what it sent.
    Written = 3,
}

const NAMES: [&str; 4] = ["timer", "first_poll", "handed_to_h2", "first_byte_written"];

/// A request's due time, carried in its extensions to the connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Due(pub Instant);

/// Due times of requests handed to one connection and not yet written.
pub(crate) type Pending = Arc<Mutex<VecDeque<Instant>>>;

struct Stages {
    file: PathBuf,
    hists: [Mutex<Histogram<u64>>; 4],
}

fn stages() -> Option<&'static Stages> {
    static STAGES: OnceLock<Option<Stages>> = OnceLock::new();
    STAGES
        .get_or_init(|| {
            let file = std::env::var_os(ENV)?;
            let hist = || Histogram::new(3).ok().map(Mutex::new);
            Some(Stages {
                file: file.into(),
                hists: [hist()?, hist()?, hist()?, hist()?],
            })
        })
        .as_ref()
}

/// Whether the breakdown is being recorded.
pub(crate) fn enabled() -> bool {
    stages().is_some()
}

/// Records that `stage` was reached now by the call due at `due`.
pub(crate) fn record(stage: Stage, due: Instant) {
    record_at(stage, due, Instant::now());
}

fn record_at(stage: Stage, due: Instant, at: Instant) {
    if let Some(s) = stages() {
        let late = at.saturating_duration_since(due).as_nanos() as u64;
        let _ = crate::domain::lock(&s.hists[stage as usize]).record(late.max(1));
    }
}

/// A queue for one connection's handed requests, when the breakdown is on.
pub(crate) fn pending() -> Option<Pending> {
    enabled().then(Pending::default)
}

/// The connection began a write to its socket at `began`, and it took bytes: every
/// request handed before then had its first byte in it (or in an earlier write).
pub(crate) fn written(pending: &Pending, began: Instant) {
    let mut queue = crate::domain::lock(pending);
    while let Some(due) = queue.pop_front() {
        record_at(Stage::Written, due, began);
    }
}

/// Writes each stage's percentiles (microseconds, from the due time) to the file.
pub(crate) fn write() {
    let Some(s) = stages() else { return };
    let rows: Vec<serde_json::Value> = NAMES
        .iter()
        .zip(&s.hists)
        .map(|(name, h)| {
            let h = crate::domain::lock(h);
            let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
            serde_json::json!({
                "stage": name,
                "count": h.len(),
                "p50_us": us(0.5),
                "p99_us": us(0.99),
                "max_us": h.max() as f64 / 1000.0,
            })
        })
        .collect();
    let text = serde_json::json!({ "from": "each call's due time", "stages": rows }).to_string();
    // Whole or not at all: written beside the file, then renamed over it.
    let tmp = s.file.with_extension("tmp");
    if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &s.file)) {
        tracing::warn!("{ENV}: cannot write {}: {e}", s.file.display());
    }
}

/// A connection's socket, noting each write for the lag breakdown when it is on.
pub(crate) struct Stamped<T> {
    io: T,
    pending: Option<Pending>,
}

impl<T> Stamped<T> {
    pub(crate) fn new(io: T, pending: Option<Pending>) -> Stamped<T> {
        Stamped { io, pending }
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Stamped<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Stamped<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let began = self.pending.is_some().then(Instant::now);
        let wrote = Pin::new(&mut self.io).poll_write(cx, buf);
        if let (Some(pending), Some(began), Poll::Ready(Ok(1..))) = (&self.pending, began, &wrote) {
            written(pending, began);
        }
        wrote
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let began = self.pending.is_some().then(Instant::now);
        let wrote = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if let (Some(pending), Some(began), Poll::Ready(Ok(1..))) = (&self.pending, began, &wrote) {
            written(pending, began);
        }
        wrote
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
