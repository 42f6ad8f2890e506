//! The state a run's phases, the sampler's sinks and the run's end share
//! ([`RunState`]): the counters, the trackers, the live progress figures,
//! who was found gone and when, and the abort signal an armed gate raises;
//! and the sampler's sinks built over it.

use crate::analysis::Trackers;
use crate::domain::SampleSink;
use crate::metrics::{Registry, ThroughputCsv};
use crate::report::build::SummaryBuilder;
use crate::scenario::Scenario;
use crate::series::{CsvStream, SamplesCsv, SAMPLES_CSV, THROUGHPUT_CSV};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What the driver, the sampler's sinks and the end of the run share.
#[derive(Default)]
pub(crate) struct RunState {
    pub registry: Arc<Registry>,
    pub trackers: Arc<Mutex<Trackers>>,
    pub live: Arc<crate::progress::Live>,
    pub target_gone: CancellationToken,
    pub gone: super::watchdog::Gone,
    /// Cancelled by the abort sink when an armed gate is sure to fail; `fired` says which.
    pub abort: CancellationToken,
    pub fired: crate::abort::sink::Fired,
}

impl RunState {
    /// The sampler's sinks, in the order each tick reaches them: the CSV files, the
    /// trackers, the live progress, the watchdog, the heap trim, then (when asked)
    /// the abort check, which reads the trackers, and the checkpoints.
    pub(crate) fn sinks(
        &self,
        sc: &Scenario,
        dir: &Path,
        start: Instant,
        checkpoints: Option<(Duration, SummaryBuilder)>,
    ) -> anyhow::Result<Vec<Box<dyn SampleSink>>> {
        // Checkpoints chart a live downsample of the series, fed as the CSV files are.
        let planned = start.elapsed().as_secs_f64() + sc.phases.iter().map(|p| p.duration.as_secs_f64()).sum::<f64>();
        let series: Option<crate::series::SharedDownsampler> = checkpoints.as_ref().map(|_| {
            Arc::new(Mutex::new(crate::series::Downsampler::new(
                planned,
                sc.sampler.interval.as_secs_f64(),
            )))
        });
        let mut throughput = ThroughputCsv::new(self.registry.clone(), CsvStream::create(&dir.join(THROUGHPUT_CSV))?);
        if let Some(series) = &series {
            throughput = throughput.tapped(series.clone());
        }
        let mut sinks: Vec<Box<dyn SampleSink>> = vec![
            Box::new(SamplesCsv(CsvStream::create(&dir.join(SAMPLES_CSV))?)),
            Box::new(throughput),
            Box::new(self.trackers.clone()),
            Box::new(self.live.clone()),
            Box::new(super::watchdog::Watchdog {
                target_gone: self.target_gone.clone(),
                gone: self.gone.clone(),
            }),
            // The driver's freed heap goes back to the kernel, so its RSS reads what is live.
            Box::new(super::heap_trim::HeapTrim::new()),
        ];
        if sc.gates.abort.any() {
            let mut a =
                crate::abort::sink::Aborter::new(sc, self.trackers.clone(), self.registry.clone(), self.abort.clone());
            a.fired = self.fired.clone();
            sinks.push(Box::new(a));
        }
        if let (Some((every, report)), Some(series)) = (checkpoints, series) {
            sinks.push(Box::new(crate::series::LiveSamples(series.clone())));
            let plan = super::checkpoint::CheckpointPlan {
                every,
                dir: dir.to_path_buf(),
                planned_secs: planned,
            };
            let from = super::checkpoint::Sources {
                so_far: super::report_so_far::ReportSoFar::new(report, self.trackers.clone(), self.registry.clone()),
                series,
            };
            sinks.push(Box::new(super::checkpoint::Checkpoints::new(plan, from)));
        }
        Ok(sinks)
    }
}
