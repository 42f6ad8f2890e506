//! The report as it stands in the middle of a run: the phases seen so far
//! (from the sampler's ticks), the streaming trackers and the counters,
//! built into a summary. Checkpoints write it; the live endpoint's findings
//! come from it. Its cost does not grow with the run: nothing is read back
//! from the CSV files.

use crate::analysis::Trackers;
use crate::domain::Tick;
use crate::metrics::Registry;
use crate::report::build::{workload_report, Measured, SummaryBuilder};
use crate::report::model::{PhaseInfo, Summary};
use std::sync::{Arc, Mutex};

/// Where the figures come from, and the phases seen so far.
pub(crate) struct ReportSoFar {
    pub report: SummaryBuilder,
    pub trackers: Arc<Mutex<Trackers>>,
    pub registry: Arc<Registry>,
    /// Phases seen so far, by index: start from their first tick, end at the next phase's.
    phases: Vec<PhaseInfo>,
}

impl ReportSoFar {
    pub(crate) fn new(report: SummaryBuilder, trackers: Arc<Mutex<Trackers>>, registry: Arc<Registry>) -> ReportSoFar {
        ReportSoFar {
            report,
            trackers,
            registry,
            phases: Vec::new(),
        }
    }

    /// Notes the tick's phase (and the end of the one before).
    pub(crate) fn note(&mut self, tick: &Tick<'_>) {
        if let Some(p) = self.phases.last_mut() {
            p.end_secs = tick.t_secs;
        }
        let phases = &self.report.scenario.phases;
        let idle = phases.get(tick.phase).is_none_or(|p| p.workloads.is_empty());
        while self.phases.len() <= tick.phase {
            let name = phases.get(self.phases.len()).map(|p| p.name.clone());
            self.phases.push(PhaseInfo {
                name: name.unwrap_or_else(|| tick.phase_name.to_string()),
                start_secs: tick.t_secs,
                end_secs: tick.t_secs,
                idle,
            });
        }
    }

    /// The summary of the run so far (its verdict is the one the run would get if it ended now).
    pub(crate) fn summary(&self) -> anyhow::Result<Summary> {
        let processes = crate::domain::lock(&self.trackers).finish();
        let workloads = self
            .registry
            .all()
            .iter()
            .map(|s| workload_report(s, &self.phases))
            .collect();
        Ok(self.report.build(Measured {
            processes,
            workloads,
            phases: self.phases.clone(),
            ..Measured::default()
        }))
    }
}

/// How often the live endpoint's findings are brought up to date.
pub(crate) const LIVE_FINDINGS_EVERY: f64 = 5.0;

/// Keeps the live endpoint's findings current: every [`LIVE_FINDINGS_EVERY`]
/// seconds and at each new phase, the findings of the summary so far.
pub(crate) struct LiveFindings {
    pub so_far: ReportSoFar,
    pub out: crate::live::Findings,
    next: f64,
    phase: usize,
}

impl LiveFindings {
    pub(crate) fn new(so_far: ReportSoFar, out: crate::live::Findings) -> LiveFindings {
        LiveFindings {
            so_far,
            out,
            next: LIVE_FINDINGS_EVERY,
            phase: 0,
        }
    }
}

impl crate::domain::SampleSink for LiveFindings {
    fn tick(&mut self, tick: &Tick<'_>) -> anyhow::Result<()> {
        self.so_far.note(tick);
        if tick.t_secs >= self.next || tick.phase != self.phase {
            self.next = tick.t_secs + LIVE_FINDINGS_EVERY;
            self.phase = tick.phase;
            let summary = self.so_far.summary()?;
            let found = summary
                .findings
                .iter()
                .map(|f| (f.kind.to_string(), f.subject.clone()))
                .collect();
            *crate::domain::lock(&self.out) = found;
        }
        Ok(())
    }
}
