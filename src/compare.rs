//! `fdsoak compare BASE CANDIDATE`: reads two reports and decides whether
//! the candidate regressed.
//!
//! Every metric becomes a [`Row`] with both values and the delta. A row
//! regresses when its delta breaks a rule in [`Tolerances`]; the defaults
//! are wide enough that two clean runs of the same build on a noisy shared
//! machine do not trip them, and tight enough that a leak always does.
//! Latency is recomputed from the stored HDR histograms, not copied from
//! the summaries, so it compares distributions, not rounded figures.

use crate::report::model::{Summary, WorkloadReport};
use anyhow::Context;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Calls a run must have beyond a latency percentile for that percentile to be compared.
pub const MIN_TAIL: f64 = 50.0;

/// Regression rules. A candidate regresses on a metric only when it is worse than the base by more than these.
///
/// The `compare` command's `--tol-*` flags are these fields, with [`Tolerances::DEFAULT`] as their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, clap::Args)]
pub struct Tolerances {
    /// Extra FD growth per hour allowed.
    #[arg(long = "tol-growth-per-hour", value_name = "N", default_value_t = Tolerances::DEFAULT.growth_per_hour)]
    pub growth_per_hour: f64,
    /// Extra residual FDs allowed after the drain.
    #[arg(long = "tol-residual-fds", value_name = "N", default_value_t = Tolerances::DEFAULT.residual_fds)]
    pub residual_fds: f64,
    /// Extra CLOSE_WAIT sockets allowed after the drain.
    #[arg(long = "tol-close-wait", value_name = "N", default_value_t = Tolerances::DEFAULT.close_wait)]
    pub close_wait: f64,
    /// Extra peak usage of the soft limit allowed, as a fraction (0.05 = 5 points).
    #[arg(long = "tol-peak-usage", value_name = "FRACTION", default_value_t = Tolerances::DEFAULT.peak_usage)]
    pub peak_usage: f64,
    /// Latency (p50, p99, p99.9) may grow by this fraction (1.0 = it may double)…
    #[arg(long = "tol-latency-ratio", value_name = "FRACTION", default_value_t = Tolerances::DEFAULT.latency_ratio)]
    pub latency_ratio: f64,
    /// …and must also grow by more than this to count.
    #[arg(long = "tol-latency-floor", value_name = "DURATION", default_value = LATENCY_FLOOR.as_str(), value_parser = crate::scenario::duration::parse)]
    pub latency_floor: Duration,
    /// Extra error rate allowed, as a fraction of finished calls.
    #[arg(long = "tol-error-rate", value_name = "FRACTION", default_value_t = Tolerances::DEFAULT.error_rate)]
    pub error_rate: f64,
    /// Throughput may fall by this fraction.
    #[arg(long = "tol-throughput-drop", value_name = "FRACTION", default_value_t = Tolerances::DEFAULT.throughput_drop)]
    pub throughput_drop: f64,
}

/// The default latency floor as the command line spells it, rendered from [`Tolerances::DEFAULT`].
static LATENCY_FLOOR: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| humantime::format_duration(Tolerances::DEFAULT.latency_floor).to_string());

impl Tolerances {
    /// The defaults: wide enough for two clean runs on a noisy shared machine, tight enough for any leak.
    pub const DEFAULT: Tolerances = Tolerances {
        growth_per_hour: 360.0,
        residual_fds: 5.0,
        close_wait: 5.0,
        peak_usage: 0.05,
        latency_ratio: 1.0,
        latency_floor: Duration::from_millis(5),
        error_rate: 0.01,
        throughput_drop: 0.1,
    };
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances::DEFAULT
    }
}

/// One metric, side by side.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub subject: String,
    pub metric: String,
    pub unit: &'static str,
    pub base: Option<f64>,
    pub candidate: Option<f64>,
    pub delta: Option<f64>,
    pub regressed: bool,
}

/// The whole comparison, as written by `--format json`.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub base: String,
    pub candidate: String,
    pub base_verdict: String,
    pub candidate_verdict: String,
    /// Gates that fail in the candidate and passed (or were absent) in the base.
    pub new_gate_failures: Vec<String>,
    pub rows: Vec<Row>,
    pub regressed: bool,
    pub tolerances: Tolerances,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Terminal,
    #[value(name = "md", alias = "markdown")]
    Markdown,
    Json,
}

/// Finds `summary.json` given a report directory or the file itself.
pub fn summary_path(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.join("summary.json")
    } else {
        p.to_path_buf()
    }
}

/// Loads both reports and compares them.
pub fn compare_paths(base: &Path, cand: &Path, tol: &Tolerances) -> anyhow::Result<Comparison> {
    let b = crate::report::json::read(&summary_path(base))?;
    let c = crate::report::json::read(&summary_path(cand))?;
    compare(&b, &c, &base.display().to_string(), &cand.display().to_string(), tol)
}

fn row(
    subject: &str,
    metric: &str,
    unit: &'static str,
    base: Option<f64>,
    cand: Option<f64>,
    worse: impl Fn(f64, f64) -> bool,
) -> Row {
    let delta = base.zip(cand).map(|(b, c)| c - b);
    let regressed = base.zip(cand).is_some_and(|(b, c)| worse(b, c));
    Row {
        subject: subject.into(),
        metric: metric.into(),
        unit,
        base,
        candidate: cand,
        delta,
        regressed,
    }
}

/// Compares two summaries.
pub fn compare(
    b: &Summary,
    c: &Summary,
    base_name: &str,
    cand_name: &str,
    t: &Tolerances,
) -> anyhow::Result<Comparison> {
    let mut rows = Vec::new();
    for role in ["target", "driver"] {
        process_rows(&mut rows, role, (b, c), t);
    }
    let keys: BTreeSet<(String, String)> = b
        .workloads
        .iter()
        .chain(&c.workloads)
        .map(|w| (w.phase.clone(), w.name.clone()))
        .collect();
    for (phase, name) in keys {
        let find = |s: &Summary| s.workloads.iter().find(|w| w.phase == phase && w.name == name).cloned();
        workload_rows(&mut rows, &format!("{name}@{phase}"), (find(b), find(c)), t)?;
    }
    let failed = |s: &Summary| -> BTreeSet<String> {
        s.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{} [{}]", c.gate, c.subject))
            .collect()
    };
    let new_gate_failures: Vec<String> = failed(c).difference(&failed(b)).cloned().collect();
    let regressed = rows.iter().any(|r| r.regressed) || !new_gate_failures.is_empty();
    Ok(Comparison {
        base: base_name.into(),
        candidate: cand_name.into(),
        base_verdict: b.verdict.as_str().into(),
        candidate_verdict: c.verdict.as_str().into(),
        new_gate_failures,
        rows,
        regressed,
        tolerances: t.clone(),
    })
}

/// One role's descriptor rows: growth, residual, CLOSE_WAIT and peak usage, base against candidate.
fn process_rows(rows: &mut Vec<Row>, role: &str, (b, c): (&Summary, &Summary), t: &Tolerances) {
    use crate::analysis::ProcessAnalysis as P;
    let pb = b.processes.iter().find(|p| p.role.as_str() == role);
    let pc = c.processes.iter().find(|p| p.role.as_str() == role);
    if pb.is_none() && pc.is_none() {
        return;
    }
    let get = |p: Option<&P>, f: fn(&P) -> f64| p.map(f);
    let significant = pc.is_some_and(|p| p.growth_fds >= c.scenario.resolved.gates.min_growth_fds);
    let (gb, gc) = (get(pb, |p| p.growth_per_hour), get(pc, |p| p.growth_per_hour));
    rows.push(row(role, "FD growth", "/h", gb, gc, |b, c| {
        significant && c - b > t.growth_per_hour
    }));
    let (rb, rc) = (get(pb, |p| p.residual_fds as f64), get(pc, |p| p.residual_fds as f64));
    rows.push(row(role, "residual FDs", "", rb, rc, |b, c| c - b > t.residual_fds));
    let cw = |p: &P| p.close_wait_final as f64 - p.close_wait_baseline as f64;
    rows.push(row(role, "CLOSE_WAIT", "", get(pb, cw), get(pc, cw), |b, c| {
        c - b > t.close_wait
    }));
    let usage = |p: Option<&P>| p.and_then(|p| p.peak_usage).map(|u| u * 100.0);
    rows.push(row(role, "peak usage", "%", usage(pb), usage(pc), |b, c| {
        c - b > t.peak_usage * 100.0
    }));
}

/// One workload's rows in one phase: latency percentiles (judged only with enough calls
/// beyond them), error rate and throughput.
fn workload_rows(
    rows: &mut Vec<Row>,
    subject: &str,
    (wb, wc): (Option<WorkloadReport>, Option<WorkloadReport>),
    t: &Tolerances,
) -> anyhow::Result<()> {
    let hb = wb
        .as_ref()
        .map(WorkloadReport::histogram)
        .transpose()
        .context("decoding the base histogram")?;
    let hc = wc
        .as_ref()
        .map(WorkloadReport::histogram)
        .transpose()
        .context("decoding the candidate histogram")?;
    let floor = t.latency_floor.as_micros() as f64 / 1000.0;
    for (label, q) in [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)] {
        let at = |h: &Option<hdrhistogram::Histogram<u64>>| {
            h.as_ref()
                .filter(|h| !h.is_empty())
                .map(|h| h.value_at_quantile(q) as f64 / 1000.0)
        };
        // A percentile is judged only when both runs have at least MIN_TAIL calls beyond it;
        // a p99 of 200 calls is two calls, and two calls are noise.
        let enough = |h: &Option<hdrhistogram::Histogram<u64>>| {
            h.as_ref().is_some_and(|h| h.len() as f64 * (1.0 - q) >= MIN_TAIL)
        };
        let judged = enough(&hb) && enough(&hc);
        let mut r = row(subject, label, "ms", at(&hb), at(&hc), |b, c| {
            judged && c > b * (1.0 + t.latency_ratio) && c - b > floor
        });
        if !judged {
            r.metric.push('*');
        }
        rows.push(r);
    }
    let err = |w: &Option<WorkloadReport>| w.as_ref().map(|w| w.error_rate() * 100.0);
    rows.push(row(subject, "error rate", "%", err(&wb), err(&wc), |b, c| {
        c - b > t.error_rate * 100.0
    }));
    let rate = |w: &Option<WorkloadReport>| w.as_ref().map(|w| w.achieved_rate);
    rows.push(row(subject, "throughput", "/s", rate(&wb), rate(&wc), |b, c| {
        c < b * (1.0 - t.throughput_drop)
    }));
    Ok(())
}

fn fmt_val(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "—".into(),
        Some(v) if unit == "ms" => format!("{v:.2}"),
        Some(v) if v.fract() == 0.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn fmt_delta(r: &Row) -> String {
    let Some(d) = r.delta else { return "—".into() };
    let sign = if d < 0.0 { "-" } else { "+" };
    let abs = format!("{sign}{}", fmt_val(Some(d.abs()), r.unit));
    match r.base {
        Some(b) if b.abs() > 1e-9 && r.unit != "%" => format!("{abs} ({:+.0}%)", 100.0 * d / b),
        _ => abs,
    }
}

impl Comparison {
    /// Renders the comparison in the chosen format.
    pub fn render(&self, format: Format) -> anyhow::Result<String> {
        let verdict = if self.regressed { "REGRESSION" } else { "no regression" };
        let mut o = String::new();
        match format {
            Format::Json => o = serde_json::to_string_pretty(self)? + "\n",
            Format::Markdown => {
                writeln!(
                    o,
                    "## fdsoak compare: {}\n",
                    if self.regressed {
                        "❌ regression"
                    } else {
                        "✅ no regression"
                    }
                )?;
                writeln!(
                    o,
                    "Base `{}` ({}) → candidate `{}` ({})\n",
                    self.base, self.base_verdict, self.candidate, self.candidate_verdict
                )?;
                for g in &self.new_gate_failures {
                    writeln!(o, "- new gate failure: `{g}`")?;
                }
                if !self.new_gate_failures.is_empty() {
                    writeln!(o)?;
                }
                writeln!(
                    o,
                    "Metrics marked * had too few calls to judge (fewer than {MIN_TAIL} beyond the percentile).\n"
                )?;
                writeln!(o, "| subject | metric | base | candidate | delta | |")?;
                writeln!(o, "|---|---|---:|---:|---:|---|")?;
                for r in &self.rows {
                    let unit = if r.unit.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", r.unit)
                    };
                    let flag = if r.regressed { "❌" } else { "" };
                    writeln!(
                        o,
                        "| {} | {}{unit} | {} | {} | {} | {flag} |",
                        r.subject.replace('|', "\\|"),
                        r.metric,
                        fmt_val(r.base, r.unit),
                        fmt_val(r.candidate, r.unit),
                        fmt_delta(r)
                    )?;
                }
            }
            Format::Terminal => {
                writeln!(o, "fdsoak compare: {verdict}")?;
                writeln!(o, "  base      {} ({})", self.base, self.base_verdict)?;
                writeln!(o, "  candidate {} ({})", self.candidate, self.candidate_verdict)?;
                for g in &self.new_gate_failures {
                    writeln!(o, "  ✗ new gate failure: {g}")?;
                }
                writeln!(
                    o,
                    "\n  {:<24} {:<16} {:>12} {:>12} {:>18}",
                    "subject", "metric", "base", "candidate", "delta"
                )?;
                let footnote = self.rows.iter().any(|r| r.metric.ends_with('*'));
                for r in &self.rows {
                    let metric = if r.unit.is_empty() {
                        r.metric.clone()
                    } else {
                        format!("{} ({})", r.metric, r.unit)
                    };
                    writeln!(
                        o,
                        "{} {:<24} {:<16} {:>12} {:>12} {:>18}",
                        if r.regressed { "✗" } else { " " },
                        r.subject,
                        metric,
                        fmt_val(r.base, r.unit),
                        fmt_val(r.candidate, r.unit),
                        fmt_delta(r)
                    )?;
                }
                if footnote {
                    writeln!(o, "\n  * too few calls to judge this percentile (fewer than {MIN_TAIL} beyond it); not a regression either way")?;
                }
            }
        }
        Ok(o)
    }
}
