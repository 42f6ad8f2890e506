//! Reads a report's streamed CSV files back, downsampled for display.
//!
//! The data on disk stays at full resolution; charts need at most a few
//! hundred points per series. Rows are read one at a time into fixed display
//! buckets over the run's duration, so an eight-hour soak and a 30-second CI
//! run cost the same memory to chart. In each bucket the FD sample with the
//! most descriptors is kept (so spikes stay visible), and the latest
//! cumulative throughput counters and the worst latency percentiles.

use crate::rows::{read_rows, SampleRow, ThroughputRow, SAMPLES_CSV, THROUGHPUT_CSV};
use crate::vocab::Role;
use std::collections::BTreeMap;
use std::path::Path;

/// Display buckets per chart.
pub const BUCKETS: usize = 600;

/// Downsampled series for one report.
#[derive(Debug, Default)]
pub struct Timeline {
    /// Per process (role, pid): one row per non-empty bucket, in time order.
    pub processes: BTreeMap<(Role, i32), Vec<SampleRow>>,
    /// Rates per non-empty bucket: (t, ok/s, errors/s, skipped/s).
    pub rates: Vec<(f64, f64, f64, f64)>,
    /// Worst latency per bucket in ms: (t, p50, p90, p99, max).
    pub latency: Vec<(f64, f64, f64, f64, f64)>,
    pub rows_read: u64,
}

fn bucket(t: f64, duration: f64) -> usize {
    ((t / duration.max(1e-9)) * BUCKETS as f64).clamp(0.0, (BUCKETS - 1) as f64) as usize
}

/// Reads `samples.csv` and `throughput.csv` from `dir`; missing files give empty series.
pub fn read(dir: &Path, duration: f64) -> anyhow::Result<Timeline> {
    let mut tl = Timeline::default();
    let samples = dir.join(SAMPLES_CSV);
    if samples.exists() {
        let mut by_proc: BTreeMap<(Role, i32), Vec<Option<SampleRow>>> = BTreeMap::new();
        for row in read_rows::<SampleRow>(&samples)? {
            let row = row?;
            tl.rows_read += 1;
            let slots = by_proc
                .entry((row.role, row.pid))
                .or_insert_with(|| vec![None; BUCKETS]);
            let slot = &mut slots[bucket(row.t_secs, duration)];
            if slot.as_ref().is_none_or(|s| row.fds >= s.fds) {
                *slot = Some(row);
            }
        }
        tl.processes = by_proc
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().flatten().collect()))
            .collect();
    }
    let tput = dir.join(THROUGHPUT_CSV);
    if tput.exists() {
        let mut last: Vec<Option<ThroughputRow>> = vec![None; BUCKETS];
        let mut worst: Vec<Option<[u64; 4]>> = vec![None; BUCKETS];
        for row in read_rows::<ThroughputRow>(&tput)? {
            let row = row?;
            tl.rows_read += 1;
            let b = bucket(row.t_secs, duration);
            if let (Some(p50), Some(p90), Some(p99), Some(max)) = (row.p50_us, row.p90_us, row.p99_us, row.max_us) {
                let w = worst[b].get_or_insert([0; 4]);
                for (slot, v) in w.iter_mut().zip([p50, p90, p99, max]) {
                    *slot = (*slot).max(v);
                }
            }
            last[b] = Some(row);
        }
        let mut prev: Option<ThroughputRow> = None;
        for row in last.into_iter().flatten() {
            if let Some(p) = &prev {
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
        let step = duration / BUCKETS as f64;
        for (b, w) in worst.into_iter().enumerate() {
            if let Some([p50, p90, p99, max]) = w {
                let ms = |v: u64| v as f64 / 1000.0;
                tl.latency
                    .push(((b as f64 + 0.5) * step, ms(p50), ms(p90), ms(p99), ms(max)));
            }
        }
    }
    Ok(tl)
}
