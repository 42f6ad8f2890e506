//! Checkpoints: during a long run, `summary.json` and every exporter are
//! rewritten every interval with verdict `running`, so a run killed at hour
//! 7 (timeout, out of memory, SIGKILL) still leaves a report of hours 0 to 7,
//! which readers mark `incomplete` once its process is gone.
//!
//! A checkpoint is a sampler consumer placed after the trackers. It builds
//! the summary so far ([`ReportSoFar`]) and charts the live
//! [`Downsampler`](crate::series::Downsampler), so its cost does not grow with
//! the run: nothing is read back from the CSV files. The files are written
//! (atomically) on a thread of their own, one checkpoint at a time, and the
//! last one is finished before the final report is written.

use super::report_so_far::ReportSoFar;
use crate::domain::{SampleSink, Tick};
use crate::report::model::{CheckpointInfo, Verdict};
use crate::series::SharedDownsampler;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) use crate::scenario::defaults::checkpoint as interval;

/// What to write and where: the interval, its directory, and the planned length.
pub(crate) struct CheckpointPlan {
    pub every: Duration,
    pub dir: PathBuf,
    pub planned_secs: f64,
}

/// Where a checkpoint's figures come from: the report so far and the live downsample.
pub(crate) struct Sources {
    pub so_far: ReportSoFar,
    pub series: SharedDownsampler,
}

pub(crate) struct Checkpoints {
    plan: CheckpointPlan,
    from: Sources,
    next: f64,
    count: u64,
    writing: Option<std::thread::JoinHandle<()>>,
}

impl Checkpoints {
    pub(crate) fn new(plan: CheckpointPlan, from: Sources) -> Checkpoints {
        Checkpoints {
            next: plan.every.as_secs_f64(),
            plan,
            from,
            count: 0,
            writing: None,
        }
    }

    fn write(&mut self) -> anyhow::Result<()> {
        // One write at a time: a slow disk skips checkpoints rather than queue them.
        if self.writing.as_ref().is_some_and(|w| !w.is_finished()) {
            return Ok(());
        }
        self.count += 1;
        let mut summary = self.from.so_far.summary()?;
        summary.verdict = Verdict::Running;
        summary.checkpoint = Some(CheckpointInfo {
            at_secs: summary.duration_secs,
            planned_secs: self.plan.planned_secs,
            count: self.count,
            pid: std::process::id(),
        });
        let series = crate::domain::lock(&self.from.series).timeline();
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
        self.from.so_far.note(tick);
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
