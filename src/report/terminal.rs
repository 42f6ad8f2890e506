//! The human summary printed when a run ends: verdict first, findings next,
//! then the key figures per process and per workload.

use super::model::Summary;
use crate::analysis::findings::human_secs;
use std::fmt::Write;

fn ms(us: u64) -> String {
    format!("{:.2}ms", us as f64 / 1000.0)
}

/// Renders the summary as plain text (no colours, so it reads the same in CI logs):
/// the verdict and findings, what the processes said, the table of processes, what
/// grew, and the table of workloads.
pub(crate) fn render(s: &Summary, dir: &std::path::Path) -> String {
    let mut out = String::new();
    let _ = verdict(&mut out, s, dir);
    let _ = said(&mut out, s, dir);
    let _ = processes(&mut out, s);
    let _ = what_grew(&mut out, s);
    let _ = workloads(&mut out, s);
    out
}

/// The verdict's line, the notes, and one line per leak (with its gates) or other finding.
fn verdict(out: &mut String, s: &Summary, dir: &std::path::Path) -> std::fmt::Result {
    writeln!(
        out,
        "fdsoak {}: {} after {} — report in {}",
        s.scenario.name,
        s.verdict.as_str().to_uppercase(),
        human_secs(s.duration_secs),
        dir.display()
    )?;
    if let Some(note) = s.progress_note() {
        writeln!(out, "  {note}")?;
    }
    for note in s.origin.iter().flat_map(|o| &o.notes) {
        writeln!(out, "  origins: {note}")?;
    }
    if s.failures().next().is_none() {
        writeln!(out, "  no findings: every gate passed")?;
    }
    let (leaks, others) = super::leaks::leaks(s);
    for leak in &leaks {
        writeln!(out, "  ✗ {}", leak.headline())?;
        for g in &leak.gates {
            writeln!(out, "      {} failed: {}", g.name(), g.words)?;
        }
    }
    for f in others {
        let mark = if s.is_note(f) { "○" } else { "✗" };
        writeln!(out, "  {mark} {}", f.message)?;
    }
    Ok(())
}

/// What the processes said: their complaints of exhaustion, and the last lines the report kept.
fn said(out: &mut String, s: &Summary, dir: &std::path::Path) -> std::fmt::Result {
    for t in super::said::told(s) {
        if let Some(c) = &t.complaint {
            writeln!(out, "  ○ {c}")?;
        }
        if !t.last_lines.is_empty() {
            let heading = t.heading().replace(t.log, &dir.join(t.log).display().to_string());
            writeln!(out, "  {heading}")?;
            for l in t.last(super::said::SHOWN) {
                writeln!(out, "    | {l}")?;
            }
        }
    }
    Ok(())
}

/// One row per watched process: its descriptors against its limit, and where they were read.
fn processes(out: &mut String, s: &Summary) -> std::fmt::Result {
    writeln!(
        out,
        "\n  {:<7} {:>7} {:>9} {:>9} {:>12} {:>11} {:>10}",
        "process", "pid", "baseline", "final", "peak/limit", "growth/h", "CLOSE_WAIT"
    )?;
    for p in &s.processes {
        let limit = p.nofile_soft.map_or("unlimited".into(), |l| l.to_string());
        writeln!(
            out,
            "  {:<7} {:>7} {:>9} {:>9} {:>12} {:>+11.0} {:>10}",
            p.role.as_str(),
            if p.pid == 0 { "—".into() } else { p.pid.to_string() },
            p.baseline_fds,
            p.final_fds,
            format!("{}/{}", p.peak_fds, limit),
            p.growth_per_hour,
            super::table::close_wait_cell(p)
        )?;
    }
    for note in super::table::source_notes(s) {
        writeln!(out, "  {note}")?;
    }
    Ok(())
}

/// The groups that grew, the five largest of each process.
fn what_grew(out: &mut String, s: &Summary) -> std::fmt::Result {
    if s.processes.iter().all(|p| p.groups.is_empty()) {
        return Ok(());
    }
    writeln!(out, "\n  what grew, end of run minus end of baseline:")?;
    for p in &s.processes {
        for g in p.groups.iter().take(5) {
            let cause = g.cause().map_or(String::new(), |c| format!(" (likely {c})"));
            let steady = if g.steady { ", steady" } else { "" };
            writeln!(out, "  {:<7} {g} [peak {}{steady}]{cause}", p.role.as_str(), g.peak)?;
        }
    }
    Ok(())
}

/// One row per workload and phase: calls, rate and latency.
fn workloads(out: &mut String, s: &Summary) -> std::fmt::Result {
    if s.workloads.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\n  {:<10} {:<16} {:>8} {:>6} {:>6} {:>8} {:>9} {:>9} {:>9}",
        "phase", "workload", "ok", "err", "skip", "rate/s", "p50", "p99", "p99.9"
    )?;
    for w in &s.workloads {
        writeln!(
            out,
            "  {:<10} {:<16} {:>8} {:>6} {:>6} {:>8.1} {:>9} {:>9} {:>9}",
            w.phase,
            w.name,
            w.ok,
            w.errors,
            w.skipped,
            w.achieved_rate,
            ms(w.latency.p50_us),
            ms(w.latency.p99_us),
            ms(w.latency.p999_us)
        )?;
    }
    Ok(())
}
