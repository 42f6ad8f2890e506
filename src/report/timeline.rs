//! Reads a report's streamed CSV files back, downsampled for display.
//!
//! The data on disk stays at full resolution; charts need at most a few
//! hundred points per series. Rows are read one at a time into a
//! [`Downsampler`], so an eight-hour soak and a 30-second CI run cost the
//! same memory to chart. During a run, the same downsampler is fed live and
//! checkpoints chart from it without reading the files.

use crate::series::{read_rows, SampleRow, ThroughputRow, SAMPLES_CSV, THROUGHPUT_CSV};
use crate::series::{Downsampler, Timeline};
use std::path::Path;

/// Reads `samples.csv` and `throughput.csv` from `dir`, for a run of
/// `duration` seconds sampled every `interval`; missing files give empty series.
pub fn read(dir: &Path, duration: f64, interval: f64) -> anyhow::Result<Timeline> {
    let mut d = Downsampler::new(duration, interval);
    let samples = dir.join(SAMPLES_CSV);
    if samples.exists() {
        for row in read_rows::<SampleRow>(&samples)? {
            d.sample(row?);
        }
    }
    let tput = dir.join(THROUGHPUT_CSV);
    if tput.exists() {
        for row in read_rows::<ThroughputRow>(&tput)? {
            d.throughput(&row?);
        }
    }
    Ok(d.timeline())
}
