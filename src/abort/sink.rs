//! The sampler consumer that stops a run early (`[gates] abort`): after the
//! trackers have taken a tick, it asks [`AbortCheck`] whether an armed gate
//! is now sure to fail, and if so keeps the finding and cancels the phases,
//! which skip to the drain.

use super::decision::{AbortCheck, Moment, PhaseCalls};
use crate::analysis::findings::Finding;
use crate::analysis::Trackers;
use crate::domain::{SampleSink, Tick};
use crate::metrics::Registry;
use crate::scenario::Scenario;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// The finding that stopped the run, once one did.
pub(crate) type Fired = Arc<Mutex<Option<Finding>>>;

pub(crate) struct Aborter {
    pub check: AbortCheck,
    pub trackers: Arc<Mutex<Trackers>>,
    pub registry: Arc<Registry>,
    pub scenario: Scenario,
    pub fired: Fired,
    pub cancel: CancellationToken,
    /// The phase of the last tick and when it was first seen.
    phase_start: (usize, f64),
}

impl Aborter {
    pub(crate) fn new(
        sc: &Scenario,
        trackers: Arc<Mutex<Trackers>>,
        registry: Arc<Registry>,
        cancel: CancellationToken,
    ) -> Aborter {
        Aborter {
            check: AbortCheck::new(sc.gates.clone()),
            trackers,
            registry,
            scenario: sc.clone(),
            fired: Fired::default(),
            cancel,
            phase_start: (0, 0.0),
        }
    }

    /// Each workload of the current phase: its counts, and the calls its timetable has yet to make.
    fn calls(&self, phase: usize, t: f64) -> Vec<PhaseCalls> {
        let Some(spec) = self.scenario.phases.get(phase) else {
            return Vec::new();
        };
        let left = (spec.duration.as_secs_f64() - (t - self.phase_start.1)).max(0.0);
        self.registry
            .all()
            .iter()
            .filter(|s| s.phase_index == phase)
            .map(|s| {
                let c = s.counts();
                let rate = spec
                    .workloads
                    .iter()
                    .enumerate()
                    .find(|(i, w)| w.label(*i) == s.name)
                    .and_then(|(_, w)| w.calls()?.pacing.rate());
                PhaseCalls {
                    workload: s.name.clone(),
                    phase: s.phase.clone(),
                    errors: c.errors,
                    finished: c.ok + c.errors,
                    still_to_come: rate.map(|r| (r * left).ceil() as u64 + c.in_flight),
                    max_error_rate: s.max_error_rate,
                }
            })
            .collect()
    }
}

impl SampleSink for Aborter {
    fn tick(&mut self, tick: &Tick<'_>) -> anyhow::Result<()> {
        if self.cancel.is_cancelled() {
            return Ok(());
        }
        if tick.phase != self.phase_start.0 {
            self.phase_start = (tick.phase, tick.t_secs);
        }
        let calls = self.calls(tick.phase, tick.t_secs);
        let trackers = crate::domain::lock(&self.trackers);
        let now = Moment {
            t: tick.t_secs,
            phase: tick.phase_name,
            in_load: tick.in_load_window,
        };
        if let Some(f) = self.check.check(now, &trackers, &calls) {
            tracing::warn!("{f}");
            *crate::domain::lock(&self.fired) = Some(f);
            self.cancel.cancel();
        }
        Ok(())
    }
}
