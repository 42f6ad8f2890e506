//! Fixed-size downsampling of the streamed rows for the charts.
//!
//! [`Downsampler`] folds `samples.csv` and `throughput.csv` rows, one at a
//! time, into state whose size does not depend on how many rows it is given:
//! [`BUCKETS`] display buckets for the static SVG charts, and the min/max
//! [`Traces`] for the zoomable ones. It is fed live during a run (so that
//! checkpoints chart without reading files back) and by the CSV reader.

use super::{SampleRow, ThroughputRow, Traces};
use crate::domain::{Role, SampleSink, Tick};
use std::collections::BTreeMap;

/// Display buckets per chart.
pub const BUCKETS: usize = 600;

/// The streamed series downsampled for charts: what the HTML report draws.
#[derive(Debug, Default, Clone)]
pub struct Timeline {
    /// Per process (role, pid): one row per non-empty bucket, in time order.
    pub processes: BTreeMap<(Role, i32), Vec<SampleRow>>,
    /// Rates per non-empty bucket: (t, ok/s, errors/s, skipped/s).
    pub rates: Vec<(f64, f64, f64, f64)>,
    /// Worst latency per bucket in ms: (t, p50, p90, p99, max).
    pub latency: Vec<(f64, f64, f64, f64, f64)>,
    pub rows_read: u64,
    /// The min/max series of the zoomable charts.
    pub traces: Traces,
}

/// Folds rows, one at a time, into [`BUCKETS`] fixed display buckets over a
/// run's duration: per process the sample with the most descriptors (so
/// spikes stay visible), and per bucket the latest cumulative throughput
/// counters and the worst latency percentiles. Its size does not depend on
/// how many rows it is given, so a 24-hour soak can be charted at every
/// checkpoint without reading its files back.
#[derive(Debug, Clone)]
pub struct Downsampler {
    duration: f64,
    by_proc: BTreeMap<(Role, i32), Vec<Option<SampleRow>>>,
    last: Vec<Option<ThroughputRow>>,
    worst: Vec<Option<[u64; 4]>>,
    rows: u64,
    traces: Traces,
}

/// A downsampler shared by the sinks that feed it and the checkpoints that read it.
pub type SharedDownsampler = std::sync::Arc<std::sync::Mutex<Downsampler>>;

impl Downsampler {
    /// Buckets over `duration` seconds, sampled every `interval` seconds; later rows go to the last bucket.
    pub fn new(duration: f64, interval: f64) -> Downsampler {
        Downsampler {
            traces: Traces::new(duration, interval),
            duration: duration.max(1e-9),
            by_proc: BTreeMap::new(),
            last: vec![None; BUCKETS],
            worst: vec![None; BUCKETS],
            rows: 0,
        }
    }

    fn bucket(&self, t: f64) -> usize {
        ((t / self.duration) * BUCKETS as f64).clamp(0.0, (BUCKETS - 1) as f64) as usize
    }

    pub fn sample(&mut self, row: SampleRow) {
        self.rows += 1;
        self.traces.sample(&row);
        let b = self.bucket(row.t_secs);
        let slots = self
            .by_proc
            .entry((row.role, row.pid))
            .or_insert_with(|| vec![None; BUCKETS]);
        if slots[b].as_ref().is_none_or(|s| row.fds >= s.fds) {
            slots[b] = Some(row);
        }
    }

    pub fn throughput(&mut self, row: &ThroughputRow) {
        self.rows += 1;
        self.traces.throughput(row);
        let b = self.bucket(row.t_secs);
        if let (Some(p50), Some(p90), Some(p99), Some(max)) = (row.p50_us, row.p90_us, row.p99_us, row.max_us) {
            let w = self.worst[b].get_or_insert([0; 4]);
            for (slot, v) in w.iter_mut().zip([p50, p90, p99, max]) {
                *slot = (*slot).max(v);
            }
        }
        self.last[b] = Some(row.clone());
    }

    /// The series as they stand.
    pub fn timeline(&self) -> Timeline {
        let mut tl = Timeline {
            rows_read: self.rows,
            traces: self.traces.clone(),
            processes: self
                .by_proc
                .iter()
                .map(|(k, v)| (*k, v.iter().flatten().cloned().collect()))
                .collect(),
            ..Timeline::default()
        };
        let mut prev: Option<&ThroughputRow> = None;
        for row in self.last.iter().flatten() {
            if let Some(p) = prev {
                let dt = (row.t_secs - p.t_secs).max(1e-9);
                let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
                tl.rates.push((
                    row.t_secs,
                    rate(row.ok, p.ok),
                    rate(row.errors, p.errors),
                    rate(row.skipped, p.skipped),
                ));
            }
            prev = Some(row);
        }
        let step = self.duration / BUCKETS as f64;
        for (b, w) in self.worst.iter().enumerate() {
            if let Some([p50, p90, p99, max]) = w {
                let ms = |v: u64| v as f64 / 1000.0;
                tl.latency
                    .push(((b as f64 + 0.5) * step, ms(*p50), ms(*p90), ms(*p99), ms(*max)));
            }
        }
        tl
    }
}

/// Feeds every tick's samples to a shared [`Downsampler`], as `samples.csv` gets them.
pub struct LiveSamples(pub SharedDownsampler);

impl SampleSink for LiveSamples {
    fn tick(&mut self, tick: &Tick<'_>) -> anyhow::Result<()> {
        let mut d = crate::domain::lock(&self.0);
        for s in tick.samples {
            if let Some(r) = &s.reading {
                d.sample(SampleRow {
                    source: s.source,
                    ..SampleRow::new(tick.t_secs, tick.unix_ms, tick.phase_name, s.role, s.pid, r)
                });
            }
        }
        Ok(())
    }
}
