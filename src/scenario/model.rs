//! The serde model of a scenario file: what a user may write, with defaults.
//!
//! Every struct rejects unknown keys. Fields that only make sense for some
//! workload kinds or target modes are optional here and checked in
//! [`super::validate`], so that each error can point at the exact key.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A whole scenario file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used in the report directory name.
    pub name: String,
    /// What the scenario reproduces, in a sentence or two.
    #[serde(default)]
    pub description: String,
    /// Which server to drive and watch.
    #[serde(default)]
    pub target: TargetSpec,
    /// How often file descriptors are sampled.
    #[serde(default)]
    pub sampler: SamplerSpec,
    /// Phases run in order; the first is the baseline, the last should be idle (a drain).
    pub phases: Vec<Phase>,
    /// Pass/fail thresholds.
    #[serde(default)]
    pub gates: Gates,
}

/// How fdsoak finds or starts the server under test.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TargetMode {
    /// `fdsoak serve`, the built-in reference target, in its own process.
    #[default]
    Builtin,
    /// A command line with a `{port}` placeholder, started by fdsoak.
    Spawn,
    /// A server that is already running at `address`.
    Address,
}

/// The `[target]` table.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    #[serde(default)]
    pub mode: TargetMode,
    /// builtin: every N-th Check opens a file and keeps it.
    pub leak_fd_every: Option<u64>,
    /// builtin: every N-th Check health-checks itself over a new channel it never drops.
    pub leak_channel_every: Option<u64>,
    /// builtin: keep a duplicate of every accepted socket (CLOSE_WAIT after peers leave).
    pub hold_closed_conns: Option<bool>,
    /// builtin, spawn: RLIMIT_NOFILE for the target process.
    pub nofile: Option<u64>,
    /// spawn: the command line, with `{port}` where the port goes.
    pub command: Option<String>,
    /// address: `HOST:PORT` of a running server.
    pub address: Option<String>,
    /// address: the server's PID; found from the listening socket when absent.
    pub pid: Option<i32>,
    /// How long the target has to answer its first health check.
    #[serde(default, with = "humantime_serde")]
    pub ready_timeout: Option<Duration>,
}

/// The `[sampler]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerSpec {
    #[serde(with = "humantime_serde", default = "default_interval")]
    pub interval: Duration,
}

fn default_interval() -> Duration {
    Duration::from_secs(1)
}

impl Default for SamplerSpec {
    fn default() -> Self {
        SamplerSpec {
            interval: default_interval(),
        }
    }
}

/// One `[[phases]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub name: String,
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// No workloads makes an idle phase.
    #[serde(default)]
    pub workloads: Vec<Workload>,
}

/// The kinds of load a workload can generate.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    /// Unary grpc.health.v1.Health/Check calls on an open-model timetable.
    HealthCheck,
    /// Long-lived grpc.health.v1.Health/Watch streams.
    Watch,
}

/// How a workload gets its channels.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
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

/// One `[[phases.workloads]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub kind: WorkloadKind,
    /// Label in reports; defaults to `<kind>-<index>`.
    pub name: Option<String>,
    /// health_check: calls started per second.
    pub rate: Option<f64>,
    /// health_check, instead of rate: this many calls back to back (closed model, for saturation).
    pub concurrency: Option<u64>,
    /// health_check: calls allowed in flight; a scheduled call beyond it is skipped and counted.
    pub max_in_flight: Option<u64>,
    /// Per-call deadline (health_check) or connect deadline (watch).
    #[serde(default, with = "humantime_serde")]
    pub deadline: Option<Duration>,
    /// The service name sent in the request; "" asks about the whole server.
    pub service: Option<String>,
    #[serde(default)]
    pub channel: ChannelPolicy,
    /// watch: streams held open at once.
    pub streams: Option<u64>,
    /// watch: close and re-open each stream this often.
    #[serde(default, with = "humantime_serde")]
    pub reopen_every: Option<Duration>,
}

/// The `[gates]` table: thresholds that decide pass or fail.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Gates {
    /// FDs above the baseline allowed at the end of the run.
    pub max_residual_fds: i64,
    /// Robust FD growth rate allowed during the load phases, per hour.
    pub max_growth_per_hour: f64,
    /// Growth below this many FDs over the load window is treated as noise.
    pub min_growth_fds: f64,
    /// CLOSE_WAIT sockets above the baseline allowed at the end of the run.
    pub max_close_wait: i64,
    /// Peak FDs as a fraction of the soft RLIMIT_NOFILE.
    pub max_fd_usage: f64,
    /// Fail when growth projects the soft limit sooner than this.
    #[serde(with = "humantime_serde")]
    pub min_time_to_limit: Duration,
    /// Failed calls as a fraction of finished calls, per workload and phase.
    pub max_error_rate: f64,
    /// Optional p99 latency ceiling, per workload and phase.
    #[serde(with = "humantime_serde")]
    pub max_p99: Option<Duration>,
}

impl Default for Gates {
    fn default() -> Self {
        Gates {
            max_residual_fds: 5,
            max_growth_per_hour: 360.0,
            min_growth_fds: 10.0,
            max_close_wait: 5,
            max_fd_usage: 0.8,
            min_time_to_limit: Duration::from_secs(24 * 3600),
            max_error_rate: 0.01,
            max_p99: None,
        }
    }
}

impl Workload {
    /// The label used in reports.
    pub fn label(&self, index: usize) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("{}-{}", self.kind.as_str(), index),
        }
    }
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::HealthCheck => "health_check",
            WorkloadKind::Watch => "watch",
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
