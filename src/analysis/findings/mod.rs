//! Gates and findings: the scenario's thresholds applied to the analysis,
//! and the plain-language sentences a user reads first.
//!
//! Every threshold evaluated becomes a [`Check`] (pass or fail, with the
//! measured value), so CI outputs can list one case per gate. Every failed
//! check, and every run-level event such as a target death, becomes a
//! [`Finding`] whose `Display` is the sentence printed and stored.

use super::groups::GroupChange;
use super::{verdicts, ProcessAnalysis, Role};
use crate::domain::{Check, FindingKind, Gate};
use crate::scenario::Gates;

/// Latency and outcome figures for one workload in one phase, as the gates need them.
#[derive(Debug, Clone)]
pub struct WorkloadFigures {
    pub phase: String,
    pub workload: String,
    pub finished: u64,
    pub errors: u64,
    pub top_error: Option<String>,
    pub p99_us: u64,
    /// The workload's own error-rate gate, if the scenario gives one.
    pub max_error_rate: Option<f64>,
}

/// Something the user should know, in a sentence.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    FdGrowth {
        role: Role,
        a: Box<ProcessAnalysis>,
    },
    Residual {
        role: Role,
        residual: i64,
        baseline: u64,
        close_wait: i64,
        groups: Vec<GroupChange>,
    },
    CloseWait {
        role: Role,
        over_baseline: i64,
        peak: u64,
        groups: Vec<GroupChange>,
    },
    /// Descriptor groups that grew step by step and stayed: a small leak, named.
    GroupLeak {
        role: Role,
        groups: Vec<GroupChange>,
    },
    NearLimit {
        role: Role,
        peak: u64,
        limit: u64,
        usage: f64,
    },
    TimeToLimit {
        role: Role,
        secs: f64,
        limit: u64,
        per_hour: f64,
    },
    ErrorRate {
        phase: String,
        workload: String,
        errors: u64,
        finished: u64,
        top: String,
    },
    SlowP99 {
        phase: String,
        workload: String,
        p99_us: u64,
        max_us: u64,
    },
    TargetDied {
        pid: i32,
        at_secs: f64,
        phase: String,
        last_fds: Option<u64>,
        limit: Option<u64>,
        status: Option<String>,
    },
    RunError {
        message: String,
    },
    ClientExited {
        pid: i32,
        at_secs: f64,
        phase: String,
        status: String,
    },
    Interrupted {
        at_secs: f64,
        phase: String,
    },
    /// Grown groups of a process whose sockets are the other ends of a peer's leak.
    /// `judged`: `max_held_by_peer` is set and failed; otherwise a note, failing nothing.
    HeldByPeer {
        role: Role,
        held: Vec<crate::analysis::held::Held>,
        judged: bool,
    },
    /// An armed gate was sure to fail: the run skipped to its drain.
    Aborted {
        at_secs: f64,
        phase: String,
        gate: crate::domain::Gate,
        subject: String,
        /// The gate's own finding, as it read when the run stopped.
        reason: String,
    },
}

impl Finding {
    /// The kind of finding, by its stable name.
    pub fn kind(&self) -> FindingKind {
        match self {
            Finding::FdGrowth { .. } => FindingKind::FdGrowth,
            Finding::Residual { .. } => FindingKind::ResidualFds,
            Finding::CloseWait { .. } => FindingKind::CloseWait,
            Finding::GroupLeak { .. } => FindingKind::GroupLeak,
            Finding::NearLimit { .. } => FindingKind::FdUsage,
            Finding::TimeToLimit { .. } => FindingKind::TimeToLimit,
            Finding::ErrorRate { .. } => FindingKind::ErrorRate,
            Finding::SlowP99 { .. } => FindingKind::P99Latency,
            Finding::TargetDied { .. } => FindingKind::TargetDied,
            Finding::ClientExited { .. } => FindingKind::ClientExited,
            Finding::RunError { .. } => FindingKind::RunError,
            Finding::Interrupted { .. } => FindingKind::Interrupted,
            Finding::Aborted { .. } => FindingKind::Aborted,
            Finding::HeldByPeer { .. } => FindingKind::HeldByPeer,
        }
    }

    /// What the finding is about: a process role, a workload, or the run.
    pub fn subject(&self) -> String {
        match self {
            Finding::FdGrowth { role, .. }
            | Finding::Residual { role, .. }
            | Finding::CloseWait { role, .. }
            | Finding::GroupLeak { role, .. }
            | Finding::NearLimit { role, .. }
            | Finding::TimeToLimit { role, .. }
            | Finding::HeldByPeer { role, .. } => role.as_str().to_string(),
            Finding::ErrorRate { phase, workload, .. } | Finding::SlowP99 { phase, workload, .. } => {
                format!("{workload}@{phase}")
            }
            Finding::TargetDied { .. } => "target".into(),
            Finding::ClientExited { .. } => "client".into(),
            Finding::RunError { .. } | Finding::Interrupted { .. } => "run".into(),
            Finding::Aborted { subject, .. } => subject.clone(),
        }
    }
}

/// Applies the gates. Returns every check made, and a finding for each failure.
pub fn evaluate(gates: &Gates, procs: &[ProcessAnalysis], workloads: &[WorkloadFigures]) -> (Vec<Check>, Vec<Finding>) {
    let mut l = Ledger::default();
    for a in procs {
        let own = own_part(gates, a);
        l.count_gates(gates, &own);
        l.group_gate(gates, &own);
        l.limit_gates(gates, &own);
        l.held_gate(gates, a);
    }
    for w in workloads {
        l.workload_gates(gates, w);
    }
    // The effects after the causes.
    l.findings.sort_by_key(|f| f.kind() == FindingKind::HeldByPeer);
    attach_messages(&mut l.checks, &l.findings);
    (l.checks, l.findings)
}

/// The checks made so far, and the findings the failed ones raised.
#[derive(Default)]
struct Ledger {
    checks: Vec<Check>,
    findings: Vec<Finding>,
}

impl Ledger {
    /// Records one gate's check; returns whether it passed.
    fn check(&mut self, gate: Gate, subject: &str, value: f64, threshold: f64, passed: bool) -> bool {
        self.checks.push(Check {
            gate,
            subject: subject.into(),
            value,
            threshold,
            passed,
            message: None,
        });
        passed
    }

    /// The gates on a process's descriptor count: growth, residual, CLOSE_WAIT.
    fn count_gates(&mut self, gates: &Gates, a: &ProcessAnalysis) {
        let who = a.role.as_str();
        let growing = verdicts::growing(gates, a.growth_fds, a.growth_per_hour);
        if !self.check(
            Gate::MaxGrowthPerHour,
            who,
            a.growth_per_hour,
            gates.max_growth_per_hour,
            !growing,
        ) {
            self.findings.push(Finding::FdGrowth {
                role: a.role,
                a: Box::new(a.clone()),
            });
        }
        let cw = a.close_wait_final as i64 - a.close_wait_baseline as i64;
        let residual = verdicts::residual(gates, a.residual_fds);
        let max_res = gates.max_residual_fds as f64;
        if !self.check(Gate::MaxResidualFds, who, a.residual_fds as f64, max_res, !residual) {
            self.findings.push(Finding::Residual {
                role: a.role,
                residual: a.residual_fds,
                baseline: a.baseline_fds,
                close_wait: cw,
                groups: a.groups.clone(),
            });
        }
        let max_cw = gates.max_close_wait as f64;
        if !self.check(
            Gate::MaxCloseWait,
            who,
            cw as f64,
            max_cw,
            !verdicts::close_wait(gates, cw),
        ) {
            self.findings.push(Finding::CloseWait {
                role: a.role,
                over_baseline: cw,
                peak: a.close_wait_peak,
                groups: a.groups.clone(),
            });
        }
    }

    /// A group that grew steadily, where fingerprints were taken (a source with counts
    /// only cannot name a group).
    fn group_gate(&mut self, gates: &Gates, a: &ProcessAnalysis) {
        if gates.min_group_growth == 0 || a.fingerprints == 0 {
            return;
        }
        let who = a.role.as_str();
        let min = gates.min_group_growth as i64;
        let steady: Vec<GroupChange> = a
            .groups
            .iter()
            .filter(|g| g.steady && g.change >= min)
            .cloned()
            .collect();
        let largest = a
            .groups
            .iter()
            .filter(|g| g.steady)
            .map(|g| g.change)
            .max()
            .unwrap_or(0);
        let flagged = self
            .findings
            .iter()
            .any(|f| f.subject() == who && f.kind().is_fd_count());
        // A process already flagged for its count is told by that finding, which names the groups too.
        if !self.check(Gate::MinGroupGrowth, who, largest as f64, min as f64, steady.is_empty()) && !flagged {
            self.findings.push(Finding::GroupLeak {
                role: a.role,
                groups: steady,
            });
        }
    }

    /// The gates on the limit: peak usage of it, and the projected time to reach it.
    fn limit_gates(&mut self, gates: &Gates, a: &ProcessAnalysis) {
        let who = a.role.as_str();
        if let (Some(usage), Some(limit)) = (a.peak_usage, a.nofile_soft) {
            let over = verdicts::over_fd_usage(gates, usage);
            if !self.check(Gate::MaxFdUsage, who, usage, gates.max_fd_usage, !over) {
                self.findings.push(Finding::NearLimit {
                    role: a.role,
                    peak: a.peak_fds,
                    limit,
                    usage,
                });
            }
        }
        let projected = a
            .time_to_limit_secs
            .filter(|_| verdicts::significant(gates, a.growth_fds));
        if let (Some(secs), Some(limit)) = (projected, a.nofile_soft) {
            let min = gates.min_time_to_limit.as_secs_f64();
            let soon = verdicts::too_soon_to_limit(gates, a.growth_fds, Some(secs));
            // Growth already flagged carries the projection in its own sentence.
            let growing = verdicts::growing(gates, a.growth_fds, a.growth_per_hour);
            if !self.check(Gate::MinTimeToLimit, who, secs, min, !soon) && !growing {
                self.findings.push(Finding::TimeToLimit {
                    role: a.role,
                    secs,
                    limit,
                    per_hour: a.growth_per_hour,
                });
            }
        }
    }

    /// `max_held_by_peer`, when set; a process a peer's leak holds open is told either way.
    fn held_gate(&mut self, gates: &Gates, a: &ProcessAnalysis) {
        if a.held.is_empty() {
            return;
        }
        let held = a.held_fds();
        let judged = gates.max_held_by_peer.is_some_and(|max| {
            let passed = !verdicts::held_too_many(gates, held);
            !self.check(Gate::MaxHeldByPeer, a.role.as_str(), held as f64, max as f64, passed)
        });
        self.findings.push(Finding::HeldByPeer {
            role: a.role,
            held: a.held.clone(),
            judged,
        });
    }

    /// The gates on one workload's calls in one phase: error rate and p99.
    fn workload_gates(&mut self, gates: &Gates, w: &WorkloadFigures) {
        let subject = format!("{}@{}", w.workload, w.phase);
        let rate = if w.finished == 0 {
            0.0
        } else {
            w.errors as f64 / w.finished as f64
        };
        let max_rate = verdicts::error_ceiling(gates, w.max_error_rate);
        let failed = verdicts::too_many_errors(w.errors, w.finished, max_rate);
        if !self.check(Gate::MaxErrorRate, &subject, rate, max_rate, !failed) {
            self.findings.push(Finding::ErrorRate {
                phase: w.phase.clone(),
                workload: w.workload.clone(),
                errors: w.errors,
                finished: w.finished,
                top: w.top_error.clone().unwrap_or_else(|| "unknown".into()),
            });
        }
        if let Some(max) = gates.max_p99 {
            let max_us = max.as_micros() as u64;
            let slow = verdicts::slow_p99(gates, w.p99_us);
            if !self.check(Gate::MaxP99, &subject, w.p99_us as f64, max_us as f64, !slow) {
                self.findings.push(Finding::SlowP99 {
                    phase: w.phase.clone(),
                    workload: w.workload.clone(),
                    p99_us: w.p99_us,
                    max_us,
                });
            }
        }
    }
}

/// The process as its own gates judge it: unless `max_held_by_peer` is set, the
/// descriptors peers hold open are theirs, taken off its residual, its growth
/// (and the rate in proportion) and the groups they are in.
fn own_part(gates: &Gates, a: &ProcessAnalysis) -> ProcessAnalysis {
    let mut own = a.clone();
    let held = a.held_fds();
    if held == 0 || gates.max_held_by_peer.is_some() {
        return own;
    }
    own.residual_fds -= held.min(a.residual_fds.max(0));
    if a.growth_fds > 0.0 {
        let left = (a.growth_fds - held as f64).max(0.0);
        own.growth_per_hour *= left / a.growth_fds;
        own.growth_fds = left;
    }
    for h in &a.held {
        if let Some(g) = own.groups.iter_mut().find(|g| g.what == h.group) {
            g.change -= h.count as i64;
        }
    }
    own.groups.retain(|g| g.change > 0);
    own
}

/// Gives each failed check the sentence of the finding it raised.
fn attach_messages(checks: &mut [Check], findings: &[Finding]) {
    for c in checks.iter_mut().filter(|c| !c.passed) {
        let find = |k: FindingKind| findings.iter().find(|f| f.kind() == k && f.subject() == c.subject);
        // A time-to-limit failure on a process already flagged for growth is told by the growth finding.
        c.message = find(c.gate.finding())
            .or_else(|| find(FindingKind::FdGrowth))
            .or_else(|| find(FindingKind::ResidualFds))
            .or_else(|| find(FindingKind::CloseWait))
            .map(|f| f.to_string());
    }
}

pub mod hints;
mod sentences;
pub use sentences::human_secs;

#[cfg(test)]
mod tests;
