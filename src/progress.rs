//! Live progress while a run goes on: the phase, elapsed and remaining
//! time, achieved against scheduled rate, calls in flight, errors, and the
//! target's descriptors against its limit.
//!
//! On a terminal it is one redrawn status line (indicatif, on stderr);
//! otherwise a plain log line every ten seconds, so CI logs stay readable.
//! `--quiet` turns both off.

use crate::metrics::{Counts, Registry};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The latest target figures, taken from the sampler's ticks for the progress display.
#[derive(Debug, Default)]
pub struct Live {
    pub target_fds: AtomicU64,
    /// 0 when unknown or unlimited.
    pub target_limit: AtomicU64,
}

impl crate::domain::SampleSink for Arc<Live> {
    fn tick(&mut self, tick: &crate::domain::Tick<'_>) -> anyhow::Result<()> {
        let target = tick.samples.iter().find(|s| s.role == crate::domain::Role::Target);
        if let Some(r) = target.and_then(|s| s.reading.as_ref()) {
            self.target_fds.store(r.fds.total, Relaxed);
            self.target_limit.store(r.nofile_soft.unwrap_or(0), Relaxed);
        }
        Ok(())
    }
}

/// What the progress task needs to know about the run.
pub(crate) struct ProgressFeed {
    pub phases: Vec<(String, Duration)>,
    pub current: Arc<AtomicUsize>,
    pub registry: Arc<Registry>,
    pub live: Arc<Live>,
    pub start: Instant,
}

/// Starts the display; it stops when `stop` is cancelled.
pub(crate) fn spawn(plan: ProgressFeed, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    let tty = std::io::stderr().is_terminal();
    tokio::spawn(async move {
        let bar = tty.then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b
        });
        let every = if tty {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(10)
        };
        let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
        let mut prev = (Instant::now(), Counts::default());
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.cancelled() => break,
            }
            let now = (Instant::now(), plan.registry.totals());
            let line = status_line(&plan, &prev, &now);
            prev = now;
            match &bar {
                Some(b) => b.set_message(line),
                None => tracing::info!("{line}"),
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
    })
}

fn status_line(plan: &ProgressFeed, prev: &(Instant, Counts), now: &(Instant, Counts)) -> String {
    let i = plan.current.load(Relaxed).min(plan.phases.len().saturating_sub(1));
    let elapsed = plan.start.elapsed().as_secs_f64();
    let total: f64 = plan.phases.iter().map(|p| p.1.as_secs_f64()).sum();
    let dt = now.0.duration_since(prev.0).as_secs_f64().max(1e-3);
    let (p, c) = (&prev.1, &now.1);
    let achieved = ((c.ok + c.errors).saturating_sub(p.ok + p.errors)) as f64 / dt;
    let scheduled = c.scheduled.saturating_sub(p.scheduled) as f64 / dt;
    let fds = plan.live.target_fds.load(Relaxed);
    let limit = match plan.live.target_limit.load(Relaxed) {
        0 => "unlimited".to_string(),
        l => l.to_string(),
    };
    let fmt = crate::analysis::findings::human_secs;
    format!(
        "phase {} ({}/{}) · {} elapsed, {} left · {:.0}/s of {:.0}/s scheduled · {} in flight · {} errors · target {} FDs of {}",
        plan.phases.get(i).map_or("", |p| p.0.as_str()),
        i + 1,
        plan.phases.len(),
        fmt(elapsed),
        fmt((total - elapsed).max(0.0)),
        achieved,
        scheduled,
        c.in_flight,
        c.errors,
        fds,
        limit
    )
}
