//! The report model: one versioned struct, written as `summary.json`, that
//! every exporter renders and that later tools (compare, merge, HTML) read.
//!
//! Bump [`SCHEMA_VERSION`] on any change that an older reader would
//! misunderstand; adding optional fields does not need a bump.

use crate::analysis::findings::{Finding, WorkloadFigures};
use crate::analysis::ProcessAnalysis;
use crate::domain::{Check, FindingKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SCHEMA_VERSION: u32 = 1;

/// The JSON Schema of `summary.json`, generated from this model (committed as
/// `schema/summary.schema.json`; a test keeps the two equal).
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Summary).to_value();
    if let Some(o) = schema.as_object_mut() {
        o.insert("$id".into(), "https://fdsoak.dev/schema/summary.schema.json".into());
        o.insert(
            "description".into(),
            format!("fdsoak summary.json, schema_version {SCHEMA_VERSION}").into(),
        );
    }
    schema
}

/// The outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every gate passed.
    Pass,
    /// At least one gate failed: a leak or a regression.
    Fail,
    /// The run could not complete: the target was unreachable or died, or I/O failed.
    Error,
    /// The user stopped the run; the figures cover the part that ran.
    Interrupted,
    /// A checkpoint written while the run went on (its process is still running).
    Running,
    /// A checkpoint of a run whose process never finished (killed, out of memory, timed out):
    /// the figures cover the run up to `checkpoint.at_secs`.
    Incomplete,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
            Verdict::Interrupted => "interrupted",
            Verdict::Running => "running",
            Verdict::Incomplete => "incomplete",
        }
    }
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    pub schema_version: u32,
    pub verdict: Verdict,
    pub findings: Vec<FindingRecord>,
    pub tool: Tool,
    pub scenario: ScenarioInfo,
    pub target: TargetInfo,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub duration_secs: f64,
    pub sampler_interval_secs: f64,
    pub checks: Vec<Check>,
    pub processes: Vec<ProcessAnalysis>,
    pub phases: Vec<PhaseInfo>,
    pub workloads: Vec<WorkloadReport>,
    /// Files in the report directory, by role.
    pub files: BTreeMap<String, String>,
    /// Faults the proxy fired, in order (empty when the scenario has none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fault_events: Vec<crate::fault::FaultEvent>,
    /// The fault proxy's counters, when one was in the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<crate::fault::ProxyStats>,
    /// The client under test, when the run had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientReport>,
    /// For a merged report: the report directories it was merged from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    /// The build the run tested (`run --label`), for `fdsoak trend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The host the driver ran on (its hostname; a pod's name in Kubernetes).
    #[serde(default)]
    pub host: String,
    /// Set on a checkpoint (verdict `running`, read back as `incomplete` once its process is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointInfo>,
    /// For one driver of a sharded run: its share and when its phases began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// With `--origin`: which processes carried an agent, and what origins could not cover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<OriginReport>,
    /// What the processes fdsoak started wrote: their logs, their last lines when the run
    /// needs them explained, and their own complaints of descriptor exhaustion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<ProcessOutput>,
}

/// What one process fdsoak started wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProcessOutput {
    pub role: crate::domain::Role,
    /// Its log in the report directory (`target.log`, `client.log`).
    pub log: String,
    /// Its last lines, oldest first, kept when they explain the run's end: the process died,
    /// or never became ready, or the run ended in error. Secrets redacted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_lines: Vec<String>,
    /// Its own words for running out of descriptors, when it wrote them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exhaustion: Option<Exhaustion>,
}

/// A process's complaints of descriptor exhaustion (EMFILE, ENFILE), from its output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Exhaustion {
    /// The complaint's words as glibc gives them ("Too many open files").
    pub words: String,
    /// Lines that made it.
    pub count: u64,
    /// When the first came, in seconds since the run's start.
    pub first_at_secs: f64,
    /// Descriptors the process held then, at the nearest sample, and its soft limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// Which processes carried an origin agent, and what origins could not cover.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OriginReport {
    /// The roles whose processes were given an agent.
    pub agents: Vec<crate::domain::Role>,
    /// The roles whose processes the kernel ledger watched (eBPF, nothing in the process).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel: Vec<crate::domain::Role>,
    /// Events the kernel ledger could not record, its fixed-size maps full: descriptors made
    /// then may have no origin.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kernel_lost: u64,
    /// Sentences on what origins could not cover (an attached target; a process that published no table).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Summary {
    /// Whether a finding informs without failing anything: a process held open by a
    /// peer's leak, unless `max_held_by_peer` judged it.
    pub fn is_note(&self, f: &FindingRecord) -> bool {
        f.kind == FindingKind::HeldByPeer
            && !self
                .checks
                .iter()
                .any(|c| c.gate == crate::domain::Gate::MaxHeldByPeer && c.subject == f.subject && !c.passed)
    }

    /// The findings that failed something (every one but the notes).
    pub fn failures(&self) -> impl Iterator<Item = &FindingRecord> {
        self.findings.iter().filter(|f| !self.is_note(f))
    }

    /// The span a run's charts cover: the run, or for a checkpoint the whole planned run.
    pub fn planned_secs(&self) -> f64 {
        self.checkpoint
            .as_ref()
            .map_or(self.duration_secs, |c| c.planned_secs.max(self.duration_secs))
    }

    /// The sampling interval, which no chart bucket is narrower than.
    pub fn interval_secs(&self) -> f64 {
        self.scenario.resolved.sampler.interval.as_secs_f64()
    }

    /// For a checkpoint: how far the run had got, in a sentence.
    pub fn progress_note(&self) -> Option<String> {
        let c = self.checkpoint.as_ref()?;
        let state = match self.verdict {
            Verdict::Running => "the run is still going",
            _ => "the run never finished (killed, or it ran out of time or memory)",
        };
        Some(format!(
            "Checkpoint {} at {} of a planned {}: {state}; the figures cover the run up to then.",
            c.count,
            crate::analysis::findings::human_secs(c.at_secs),
            crate::analysis::findings::human_secs(c.planned_secs)
        ))
    }
}

/// How far a checkpointed run had got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckpointInfo {
    /// Seconds into the run when this checkpoint was written.
    pub at_secs: f64,
    /// How long the phases were to last in all.
    pub planned_secs: f64,
    /// Checkpoints written so far.
    pub count: u64,
    /// The fdsoak process writing it, on `host`: a reader that finds it gone reads `incomplete`.
    pub pid: u32,
}

/// One driver's place in a sharded run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShardInfo {
    pub index: u32,
    pub count: u32,
    /// The `--start-at` barrier, RFC 3339 UTC, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// When this driver's first phase began, by its own clock (Unix ms); `merge` compares them.
    #[serde(default)]
    pub phases_unix_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FindingRecord {
    pub kind: FindingKind,
    pub subject: String,
    /// The whole sentence: the process, what the gate measured, and what grew.
    pub message: String,
    /// For a descriptor gate: what it measured alone, listed under the process's leak
    /// (empty in reports written before it was kept: the message serves, cut before what grew).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gate: String,
}

impl From<&Finding> for FindingRecord {
    fn from(f: &Finding) -> Self {
        FindingRecord {
            kind: f.kind(),
            subject: f.subject(),
            message: f.to_string(),
            gate: if f.kind().is_leak() {
                f.gate_words()
            } else {
                String::new()
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScenarioInfo {
    pub name: String,
    pub description: String,
    pub file: String,
    /// The scenario as run, after command-line overrides, so a report can be reproduced.
    pub resolved: crate::scenario::Scenario,
    /// Phases whose length `--duration` or `--soak` changed, with the length the file gave.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<crate::scenario::stretch::PhaseOverride>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TargetInfo {
    pub mode: String,
    pub description: String,
    pub address: Option<String>,
    pub pid: Option<i32>,
    /// Where the target's descriptor counts came from, when not its `/proc` (credentials redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fds_from: Option<String>,
}

/// The client under test: what ran, and how it ended.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClientReport {
    /// The command line as run, `{addr}` replaced.
    pub command: String,
    pub pid: i32,
    /// The scenario said the client exits on its own.
    pub expect_exit: bool,
    /// How it ended, when it exited before fdsoak stopped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exited_early: Option<String>,
    /// The last lines it wrote (stdout and stderr).
    pub output_tail: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PhaseInfo {
    pub name: String,
    pub start_secs: f64,
    pub end_secs: f64,
    pub idle: bool,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Latency {
    pub count: u64,
    pub min_us: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// One workload in one phase.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkloadReport {
    pub phase: String,
    pub name: String,
    pub kind: String,
    pub channel: String,
    pub scheduled: u64,
    pub started: u64,
    pub skipped: u64,
    pub ok: u64,
    pub errors: u64,
    pub messages: u64,
    /// Attempts, first attempts included.
    #[serde(default)]
    pub attempts: u64,
    /// Attempts after the first.
    #[serde(default)]
    pub retries: u64,
    /// Calls that succeeded on a retry.
    #[serde(default)]
    pub retry_successes: u64,
    /// Calls that still failed after retrying.
    #[serde(default)]
    pub give_ups: u64,
    /// The workload's own error-rate gate, when the scenario sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_rate: Option<f64>,
    /// Finished calls per second over the phase.
    pub achieved_rate: f64,
    pub status_counts: BTreeMap<String, u64>,
    /// What the server said at the HTTP/2 level when attempts failed there (a GOAWAY's
    /// code and debug data, a stream's RST_STREAM code), by status code, most frequent
    /// first; the first 8 distinct are kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_causes: Vec<StatusCause>,
    pub latency: Latency,
    /// The HDR histogram (microseconds), V2-serialized and base64-encoded, for compare and merge.
    pub histogram_v2: String,
    /// Open model: how late calls started after their scheduled time, in µs.
    /// A p99 well above a millisecond means the driver could not keep its timetable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timetable_lag: Option<Latency>,
}

/// Failed attempts with one status code and one cause in the server's HTTP/2 words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StatusCause {
    pub code: String,
    /// "GOAWAY received: error code 2 (INTERNAL_ERROR), debug data '…'", "RST_STREAM received: error code 8 (CANCEL)".
    pub cause: String,
    pub attempts: u64,
}

impl WorkloadReport {
    /// Stores a latency histogram: V2-serialized, base64-encoded, with its percentiles.
    pub fn set_histogram(&mut self, h: &hdrhistogram::Histogram<u64>) {
        use base64::Engine;
        use hdrhistogram::serialization::Serializer;
        let mut encoded = Vec::new();
        // V2 serialization into a Vec cannot fail for a valid histogram.
        let _ = hdrhistogram::serialization::V2Serializer::new().serialize(h, &mut encoded);
        self.histogram_v2 = base64::engine::general_purpose::STANDARD.encode(encoded);
        self.latency = Latency::of(h);
    }

    /// Decodes the stored latency histogram.
    pub fn histogram(&self) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(&self.histogram_v2)?;
        let h = hdrhistogram::serialization::Deserializer::new().deserialize(&mut bytes.as_slice())?;
        Ok(h)
    }

    /// Failed calls as a fraction of finished calls.
    pub fn error_rate(&self) -> f64 {
        let n = self.ok + self.errors;
        if n == 0 {
            0.0
        } else {
            self.errors as f64 / n as f64
        }
    }
}

impl From<&WorkloadReport> for WorkloadFigures {
    fn from(w: &WorkloadReport) -> Self {
        let top_error = w
            .status_counts
            .iter()
            .filter(|(k, _)| k.as_str() != "OK")
            .max_by_key(|(_, n)| **n)
            .map(|(k, _)| {
                let cause = self_cause(w, k);
                let hint = crate::analysis::findings::hints::unimplemented(k, &w.kind);
                format!(
                    "{k}{}{}",
                    cause.map_or(String::new(), |c| format!(" ({c})")),
                    hint.map_or(String::new(), |h| format!(": {h}"))
                )
            });
        WorkloadFigures {
            phase: w.phase.clone(),
            workload: w.name.clone(),
            finished: w.ok + w.errors,
            errors: w.errors,
            top_error,
            p99_us: w.latency.p99_us,
            max_error_rate: w.max_error_rate,
        }
    }
}

/// The most frequent cause of the failures with `code`, if the server said one.
fn self_cause<'a>(w: &'a WorkloadReport, code: &str) -> Option<&'a str> {
    w.status_causes
        .iter()
        .find(|c| c.code == code)
        .map(|c| c.cause.as_str())
}

impl Latency {
    /// Percentiles of a histogram in microseconds.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            min_us: h.min(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}
