//! The sampler's sinks for a run, and what they share with the phases and
//! the end of the run: the counters, the trackers, the live progress
//! figures, the watchdog that notices a watched process gone, and the
//! abort signal an armed gate raises.

use crate::analysis::Trackers;
use crate::metrics::{Registry, ThroughputCsv};
use crate::report::build::SummaryBuilder;
use crate::rows::{CsvStream, SamplesCsv, SAMPLES_CSV, THROUGHPUT_CSV};
use crate::scenario::Scenario;
use crate::vocab::{Role, SampleSink, Tick};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// When each watched process was first found gone: (seconds in, phase).
pub(crate) type Gone = Arc<Mutex<std::collections::BTreeMap<Role, (f64, usize)>>>;

/// Remembers when a watched process is first found gone, and cancels
/// `target_gone` when it is the target: the run cannot go on without it.
struct Watchdog {
    pub target_gone: CancellationToken,
    pub gone: Gone,
}

impl SampleSink for Watchdog {
    fn tick(&mut self, tick: &Tick<'_>) -> anyhow::Result<()> {
        let mut gone = crate::vocab::lock(&self.gone);
        for s in tick.samples.iter().filter(|s| s.gone) {
            gone.entry(s.role).or_insert((tick.t_secs, tick.phase));
            if s.role == Role::Target {
                self.target_gone.cancel();
            }
        }
        Ok(())
    }
}

/// What the driver, the sampler's sinks and the end of the run share.
#[derive(Default)]
pub(crate) struct Shared {
    pub registry: Arc<Registry>,
    pub trackers: Arc<Mutex<Trackers>>,
    pub live: Arc<crate::progress::Live>,
    pub target_gone: CancellationToken,
    pub gone: Gone,
    /// Cancelled by the abort sink when an armed gate is sure to fail; `fired` says which.
    pub abort: CancellationToken,
    pub fired: super::abort_sink::Fired,
}

impl Shared {
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
        let series: Option<crate::rows::SharedDownsampler> = checkpoints.as_ref().map(|_| {
            Arc::new(Mutex::new(crate::rows::Downsampler::new(
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
            Box::new(Watchdog {
                target_gone: self.target_gone.clone(),
                gone: self.gone.clone(),
            }),
            // The driver's freed heap goes back to the kernel, so its RSS reads what is live.
            Box::new(super::trim::Trim::new()),
        ];
        if sc.gates.abort.any() {
            let mut a =
                super::abort_sink::Aborter::new(sc, self.trackers.clone(), self.registry.clone(), self.abort.clone());
            a.fired = self.fired.clone();
            sinks.push(Box::new(a));
        }
        if let (Some((every, report)), Some(series)) = (checkpoints, series) {
            sinks.push(Box::new(crate::rows::LiveSamples(series.clone())));
            let plan = super::checkpoint::Plan {
                every,
                dir: dir.to_path_buf(),
                planned_secs: planned,
            };
            let from = super::checkpoint::Sources {
                so_far: super::so_far::SoFar::new(report, self.trackers.clone(), self.registry.clone()),
                series,
            };
            sinks.push(Box::new(super::checkpoint::Checkpoints::new(plan, from)));
        }
        Ok(sinks)
    }
}
