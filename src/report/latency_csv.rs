//! `latency.csv`: one row per workload and phase with counts, achieved rate
//! and latency percentiles in microseconds.

use super::model::Summary;
use super::Exporter;
use serde::Serialize;

pub(crate) struct LatencyCsv;

#[derive(Serialize)]
struct Row<'a> {
    phase: &'a str,
    workload: &'a str,
    kind: &'a str,
    channel: &'a str,
    scheduled: u64,
    started: u64,
    skipped: u64,
    ok: u64,
    errors: u64,
    achieved_rate: f64,
    count: u64,
    min_us: u64,
    mean_us: f64,
    p50_us: u64,
    p90_us: u64,
    p99_us: u64,
    p999_us: u64,
    max_us: u64,
}

impl Exporter for LatencyCsv {
    fn file_name(&self) -> &'static str {
        "latency.csv"
    }

    fn render(&self, summary: &Summary, _dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in &summary.workloads {
            let l = &r.latency;
            w.serialize(Row {
                phase: &r.phase,
                workload: &r.name,
                kind: &r.kind,
                channel: &r.channel,
                scheduled: r.scheduled,
                started: r.started,
                skipped: r.skipped,
                ok: r.ok,
                errors: r.errors,
                achieved_rate: (r.achieved_rate * 100.0).round() / 100.0,
                count: l.count,
                min_us: l.min_us,
                mean_us: l.mean_us.round(),
                p50_us: l.p50_us,
                p90_us: l.p90_us,
                p99_us: l.p99_us,
                p999_us: l.p999_us,
                max_us: l.max_us,
            })?;
        }
        Ok(w.into_inner()?)
    }
}
