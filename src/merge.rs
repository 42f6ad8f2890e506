//! `fdsoak merge REPORT… --out DIR`: one report from several drivers that
//! loaded the same target at the same time.
//!
//! Latency histograms of the same workload in the same phase are added, so
//! percentiles are those of all calls together; counts and throughput are
//! summed; the target's figures come from the first report, and every
//! driver keeps its own FD analysis and its own rows in `samples.csv`.
//! Gates are evaluated again on the merged figures.

use crate::analysis::findings::{evaluate, WorkloadFigures};
use crate::analysis::Role;
use crate::report::model::{Latency, Summary, Verdict, WorkloadReport};
use anyhow::{bail, Context};
use base64::Engine;
use hdrhistogram::serialization::Serializer;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Merges the reports in `inputs` (directories) into `out`.
pub fn merge(inputs: &[PathBuf], out: &Path) -> anyhow::Result<Summary> {
    if inputs.len() < 2 {
        bail!("merge needs at least two reports");
    }
    let summaries: Vec<Summary> = inputs
        .iter()
        .map(|p| crate::report::json::read(&crate::compare::summary_path(p)))
        .collect::<anyhow::Result<_>>()?;
    let first = &summaries[0];
    for (s, p) in summaries.iter().zip(inputs).skip(1) {
        if s.scenario.name != first.scenario.name {
            bail!(
                "{} ran scenario {:?}, the first report ran {:?}",
                p.display(),
                s.scenario.name,
                first.scenario.name
            );
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;

    let mut workloads: Vec<WorkloadReport> = Vec::new();
    for s in &summaries {
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
            .flat_map(|s| s.processes.iter().filter(|p| p.role == Role::Driver).cloned()),
    );

    let figures: Vec<WorkloadFigures> = workloads.iter().map(WorkloadFigures::from).collect();
    let (checks, findings) = evaluate(&first.scenario.resolved.gates, &processes, &figures);
    let mut merged = first.clone();
    merged.findings = summaries
        .iter()
        .flat_map(|s| {
            s.findings
                .iter()
                .filter(|f| matches!(f.kind.as_str(), "target_died" | "run_error" | "interrupted"))
                .cloned()
        })
        .chain(findings.iter().map(Into::into))
        .collect();
    merged.verdict = if summaries.iter().any(|s| s.verdict == Verdict::Error) {
        Verdict::Error
    } else if summaries.iter().any(|s| s.verdict == Verdict::Interrupted) {
        Verdict::Interrupted
    } else if checks.iter().all(|c| c.passed) {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    merged.checks = checks;
    merged.processes = processes;
    merged.workloads = workloads;
    merged.duration_secs = summaries.iter().map(|s| s.duration_secs).fold(0.0, f64::max);
    merged.started_at = summaries.iter().map(|s| s.started_at.clone()).min().unwrap_or_default();
    merged.merged_from = inputs.iter().map(|p| p.display().to_string()).collect();

    merge_samples(inputs, out)?;
    merge_throughput(inputs, out, first.sampler_interval_secs)?;
    crate::report::write_all(&merged, out)?;
    Ok(merged)
}

fn add_workload(m: &mut WorkloadReport, w: &WorkloadReport) -> anyhow::Result<()> {
    let mut h = m.histogram()?;
    h.add(w.histogram()?).context("adding histograms")?;
    m.scheduled += w.scheduled;
    m.started += w.started;
    m.skipped += w.skipped;
    m.ok += w.ok;
    m.errors += w.errors;
    m.messages += w.messages;
    m.achieved_rate += w.achieved_rate;
    for (code, n) in &w.status_counts {
        *m.status_counts.entry(code.clone()).or_default() += n;
    }
    m.latency = Latency::of(&h);
    let mut bytes = Vec::new();
    hdrhistogram::serialization::V2Serializer::new().serialize(&h, &mut bytes)?;
    m.histogram_v2 = base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(())
}

/// The first report's rows, then every other report's driver rows. Streamed, row by row.
fn merge_samples(inputs: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    let tmp = out.join(".samples.csv.tmp");
    let mut w = csv::Writer::from_path(&tmp)?;
    for (i, dir) in inputs.iter().enumerate() {
        let path = dir.join("samples.csv");
        let mut r = csv::Reader::from_path(&path).with_context(|| format!("reading {}", path.display()))?;
        if i == 0 {
            w.write_record(r.headers()?)?;
        }
        let role = r
            .headers()?
            .iter()
            .position(|h| h == "role")
            .context("samples.csv has no role column")?;
        for rec in r.records() {
            let rec = rec?;
            if i == 0 || rec.get(role) == Some("driver") {
                w.write_record(&rec)?;
            }
        }
    }
    w.flush()?;
    drop(w);
    std::fs::rename(tmp, out.join("samples.csv"))?;
    Ok(())
}

/// Sums the drivers' counters tick by tick (ticks aligned on the sampler interval from each run's start).
fn merge_throughput(inputs: &[PathBuf], out: &Path, interval: f64) -> anyhow::Result<()> {
    const SUMMED: [&str; 7] = [
        "scheduled",
        "started",
        "ok",
        "errors",
        "skipped",
        "in_flight",
        "messages",
    ];
    let mut ticks: BTreeMap<u64, (String, [u64; 7])> = BTreeMap::new();
    for dir in inputs {
        let path = dir.join("throughput.csv");
        let mut r = csv::Reader::from_path(&path).with_context(|| format!("reading {}", path.display()))?;
        let h = r.headers()?.clone();
        let col = |name: &str| {
            h.iter()
                .position(|c| c == name)
                .with_context(|| format!("{} has no {name} column", path.display()))
        };
        let (t_col, phase_col) = (col("t_secs")?, col("phase")?);
        let cols: Vec<usize> = SUMMED.iter().map(|n| col(n)).collect::<anyhow::Result<_>>()?;
        for rec in r.records() {
            let rec = rec?;
            let t: f64 = rec.get(t_col).unwrap_or("0").parse().unwrap_or(0.0);
            let tick = (t / interval.max(1e-3)).round() as u64;
            let e = ticks
                .entry(tick)
                .or_insert_with(|| (rec.get(phase_col).unwrap_or("").to_string(), [0; 7]));
            for (k, c) in cols.iter().enumerate() {
                e.1[k] += rec.get(*c).and_then(|v| v.parse().ok()).unwrap_or(0);
            }
        }
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["t_secs", "phase"];
    header.extend(SUMMED);
    w.write_record(&header)?;
    for (tick, (phase, v)) in ticks {
        let mut rec = vec![format!("{:.3}", tick as f64 * interval), phase];
        rec.extend(v.iter().map(u64::to_string));
        w.write_record(&rec)?;
    }
    crate::report::write_atomic(&out.join("throughput.csv"), &w.into_inner()?)
}
