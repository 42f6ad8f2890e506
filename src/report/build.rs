//! Assembling a report: the report directory, the [`Summary`] of a run
//! however it ended, the workload rows from the driver's statistics, and the
//! one [`verdict`] function that `run` and `merge` both use.

use super::model::*;
use crate::analysis::findings::{evaluate, Finding, WorkloadFigures};
use crate::analysis::ProcessAnalysis;
use crate::domain::{Check, FindingKind};
use crate::metrics::WorkloadStats;
use crate::scenario::Scenario;
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

/// The verdict, from the run-level findings and the checks: a run error or a
/// dead target is an error; otherwise an interrupted run is interrupted;
/// otherwise every check must pass, and a client under test must not have
/// exited on its own.
pub(crate) fn verdict<'a>(
    kinds: impl IntoIterator<Item = FindingKind>,
    checks: impl IntoIterator<Item = &'a Check>,
) -> Verdict {
    let kinds: Vec<FindingKind> = kinds.into_iter().collect();
    if kinds
        .iter()
        .any(|k| matches!(k, FindingKind::TargetDied | FindingKind::RunError))
    {
        Verdict::Error
    } else if kinds.contains(&FindingKind::Interrupted) {
        Verdict::Interrupted
    } else if checks.into_iter().all(|c| c.passed)
        && !kinds.contains(&FindingKind::ClientExited)
        && !kinds.contains(&FindingKind::Aborted)
    {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

/// `out`, or a new `<root>/<scenario>-<UTC time>` that does not exist yet; created.
pub(crate) fn create_dir(out: Option<&Path>, root: &Path, scenario: &str) -> anyhow::Result<PathBuf> {
    let dir = match out {
        Some(d) => d.to_path_buf(),
        None => {
            let stamp: String = humantime::format_rfc3339_seconds(SystemTime::now())
                .to_string()
                .chars()
                .filter(|c| *c != '-' && *c != ':')
                .collect();
            let name: String = scenario
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            let base = root.join(format!("{name}-{stamp}"));
            let mut dir = base.clone();
            let mut n = 2;
            while dir.exists() {
                dir = PathBuf::from(format!("{}-{n}", base.display()));
                n += 1;
            }
            dir
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating report directory {}", dir.display()))?;
    Ok(dir)
}

/// One workload in one phase, as the report stores it.
pub(crate) fn workload_report(s: &WorkloadStats, phases: &[PhaseInfo]) -> WorkloadReport {
    let c = s.counts();
    let secs = phases.get(s.phase_index).map_or(0.0, |p| p.end_secs - p.start_secs);
    let mut w = WorkloadReport {
        phase: s.phase.clone(),
        name: s.name.clone(),
        kind: s.kind.into(),
        channel: s.channel.into(),
        scheduled: c.scheduled,
        started: c.started,
        skipped: c.skipped,
        ok: c.ok,
        errors: c.errors,
        messages: c.messages,
        attempts: s.attempts.load(Relaxed),
        retries: s.retries.load(Relaxed),
        retry_successes: s.retry_successes.load(Relaxed),
        give_ups: s.give_ups.load(Relaxed),
        max_error_rate: s.max_error_rate,
        achieved_rate: if secs > 0.0 {
            (c.ok + c.errors) as f64 / secs
        } else {
            0.0
        },
        status_counts: s.code_counts().into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        status_causes: s
            .causes()
            .into_iter()
            .map(|(code, cause, attempts)| crate::report::model::StatusCause {
                code: code.into(),
                cause,
                attempts,
            })
            .collect(),
        latency: Latency::default(),
        histogram_v2: String::new(),
        timetable_lag: Some(Latency::of(&s.lag_histogram())).filter(|l| l.count > 0),
    };
    w.set_histogram(&s.histogram());
    w
}

/// Everything fixed about a run's report before it ends.
#[derive(Clone)]
pub(crate) struct SummaryBuilder {
    pub scenario: Scenario,
    pub scenario_file: String,
    pub started_at: String,
    pub start: tokio::time::Instant,
    pub target: TargetInfo,
    pub host: String,
    pub shard: Option<crate::report::model::ShardInfo>,
    pub overrides: Vec<crate::scenario::stretch::PhaseOverride>,
    pub label: Option<String>,
    /// With `--origin`: the agents given, and what origins cannot cover.
    pub origin: Option<crate::report::model::OriginReport>,
}

/// What a run measured, however it ended.
#[derive(Default)]
pub(crate) struct Measured {
    /// Run-level findings (interrupted, target died, run error), first in the report.
    pub events: Vec<Finding>,
    pub processes: Vec<ProcessAnalysis>,
    pub phases: Vec<PhaseInfo>,
    pub workloads: Vec<WorkloadReport>,
    pub fault_events: Vec<crate::fault::FaultEvent>,
    pub proxy: Option<crate::fault::ProxyStats>,
    pub client: Option<ClientReport>,
    /// What the processes fdsoak started wrote.
    pub output: Vec<crate::report::model::ProcessOutput>,
}

impl SummaryBuilder {
    pub(crate) fn new(scenario: Scenario, scenario_file: &Path, target: TargetInfo) -> SummaryBuilder {
        SummaryBuilder {
            scenario,
            scenario_file: scenario_file.display().to_string(),
            started_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            start: tokio::time::Instant::now(),
            target,
            host: hostname(),
            shard: None,
            overrides: Vec::new(),
            label: None,
            origin: None,
        }
    }

    /// Applies the gates to what was measured and assembles the summary.
    pub(crate) fn build(&self, m: Measured) -> Summary {
        let sc = &self.scenario;
        let figures: Vec<WorkloadFigures> = m.workloads.iter().map(WorkloadFigures::from).collect();
        let (checks, gate_findings) = evaluate(&sc.gates, &m.processes, &figures);
        let findings: Vec<Finding> = m.events.into_iter().chain(gate_findings).collect();
        let verdict = verdict(findings.iter().map(Finding::kind), &checks);
        Summary {
            schema_version: SCHEMA_VERSION,
            verdict,
            findings: findings.iter().map(FindingRecord::from).collect(),
            tool: Tool {
                name: "fdsoak".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            scenario: ScenarioInfo {
                name: sc.name.clone(),
                description: sc.description.clone(),
                file: self.scenario_file.clone(),
                resolved: sc.resolved(),
                overrides: self.overrides.clone(),
            },
            target: self.target.clone(),
            started_at: self.started_at.clone(),
            duration_secs: self.start.elapsed().as_secs_f64(),
            sampler_interval_secs: sc.sampler.interval.as_secs_f64(),
            checks,
            processes: m.processes,
            phases: m.phases,
            workloads: m.workloads,
            files: files(&m.output),
            merged_from: Vec::new(),
            host: self.host.clone(),
            label: self.label.clone(),
            shard: self.shard.clone(),
            origin: self.origin.clone(),
            checkpoint: None,
            fault_events: m.fault_events,
            proxy: m.proxy,
            client: m.client,
            output: m.output,
        }
    }
}

/// The files every report directory holds, by role, and the logs of the processes fdsoak started.
fn files(output: &[crate::report::model::ProcessOutput]) -> BTreeMap<String, String> {
    let logs = output.iter().map(|o| (format!("{}_log", o.role), o.log.clone()));
    [
        ("summary", "summary.json"),
        ("latency", "latency.csv"),
        ("samples", crate::series::SAMPLES_CSV),
        ("throughput", crate::series::THROUGHPUT_CSV),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain(logs)
    .collect()
}

/// This machine's host name (a pod's name in Kubernetes), or "" if it cannot be read.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Gate;

    fn check(passed: bool) -> Check {
        Check {
            gate: Gate::MaxResidualFds,
            subject: "target".into(),
            value: 0.0,
            threshold: 5.0,
            passed,
            message: None,
        }
    }

    #[test]
    fn run_events_outrank_the_gates() {
        assert_eq!(verdict([], &[check(true)]), Verdict::Pass);
        assert_eq!(verdict([], &[check(true), check(false)]), Verdict::Fail);
        assert_eq!(
            verdict([FindingKind::Interrupted], &[check(false)]),
            Verdict::Interrupted
        );
        assert_eq!(
            verdict([FindingKind::Interrupted, FindingKind::TargetDied], &[check(true)]),
            Verdict::Error
        );
        assert_eq!(verdict([FindingKind::RunError], &[]), Verdict::Error);
        assert_eq!(verdict([FindingKind::ClientExited], &[check(true)]), Verdict::Fail);
    }
}
