//! The sampler sink that notices a watched process gone: it keeps when each
//! was first found so, and stops the run's phases when it is the target,
//! since the run cannot go on without it.

use crate::domain::{Role, SampleSink, Tick};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// When each watched process was first found gone: (seconds in, phase).
pub(crate) type Gone = Arc<Mutex<std::collections::BTreeMap<Role, (f64, usize)>>>;

/// Remembers when a watched process is first found gone, and cancels
/// `target_gone` when it is the target: the run cannot go on without it.
pub(crate) struct Watchdog {
    pub target_gone: CancellationToken,
    pub gone: Gone,
}

impl SampleSink for Watchdog {
    fn tick(&mut self, tick: &Tick<'_>) -> anyhow::Result<()> {
        let mut gone = crate::domain::lock(&self.gone);
        for s in tick.samples.iter().filter(|s| s.gone) {
            gone.entry(s.role).or_insert((tick.t_secs, tick.phase));
            if s.role == Role::Target {
                self.target_gone.cancel();
            }
        }
        Ok(())
    }
}
