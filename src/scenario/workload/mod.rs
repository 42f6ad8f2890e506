//! A workload, typed: the keys every kind shares are held once, and each kind's
//! own keys sit in its variant of [`Load`], so a watch has no rate and an rpc
//! always has a method. A file writes a workload as one flat table
//! ([`table::WorkloadTable`], which is also the shape reports and the schema
//! show); serde converts it, refusing a key that belongs to another kind and a
//! kind's missing key there. Value rules (a positive rate, a non-zero
//! duration) are [`super::validate`]'s.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

mod table;

pub use table::{WorkloadError, WorkloadTable};

/// One `[[phases.workloads]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(try_from = "WorkloadTable", into = "WorkloadTable")]
pub struct Workload {
    /// Label in reports; defaults to `<kind>-<index>`.
    pub name: Option<String>,
    /// Per-call deadline (health_check, rpc) or connect deadline (watch).
    pub deadline: Option<Duration>,
    pub channel: ChannelPolicy,
    /// HTTP/2 keepalive ping interval on the workload's channels.
    pub keepalive_interval: Option<Duration>,
    /// How long a keepalive ping may go unanswered before the connection is dropped.
    pub keepalive_timeout: Option<Duration>,
    /// This workload's own error-rate gate, replacing `[gates] max_error_rate`.
    pub max_error_rate: Option<f64>,
    /// What the workload sends: its kind, with that kind's keys.
    pub load: Load,
}

/// A workload's kind, with the keys only that kind has.
#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    HealthCheck(HealthCheck),
    Watch(Watch),
    Rpc(Rpc),
}

/// `kind = "health_check"`: unary Health/Check calls.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    pub calls: Calls,
    /// The service name sent in the request; "" asks about the whole server.
    pub service: Option<String>,
}

/// `kind = "watch"`: long-lived Health/Watch streams.
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    /// Streams held open at once.
    pub streams: u64,
    /// Close and re-open each stream this often.
    pub reopen_every: Option<Duration>,
    /// The service name sent in the request; "" asks about the whole server.
    pub service: Option<String>,
}

/// `kind = "rpc"`: any method, from `.proto` files or the target's reflection.
#[derive(Debug, Clone, PartialEq)]
pub struct Rpc {
    pub calls: Calls,
    /// `package.Service/Method`.
    pub method: String,
    /// `.proto` files that define the method, compiled at run time.
    pub protos: Vec<PathBuf>,
    /// Where imports are looked up; by default each proto's own directory.
    pub import_paths: Vec<PathBuf>,
    /// The request as JSON, or the file that holds it; `{}` without either.
    pub body: Option<Body>,
    /// Streams: fdsoak ends a stream after this long (counted OK).
    pub stream_duration: Option<Duration>,
    /// Server-streaming: fdsoak ends a stream after this many messages.
    pub max_messages: Option<u64>,
    /// Client-streaming or bidirectional: the pause between a stream's messages.
    pub send_interval: Option<Duration>,
    /// Client-streaming or bidirectional: how fdsoak ends a stream once its messages are sent.
    pub hangup: Option<Hangup>,
}

/// An rpc workload's request: `data` or `data_file`, never both.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// The JSON itself (an array is sent round-robin).
    Data(String),
    /// A file holding the JSON.
    File(PathBuf),
}

/// How the calls of a health_check or rpc workload are paced, and retried.
#[derive(Debug, Clone, PartialEq)]
pub struct Calls {
    pub pacing: Pacing,
    pub retry: Option<RetrySpec>,
}

/// `rate` (the open model) or `concurrency` (the closed model), never both.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Calls started per second, and how many may be in flight at once.
    Rate { rate: f64, max_in_flight: Option<u64> },
    /// This many calls back to back, for saturation.
    Concurrency(u64),
}

impl Pacing {
    /// The open model's calls per second; None for the closed model.
    pub fn rate(&self) -> Option<f64> {
        match *self {
            Pacing::Rate { rate, .. } => Some(rate),
            Pacing::Concurrency(_) => None,
        }
    }
}

impl Workload {
    /// The workload's kind, as its `kind` key names it.
    pub fn kind(&self) -> WorkloadKind {
        match self.load {
            Load::HealthCheck(_) => WorkloadKind::HealthCheck,
            Load::Watch(_) => WorkloadKind::Watch,
            Load::Rpc(_) => WorkloadKind::Rpc,
        }
    }

    /// The label used in reports.
    pub fn label(&self, index: usize) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("{}-{}", self.kind().as_str(), index),
        }
    }

    /// The calls of a health_check or rpc workload; None for a watch.
    pub fn calls(&self) -> Option<&Calls> {
        match &self.load {
            Load::HealthCheck(h) => Some(&h.calls),
            Load::Rpc(r) => Some(&r.calls),
            Load::Watch(_) => None,
        }
    }

    /// An rpc workload's own keys.
    pub fn rpc(&self) -> Option<&Rpc> {
        match &self.load {
            Load::Rpc(r) => Some(r),
            _ => None,
        }
    }
}

/// Which channel a retry uses.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnRetry {
    /// Retry on the channel that failed.
    #[default]
    SameChannel,
    /// Close the failed channel and retry on a new one.
    NewChannel,
    /// Retry on a new channel and keep the failed one open: the seed's bug.
    NewChannelLeak,
}

/// A retry policy in the shape of gRFC A6.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Attempts in all, the first included (2 to 10).
    pub max_attempts: u32,
    #[serde(
        with = "crate::scenario::duration",
        default = "crate::scenario::defaults::serde_default::initial_backoff"
    )]
    #[schemars(with = "String")]
    pub initial_backoff: Duration,
    #[serde(
        with = "crate::scenario::duration",
        default = "crate::scenario::defaults::serde_default::max_backoff"
    )]
    #[schemars(with = "String")]
    pub max_backoff: Duration,
    #[serde(default = "crate::scenario::defaults::serde_default::backoff_multiplier")]
    pub backoff_multiplier: f64,
    /// Each backoff is randomised by up to this fraction either way.
    #[serde(default = "crate::scenario::defaults::serde_default::jitter")]
    pub jitter: f64,
    /// Status codes that are retried, by name.
    #[serde(default = "crate::scenario::defaults::serde_default::retryable")]
    pub retryable: Vec<String>,
    #[serde(default)]
    pub on_retry: OnRetry,
}

/// The kinds of load a workload can generate.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    /// Unary grpc.health.v1.Health/Check calls on an open-model timetable.
    HealthCheck,
    /// Long-lived grpc.health.v1.Health/Watch streams.
    Watch,
    /// Any unary or server-streaming method, from `.proto` files, with a JSON body.
    Rpc,
}

/// How fdsoak ends a client-streaming or bidirectional stream once its messages are sent.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Hangup {
    /// Half-close, then read replies until the server ends the stream (or fdsoak's bound).
    #[default]
    HalfClose,
    /// Cancel (RST_STREAM CANCEL) at fdsoak's bound, or at once without one.
    Cancel,
    /// Stop reading and keep the stream open, neither half-closed nor cancelled, until the workload ends.
    Abandon,
}

/// How a workload gets its channels.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelPolicy {
    /// One channel for the whole workload.
    #[default]
    Shared,
    /// A new channel for every call (or stream), closed after it.
    PerCall,
    /// A new channel for every call, never closed: the client-side leak.
    PerCallLeak,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::HealthCheck => "health_check",
            WorkloadKind::Watch => "watch",
            WorkloadKind::Rpc => "rpc",
        }
    }
}

impl ChannelPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelPolicy::Shared => "shared",
            ChannelPolicy::PerCall => "per_call",
            ChannelPolicy::PerCallLeak => "per_call_leak",
        }
    }
}
