//! `summary.md`: the verdict, the findings and a key-figures table, sized
//! for a CI job summary or a pull-request comment.

use super::model::{Summary, Verdict};
use super::Exporter;
use crate::analysis::findings::human_secs;
use std::fmt::Write;

pub struct Markdown;

fn badge(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✅ PASS",
        Verdict::Fail => "❌ FAIL",
        Verdict::Error => "⚠️ ERROR",
        Verdict::Interrupted => "⏹️ INTERRUPTED",
        Verdict::Running => "⏳ RUNNING",
        Verdict::Incomplete => "⚠️ INCOMPLETE",
    }
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// Escapes the characters that would break a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

impl Exporter for Markdown {
    fn file_name(&self) -> &'static str {
        "summary.md"
    }

    fn render(&self, s: &Summary, _dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
        let mut o = String::new();
        header(&mut o, s)?;
        findings(&mut o, s)?;
        if !s.processes.is_empty() {
            descriptors(&mut o, s)?;
        }
        if !s.workloads.is_empty() {
            workloads(&mut o, s)?;
        }
        if !s.checks.is_empty() {
            gates(&mut o, s)?;
        }
        Ok(o.into_bytes())
    }
}

/// The title with the verdict, what ran against what, and the notes on how the run went.
fn header(o: &mut String, s: &Summary) -> std::fmt::Result {
    writeln!(o, "## fdsoak · {} · {}\n", s.scenario.name, badge(s.verdict))?;
    writeln!(
        o,
        "Target: {} · ran {} from {} · fdsoak {}\n",
        cell(&s.target.description),
        human_secs(s.duration_secs),
        s.started_at,
        s.tool.version
    )?;
    if let Some(note) = s.progress_note() {
        writeln!(o, "**{note}**\n")?;
    }
    for note in s.origin.iter().flat_map(|o| &o.notes) {
        writeln!(o, "Origins: {note}\n")?;
    }
    if let Some(sh) = &s.shard {
        writeln!(
            o,
            "Shard {} of {} (indices from 0) on host {}: one driver's share; `fdsoak merge` adds the shards into the whole run.\n",
            sh.index,
            sh.count,
            cell(&s.host)
        )?;
    }
    if !s.merged_from.is_empty() {
        writeln!(o, "Merged from {} reports.\n", s.merged_from.len())?;
    }
    Ok(())
}

fn findings(o: &mut String, s: &Summary) -> std::fmt::Result {
    if s.failures().next().is_none() {
        writeln!(o, "No findings: every gate passed.\n")?;
        if s.findings.is_empty() {
            return Ok(());
        }
    } else {
        writeln!(o, "### Findings\n")?;
    }
    let (leaks, others) = super::leaks::leaks(s);
    for leak in &leaks {
        writeln!(o, "- **{}**", leak.headline())?;
        for g in &leak.gates {
            writeln!(o, "  - `{}` failed: {}", g.name(), g.words)?;
        }
    }
    for f in others {
        let note = if s.is_note(f) { "Note: " } else { "" };
        writeln!(o, "- {note}{}", f.message)?;
    }
    writeln!(o)?;
    said(o, s)
}

/// What the processes said: their complaints of exhaustion, and their last lines in a block.
fn said(o: &mut String, s: &Summary) -> std::fmt::Result {
    for t in super::said::told(s) {
        if let Some(c) = &t.complaint {
            writeln!(o, "Note: {c}.\n")?;
        }
        if !t.last_lines.is_empty() {
            let heading = t.heading();
            let heading = heading.replace(t.log, &format!("[{0}]({0})", t.log));
            writeln!(o, "{}\n", capitalized(&heading))?;
            // A fence longer than any run of backticks in the lines, so none ends it early.
            let fence = "`".repeat(3.max(t.last_lines.iter().map(|l| longest_run(l, '`')).max().unwrap_or(0) + 1));
            writeln!(o, "{fence}text")?;
            for l in t.last(super::said::SHOWN) {
                writeln!(o, "{l}")?;
            }
            writeln!(o, "{fence}\n")?;
        }
    }
    Ok(())
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
}

fn longest_run(s: &str, ch: char) -> usize {
    s.split(|c| c != ch).map(str::len).max().unwrap_or(0)
}

/// Each process's descriptors, the notes on their source, and what grew, with who opened it.
fn descriptors(o: &mut String, s: &Summary) -> std::fmt::Result {
    writeln!(o, "### File descriptors\n")?;
    writeln!(o, "| {} |", super::table::PROCESS_HEADERS.join(" | "))?;
    writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for p in &s.processes {
        writeln!(o, "| {} |", super::table::process_cells(p).join(" | "))?;
    }
    writeln!(o)?;
    for note in super::table::source_notes(s) {
        writeln!(o, "{}\n", cell(&note))?;
    }
    let groups = super::table::group_rows(&s.processes);
    if groups.is_empty() {
        return Ok(());
    }
    writeln!(o, "#### What grew (end of run minus end of baseline)\n")?;
    let origins = super::table::group_origins(&s.processes);
    let (extra, rule) = if origins.is_some() {
        (" | opened by", "---|")
    } else {
        ("", "")
    };
    writeln!(o, "| {}{extra} |", super::table::GROUP_HEADERS.join(" | "))?;
    writeln!(o, "|---|---|---|---:|---:|---:|---:|---|{rule}")?;
    for (i, row) in groups.iter().enumerate() {
        let mut cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        if let Some(all) = &origins {
            let top = all.get(i).and_then(|o| o.first()).map(|o| o.sentence());
            cells.push(cell(&top.unwrap_or_default()));
        }
        writeln!(o, "| {} |", cells.join(" | "))?;
    }
    writeln!(o)
}

fn workloads(o: &mut String, s: &Summary) -> std::fmt::Result {
    writeln!(o, "### Workloads\n")?;
    writeln!(
        o,
        "| phase | workload | ok | errors | skipped | rate/s | p50 | p99 | p99.9 |"
    )?;
    writeln!(o, "|---|---|---:|---:|---:|---:|---:|---:|---:|")?;
    for w in &s.workloads {
        writeln!(
            o,
            "| {} | {} | {} | {} | {} | {:.1} | {} | {} | {} |",
            cell(&w.phase),
            cell(&w.name),
            w.ok,
            w.errors,
            w.skipped,
            w.achieved_rate,
            ms(w.latency.p50_us),
            ms(w.latency.p99_us),
            ms(w.latency.p999_us)
        )?;
    }
    writeln!(o)
}

/// Every gate checked, folded away: the findings already say which failed.
fn gates(o: &mut String, s: &Summary) -> std::fmt::Result {
    let failed = s.checks.iter().filter(|c| !c.passed).count();
    writeln!(
        o,
        "<details><summary>Gates: {} checked, {failed} failed</summary>\n",
        s.checks.len()
    )?;
    writeln!(o, "| gate | subject | value | threshold | result |")?;
    writeln!(o, "|---|---|---:|---:|---|")?;
    for c in &s.checks {
        let result = if c.passed { "pass" } else { "**fail**" };
        writeln!(
            o,
            "| {} | {} | {} | {} | {result} |",
            c.gate,
            cell(&c.subject),
            num(c.value),
            num(c.threshold)
        )?;
    }
    writeln!(o, "\n</details>")
}

/// Short numbers for tables: integers stay integers, fractions get three significant decimals.
pub fn num(v: f64) -> String {
    if (v.fract() == 0.0 && v.abs() < 1e15) || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}
