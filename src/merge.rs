//! `fdsoak merge REPORT… --out DIR`: one report from several drivers that
//! loaded the same target at the same time.
//!
//! Latency histograms of the same workload in the same phase are added, so
//! percentiles are those of all calls together; counts and throughput are
//! summed; the target's figures come from the first report, and every
//! driver (and client under test) keeps its own FD analysis and its own
//! rows in `samples.csv`.
//! Gates are evaluated again on the merged figures, and the verdict comes
//! from the same function a run uses.
//!
//! Reports of a sharded run (`run --shard I/N`) must be one run: the same
//! scenario and phases, the same shard count, every shard there once. A
//! spread of more than [`MAX_SKEW_MS`] between their phase starts (clock
//! skew, or a driver that missed `--start-at`) is warned about.
//!
//! Reading the inputs fails as a usage error (exit 2): a bad row names its
//! file and line, and nothing is read as zero. Writing fails as a run error.

use crate::analysis::findings::{evaluate, WorkloadFigures};
use crate::domain::Role;
use crate::error::{Error, Result};
use crate::report::model::{Summary, WorkloadReport};
use crate::series::{read_rows, CsvStream, SampleRow, ThroughputRow, SAMPLES_CSV, THROUGHPUT_CSV};
use anyhow::{anyhow, Context};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Merges the reports in `inputs` (directories) into `out`.
pub(crate) fn merge(inputs: &[PathBuf], out: &Path) -> Result<Summary> {
    if inputs.len() < 2 {
        return Err(Error::input(anyhow!("merge needs at least two reports")));
    }
    let summaries: Vec<Summary> = inputs
        .iter()
        .map(|p| crate::report::json::read(&crate::compare::summary_path(p)))
        .collect::<anyhow::Result<_>>()
        .map_err(Error::input)?;
    let first = &summaries[0];
    for (s, p) in summaries.iter().zip(inputs).skip(1) {
        if s.scenario.name != first.scenario.name {
            return Err(Error::input(anyhow!(
                "{} ran scenario {:?}, the first report ran {:?}",
                p.display(),
                s.scenario.name,
                first.scenario.name
            )));
        }
    }
    for warning in check_one_run(&summaries, inputs).map_err(Error::input)? {
        eprintln!("warning: {warning}");
    }
    let mut merged = merge_summaries(&summaries).map_err(Error::input)?;
    merged.merged_from = inputs.iter().map(|p| p.display().to_string()).collect();

    std::fs::create_dir_all(out)
        .with_context(|| format!("creating {}", out.display()))
        .map_err(Error::run)?;
    let samples = merge_samples(inputs, out)?;
    let throughput = merge_throughput(inputs, first.sampler_interval_secs).map_err(Error::input)?;
    crate::report::write_atomic(&out.join(THROUGHPUT_CSV), &throughput).map_err(Error::run)?;
    samples
        .persist(out.join(SAMPLES_CSV))
        .map_err(|e| Error::run(e.error))?;
    let files = crate::report::render_all(&merged, out).map_err(Error::input)?;
    crate::report::write_files(&files, out).map_err(Error::run)?;
    Ok(merged)
}

/// Phase starts further apart than this, across shards, are warned about.
pub(crate) const MAX_SKEW_MS: u64 = 1000;

/// Checks that the reports are the shards of one run: same phases, same shard
/// count, no shard missing or repeated. Returns warnings (clock skew).
pub(crate) fn check_one_run(summaries: &[Summary], inputs: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    let (Some(first), Some(first_path)) = (summaries.first(), inputs.first()) else {
        return Ok(Vec::new());
    };
    let phases = |s: &Summary| -> Vec<(String, std::time::Duration)> {
        s.scenario
            .resolved
            .phases
            .iter()
            .map(|p| (p.name.clone(), p.duration))
            .collect()
    };
    for (s, p) in summaries.iter().zip(inputs).skip(1) {
        if phases(s) != phases(first) {
            return Err(anyhow!(
                "{} ran other phases than {} (names or durations differ): not one run",
                p.display(),
                first_path.display()
            ));
        }
    }
    let sharded: Vec<_> = summaries
        .iter()
        .zip(inputs)
        .filter_map(|(s, p)| s.shard.as_ref().map(|sh| (sh, p)))
        .collect();
    if sharded.is_empty() {
        return Ok(Vec::new());
    }
    if let Some((_, p)) = summaries.iter().zip(inputs).find(|(s, _)| s.shard.is_none()) {
        return Err(anyhow!(
            "{} is not a shard, but the others are (run --shard I/N)",
            p.display()
        ));
    }
    let count = sharded[0].0.count;
    let mut seen: BTreeMap<u32, &PathBuf> = BTreeMap::new();
    for (sh, p) in &sharded {
        if sh.count != count {
            return Err(anyhow!(
                "{} is shard {}/{}, but {} ran {count} shards",
                p.display(),
                sh.index,
                sh.count,
                sharded[0].1.display()
            ));
        }
        if let Some(other) = seen.insert(sh.index, p) {
            return Err(anyhow!(
                "{} and {} are both shard {}/{count}",
                other.display(),
                p.display(),
                sh.index
            ));
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|i| !seen.contains_key(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(anyhow!(
            "shard {} missing: merge got {} of {count} shards",
            missing.join(", "),
            seen.len()
        ));
    }
    let starts = sharded.iter().map(|(s, _)| s.phases_unix_ms).filter(|t| *t > 0);
    let (lo, hi) = starts.fold((u64::MAX, 0), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let mut warnings = Vec::new();
    if hi > lo && hi - lo > MAX_SKEW_MS {
        warnings.push(format!(
            "the shards' phases began up to {:.1} s apart by their own clocks (clock skew, or a driver that missed --start-at): their load did not line up",
            (hi - lo) as f64 / 1000.0
        ));
    }
    Ok(warnings)
}

/// The merged summary: workloads added, the target from the first report, every driver.
pub(crate) fn merge_summaries(summaries: &[Summary]) -> anyhow::Result<Summary> {
    let first = summaries.first().ok_or_else(|| anyhow!("nothing to merge"))?;
    let mut workloads: Vec<WorkloadReport> = Vec::new();
    for s in summaries {
        for w in &s.workloads {
            match workloads.iter_mut().find(|m| m.phase == w.phase && m.name == w.name) {
                Some(m) => add_workload(m, w)?,
                None => workloads.push(w.clone()),
            }
        }
    }
    let mut processes: Vec<_> = first
        .processes
        .iter()
        .filter(|p| p.role == Role::Target)
        .cloned()
        .collect();
    processes.extend(
        summaries
            .iter()
            .flat_map(|s| s.processes.iter().filter(|p| p.role != Role::Target).cloned()),
    );
    let figures: Vec<WorkloadFigures> = workloads.iter().map(WorkloadFigures::from).collect();
    let (checks, findings) = evaluate(&first.scenario.resolved.gates, &processes, &figures);
    let events = summaries
        .iter()
        .flat_map(|s| s.findings.iter().filter(|f| f.kind.is_run_event()).cloned());
    let mut merged = first.clone();
    merged.findings = events.chain(findings.iter().map(Into::into)).collect();
    merged.verdict = crate::report::build::verdict(merged.findings.iter().map(|f| f.kind), &checks);
    merged.checks = checks;
    merged.processes = processes;
    merged.workloads = workloads;
    merged.duration_secs = summaries.iter().map(|s| s.duration_secs).fold(0.0, f64::max);
    merged.started_at = summaries.iter().map(|s| s.started_at.clone()).min().unwrap_or_default();
    // The merged report is the whole run, not one shard of it.
    merged.shard = None;
    Ok(merged)
}

fn add_workload(m: &mut WorkloadReport, w: &WorkloadReport) -> anyhow::Result<()> {
    let mut h = m.histogram()?;
    h.add(w.histogram()?).context("adding histograms")?;
    m.scheduled = m.scheduled.saturating_add(w.scheduled);
    m.started = m.started.saturating_add(w.started);
    m.skipped = m.skipped.saturating_add(w.skipped);
    m.ok = m.ok.saturating_add(w.ok);
    m.errors = m.errors.saturating_add(w.errors);
    m.messages = m.messages.saturating_add(w.messages);
    m.attempts = m.attempts.saturating_add(w.attempts);
    m.retries = m.retries.saturating_add(w.retries);
    m.retry_successes = m.retry_successes.saturating_add(w.retry_successes);
    m.give_ups = m.give_ups.saturating_add(w.give_ups);
    m.achieved_rate += w.achieved_rate;
    for (code, n) in &w.status_counts {
        let c = m.status_counts.entry(code.clone()).or_default();
        *c = c.saturating_add(*n);
    }
    for c in &w.status_causes {
        match m
            .status_causes
            .iter_mut()
            .find(|k| k.code == c.code && k.cause == c.cause)
        {
            Some(k) => k.attempts = k.attempts.saturating_add(c.attempts),
            None => m.status_causes.push(c.clone()),
        }
    }
    m.status_causes.sort_by_key(|c| std::cmp::Reverse(c.attempts));
    m.set_histogram(&h);
    // Each shard kept its own timetable: the merged run's lag is its worst shard's.
    let p99 = |l: &Option<crate::report::model::Latency>| l.as_ref().map_or(0, |l| l.p99_us);
    if p99(&w.timetable_lag) > p99(&m.timetable_lag) {
        m.timetable_lag = w.timetable_lag.clone();
    }
    Ok(())
}

/// The first report's rows, then every other report's driver rows, streamed
/// row by row into a temporary file in `out` (persisted by the caller).
pub(crate) fn merge_samples(inputs: &[PathBuf], out: &Path) -> Result<tempfile::NamedTempFile> {
    let tmp = tempfile::Builder::new()
        .prefix(".fdsoak-")
        .suffix(".tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(out)
        .with_context(|| format!("creating a temporary file in {}", out.display()))
        .map_err(Error::run)?;
    let mut w = CsvStream::from_file(
        tmp.reopen()
            .context("reopening the temporary file")
            .map_err(Error::run)?,
    );
    for (i, dir) in inputs.iter().enumerate() {
        for row in read_rows::<SampleRow>(&dir.join(SAMPLES_CSV)).map_err(Error::input)? {
            let row = row.map_err(Error::input)?;
            if i == 0 || row.role != Role::Target {
                w.write(&row).map_err(Error::run)?;
            }
        }
    }
    w.flush().map_err(Error::run)?;
    Ok(tmp)
}

/// Sums the drivers' counters tick by tick (ticks aligned on the sampler
/// interval from each run's start). Latency percentiles cannot be added, so
/// each merged tick keeps the worst of the drivers' percentiles.
pub(crate) fn merge_throughput(inputs: &[PathBuf], interval: f64) -> anyhow::Result<Vec<u8>> {
    let mut ticks: BTreeMap<u64, ThroughputRow> = BTreeMap::new();
    for dir in inputs {
        for row in read_rows::<ThroughputRow>(&dir.join(THROUGHPUT_CSV))? {
            let row = row?;
            let tick = (row.t_secs / interval.max(1e-3)).round().clamp(0.0, u64::MAX as f64) as u64;
            let m = ticks.entry(tick).or_insert_with(|| ThroughputRow {
                t_secs: tick as f64 * interval,
                phase: row.phase.clone(),
                ..ThroughputRow::default()
            });
            m.scheduled = m.scheduled.saturating_add(row.scheduled);
            m.started = m.started.saturating_add(row.started);
            m.ok = m.ok.saturating_add(row.ok);
            m.errors = m.errors.saturating_add(row.errors);
            m.skipped = m.skipped.saturating_add(row.skipped);
            m.in_flight = m.in_flight.saturating_add(row.in_flight);
            m.messages = m.messages.saturating_add(row.messages);
            let worst = |a: Option<u64>, b: Option<u64>| a.max(b);
            m.p50_us = worst(m.p50_us, row.p50_us);
            m.p90_us = worst(m.p90_us, row.p90_us);
            m.p99_us = worst(m.p99_us, row.p99_us);
            m.max_us = worst(m.max_us, row.max_us);
        }
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in ticks.values() {
        w.serialize(row)?;
    }
    Ok(w.into_inner()?)
}
