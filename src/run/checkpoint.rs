//! Checkpoints: during a long run, `summary.json` and every exporter are
//! rewritten every interval with verdict `running`, so a run killed at hour
//! 7 (timeout, out of memory, SIGKILL) still leaves a report of hours 0 to 7,
//! which readers mark `incomplete` once its process is gone.
//!
//! A checkpoint is a sampler consumer placed after the trackers. It builds
//! the summary from the streaming trackers and counters and charts the live
//! [`Downsampler`](crate::rows::Downsampler), so its cost does not grow with
//! the run: nothing is read back from the CSV files. The files are written
//! (atomically) on a thread of their own, one checkpoint at a time, and the
//! last one is finished before the final report is written.

use crate::analysis::Trackers;
use crate::metrics::Registry;
use crate::report::build::{workload_report, Measured, SummaryBuilder};
use crate::report::model::{CheckpointInfo, PhaseInfo, Verdict};
use crate::rows::SharedDownsampler;
use crate::vocab::{SampleSink, Tick};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs longer than this checkpoint by default…
pub const CHECKPOINT_FROM: Duration = Duration::from_secs(600);
/// …every this long.
pub const DEFAULT_CHECKPOINT: Duration = Duration::from_secs(60);

/// The checkpoint interval: the scenario's (or `--checkpoint`), else the default for runs over 10 minutes.
pub fn interval(sc: &crate::scenario::Scenario) -> Option<Duration> {
    let planned: Duration = sc.phases.iter().map(|p| p.duration).sum();
    sc.sampler
        .checkpoint
        .or((planned > CHECKPOINT_FROM).then_some(DEFAULT_CHECKPOINT))
        .filter(|d| !d.is_zero())
}

/// What to write and where: the interval, the report so far, its directory, and the planned length.
pub struct Plan {
    pub every: Duration,
    pub report: SummaryBuilder,
    pub dir: PathBuf,
    pub planned_secs: f64,
}

/// Where a checkpoint's figures come from: the streaming trackers, the counters and the live downsample.
pub struct Sources {
    pub trackers: Arc<Mutex<Trackers>>,
    pub registry: Arc<Registry>,
    pub series: SharedDownsampler,
}

pub struct Checkpoints {
    plan: Plan,
    from: Sources,
    /// Phases seen so far, by index: start from their first tick, end at the next phase's.
    phases: Vec<PhaseInfo>,
    next: f64,
    count: u64,
    writing: Option<std::thread::JoinHandle<()>>,
}

impl Checkpoints {
    pub fn new(plan: Plan, from: Sources) -> Checkpoints {
        Checkpoints {
            next: plan.every.as_secs_f64(),
            plan,
            from,
            phases: Vec::new(),
            count: 0,
            writing: None,
        }
    }

    fn note_phase(&mut self, tick: &Tick<'_>) {
        if let Some(p) = self.phases.last_mut() {
            p.end_secs = tick.t_secs;
        }
        let idle = self
            .plan
            .report
            .scenario
            .phases
            .get(tick.phase)
            .is_none_or(|p| p.workloads.is_empty());
        while self.phases.len() <= tick.phase {
            let name = self
                .plan
                .report
                .scenario
                .phases
                .get(self.phases.len())
                .map(|p| p.name.clone());
            self.phases.push(PhaseInfo {
                name: name.unwrap_or_else(|| tick.phase_name.to_string()),
                start_secs: tick.t_secs,
                end_secs: tick.t_secs,
                idle,
            });
        }
    }

    fn write(&mut self) -> anyhow::Result<()> {
        // One write at a time: a slow disk skips checkpoints rather than queue them.
        if self.writing.as_ref().is_some_and(|w| !w.is_finished()) {
            return Ok(());
        }
        self.count += 1;
        let processes = self
            .from
            .trackers
            .lock()
            .map_err(|_| anyhow::anyhow!("analysis poisoned"))?
            .finish();
        let workloads = self
            .from
            .registry
            .all()
            .iter()
            .map(|s| workload_report(s, &self.phases))
            .collect();
        let mut summary = self.plan.report.build(Measured {
            processes,
            workloads,
            phases: self.phases.clone(),
            ..Measured::default()
        });
        summary.verdict = Verdict::Running;
        summary.checkpoint = Some(CheckpointInfo {
            at_secs: summary.duration_secs,
            planned_secs: self.plan.planned_secs,
            count: self.count,
            pid: std::process::id(),
        });
        let series = self
            .from
            .series
            .lock()
            .map_err(|_| anyhow::anyhow!("timeline poisoned"))?
            .timeline();
        let dir = self.plan.dir.clone();
        self.writing = Some(std::thread::spawn(move || {
            let written = crate::report::render_all_from(&summary, &dir, &series)
                .and_then(|files| crate::report::write_files(&files, &dir));
            if let Err(e) = written {
                tracing::warn!("checkpoint in {}: {e:#}", dir.display());
            }
        }));
        Ok(())
    }
}

impl SampleSink for Checkpoints {
    fn tick(&mut self, tick: &Tick<'_>) -> anyhow::Result<()> {
        self.note_phase(tick);
        if tick.t_secs >= self.next {
            self.next = tick.t_secs + self.plan.every.as_secs_f64();
            self.write()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        // The final report must land after the last checkpoint, never under it.
        if let Some(w) = self.writing.take() {
            let _ = w.join();
        }
        Ok(())
    }
}
