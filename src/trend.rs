//! `fdsoak trend REPORT…`: the history of one scenario across builds. The
//! reports are put in build order (the order of `--labels`, or their start
//! times), each build is compared with the one before it by the same rules
//! and tolerances as `compare`, and for every metric the first build that
//! regressed or failed its gate is named. A build is *regressed* when it is
//! worse than the last good build before it (the first build is good), so a
//! leak that stays is still a regression at the next build. `trend.md` and
//! `trend.html` hold the tables; the exit code says whether the newest build
//! is regressed.
//!
//! Reports of different scenarios are grouped by scenario, each group its
//! own history.

use crate::compare::{compare, summary_path, Tolerances};
use crate::error::{Error, Result};
use crate::report::html::escape;
use crate::report::model::Summary;
use crate::report::zoom::{self, Chart};
use anyhow::anyhow;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// One build in a history: its label and its report.
pub struct Build {
    pub label: String,
    pub path: PathBuf,
    pub summary: Summary,
}

/// One metric across builds.
pub struct Series {
    pub subject: String,
    pub metric: String,
    pub unit: &'static str,
    /// Per build: the value, whether it regressed against the build before.
    pub points: Vec<(Option<f64>, bool)>,
}

/// One scenario's history.
pub struct History {
    pub scenario: String,
    pub builds: Vec<Build>,
    pub series: Vec<Series>,
    /// Per build: gates that failed there and passed in the build before.
    pub new_failures: Vec<Vec<String>>,
    /// Per build: the last good build it is worse than, if it is regressed.
    pub regressed_against: Vec<Option<usize>>,
    /// Whether the newest build is regressed.
    pub newest_regressed: bool,
}

impl History {
    /// The label of the first build at which `s` regressed, if any.
    pub fn first_regressed(&self, s: &Series) -> Option<&str> {
        s.points.iter().position(|p| p.1).map(|i| self.builds[i].label.as_str())
    }

    /// Each gate (and subject) that failed at some build, with the first build where it newly failed.
    pub fn first_failures(&self) -> Vec<(String, &str)> {
        let mut seen: Vec<(String, &str)> = Vec::new();
        for (i, fails) in self.new_failures.iter().enumerate() {
            for f in fails {
                if !seen.iter().any(|(g, _)| g == f) {
                    seen.push((f.clone(), self.builds[i].label.as_str()));
                }
            }
        }
        seen
    }
}

/// Expands the arguments (directories, `summary.json` files, or glob patterns) into report paths.
pub fn expand(args: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for a in args {
        let s = a.to_string_lossy();
        if s.contains(['*', '?', '[']) {
            let matches: Vec<PathBuf> = glob::glob(&s)
                .map_err(|e| Error::input(anyhow!("{s}: {e}")))?
                .filter_map(|p| p.ok())
                .filter(|p| summary_path(p).is_file())
                .collect();
            if matches.is_empty() {
                return Err(Error::input(anyhow!("{s} matches no report")));
            }
            out.extend(matches);
        } else {
            out.push(a.clone());
        }
    }
    Ok(out)
}

/// Reads the reports and builds one history per scenario, in build order.
pub fn histories(paths: &[PathBuf], labels: &[String], tol: &Tolerances) -> Result<Vec<History>> {
    let mut builds = Vec::new();
    for p in paths {
        let summary = crate::report::json::read(&summary_path(p)).map_err(Error::input)?;
        let label = summary.label.clone().unwrap_or_else(|| {
            p.file_name()
                .map_or(p.display().to_string(), |n| n.to_string_lossy().into())
        });
        builds.push(Build {
            label,
            path: p.clone(),
            summary,
        });
    }
    if builds.len() < 2 {
        return Err(Error::input(anyhow!("trend needs at least two reports")));
    }
    if labels.is_empty() {
        builds.sort_by(|a, b| a.summary.started_at.cmp(&b.summary.started_at));
    } else {
        let rank = |b: &Build| labels.iter().position(|l| *l == b.label);
        if let Some(b) = builds.iter().find(|b| rank(b).is_none()) {
            return Err(Error::input(anyhow!(
                "{} has label {:?}, which --labels does not list",
                b.path.display(),
                b.label
            )));
        }
        builds.sort_by_key(rank);
    }
    let mut groups: BTreeMap<String, Vec<Build>> = BTreeMap::new();
    for b in builds {
        groups.entry(b.summary.scenario.name.clone()).or_default().push(b);
    }
    groups
        .into_iter()
        .map(|(scenario, builds)| history(scenario, builds, tol))
        .collect()
}

fn history(scenario: String, builds: Vec<Build>, tol: &Tolerances) -> Result<History> {
    let mut series: Vec<Series> = Vec::new();
    let mut new_failures = vec![Vec::new(); builds.len()];
    let mut regressed_against = vec![None; builds.len()];
    let mut good = 0;
    for i in 1..builds.len() {
        let against = compare(&builds[good].summary, &builds[i].summary, "", "", tol).map_err(Error::input)?;
        if against.regressed {
            regressed_against[i] = Some(good);
        } else {
            good = i;
        }
        let (b, c) = (&builds[i - 1], &builds[i]);
        let cmp = compare(&b.summary, &c.summary, &b.label, &c.label, tol).map_err(Error::input)?;
        for r in &cmp.rows {
            let s = match series
                .iter_mut()
                .find(|s| s.subject == r.subject && s.metric == r.metric)
            {
                Some(s) => s,
                None => {
                    let mut points = vec![(None, false); builds.len()];
                    points[i - 1].0 = r.base;
                    series.push(Series {
                        subject: r.subject.clone(),
                        metric: r.metric.clone(),
                        unit: r.unit,
                        points,
                    });
                    series.last_mut().ok_or_else(|| Error::input(anyhow!("no series")))?
                }
            };
            s.points[i] = (r.candidate, r.regressed);
        }
        new_failures[i] = cmp.new_gate_failures.clone();
    }
    let newest_regressed = regressed_against.last().is_some_and(Option::is_some);
    // Gates that already failed in the first build count as failing from there.
    if let Some(first) = builds.first() {
        new_failures[0] = first
            .summary
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{} [{}]", c.gate, c.subject))
            .collect();
    }
    Ok(History {
        scenario,
        builds,
        series,
        new_failures,
        regressed_against,
        newest_regressed,
    })
}

fn value(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "—".into(),
        Some(v) if unit == "%" => format!("{v:.2}%"),
        Some(v) if unit == "ms" => format!("{v:.2} ms"),
        Some(v) => format!("{v:.0}{unit}"),
    }
}

/// The markdown page: per scenario, what regressed first and the table of every metric per build.
pub fn markdown(histories: &[History]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "## fdsoak trend\n");
    for h in histories {
        let _ = writeln!(
            o,
            "### {} ({} builds: {})\n",
            h.scenario,
            h.builds.len(),
            labels(h).join(" → ")
        );
        for line in verdict_lines(h) {
            let _ = writeln!(o, "- {line}");
        }
        let _ = writeln!(o, "\n| subject | metric | {} |", labels(h).join(" | "));
        let _ = writeln!(o, "|---|---|{}", "---:|".repeat(h.builds.len()));
        for s in &h.series {
            let cells: Vec<String> = s
                .points
                .iter()
                .map(|(v, r)| format!("{}{}", value(*v, s.unit), if *r { " ▲" } else { "" }))
                .collect();
            let _ = writeln!(o, "| {} | {} | {} |", s.subject, s.metric, cells.join(" | "));
        }
        let _ = writeln!(o, "\n▲: regressed against the build before (compare's tolerances).\n");
    }
    o
}

fn labels(h: &History) -> Vec<String> {
    h.builds.iter().map(|b| b.label.replace('|', "\\|")).collect()
}

/// The sentences at the top of a history: the first regression of each metric, the first failure of each gate.
pub fn verdict_lines(h: &History) -> Vec<String> {
    let mut lines = Vec::new();
    let newest = h.builds.last().map_or("", |b| b.label.as_str());
    lines.push(match h.regressed_against.last().copied().flatten() {
        Some(good) => format!(
            "REGRESSED: the newest build, {newest}, is worse than {}, the last good build",
            h.builds[good].label
        ),
        None => format!("the newest build, {newest}, did not regress"),
    });
    for (gate, label) in h.first_failures() {
        lines.push(format!("gate {gate} first failed at {label}"));
    }
    if let Some(cmd) = bisect_command(h) {
        lines.push(format!("to find the commit: {cmd}"));
    }
    for s in &h.series {
        if let Some(label) = h.first_regressed(s) {
            lines.push(format!("{} {} first regressed at {label}", s.subject, s.metric));
        }
    }
    lines
}

/// The `fdsoak bisect` command that searches the commits between the newest
/// regression's first regressed build and the build before it, with the
/// target and client its report ran; the build command is the user's to fill in.
pub fn bisect_command(h: &History) -> Option<String> {
    let bad = (1..h.builds.len())
        .rev()
        .find(|&i| h.regressed_against[i].is_some() && h.regressed_against[i - 1].is_none())?;
    let (good, bad) = (&h.builds[bad - 1], &h.builds[bad]);
    let info = &bad.summary.scenario;
    let quote = |s: &str| shlex::try_quote(s).map_or_else(|_| s.to_string(), |q| q.into_owned());
    let mut cmd = format!(
        "fdsoak bisect --good {} --bad {} --build '<your build command>' {}",
        quote(&good.label),
        quote(&bad.label),
        quote(&info.file)
    );
    let target = &info.resolved.target;
    match (target.mode, &target.command, &target.address) {
        (crate::scenario::TargetMode::Spawn, Some(c), _) => cmd += &format!(" --spawn {}", quote(c)),
        (crate::scenario::TargetMode::Address, _, Some(a)) => cmd += &format!(" --target {}", quote(a)),
        _ => {}
    }
    if let Some(c) = &info.resolved.client {
        cmd += &format!(" --client {}", quote(&c.command));
    }
    Some(cmd)
}

/// Writes `trend.md` and `trend.html` into `out`.
pub fn write(histories: &[History], out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::run(anyhow!("creating {}: {e}", out.display())))?;
    crate::report::write_atomic(&out.join("trend.md"), markdown(histories).as_bytes()).map_err(Error::run)?;
    crate::report::write_atomic(&out.join("trend.html"), html(histories).as_bytes()).map_err(Error::run)?;
    Ok(())
}

/// trend.html's own style.
const TREND_CSS: &str = include_str!("report/assets/trend.css");

/// A self-contained page with the same content as the markdown.
pub fn html(histories: &[History]) -> String {
    let mut o = format!("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>fdsoak trend</title><style>{}{TREND_CSS}</style></head><body><h1>fdsoak trend</h1>", zoom::css());
    let mut page = zoom::Page::default();
    for (hi, h) in histories.iter().enumerate() {
        let _ = write!(o, "<h2>{}</h2><ul>", escape(&h.scenario));
        for (i, line) in verdict_lines(h).iter().enumerate() {
            let class = if i == 0 && h.newest_regressed {
                " class=\"bad\""
            } else {
                ""
            };
            let _ = write!(o, "<li{class}>{}</li>", escape(line));
        }
        let _ = write!(o, "</ul><table><tr><th>subject</th><th>metric</th>");
        for b in &h.builds {
            let _ = write!(o, "<th>{}</th>", escape(&b.label));
        }
        o.push_str("</tr>");
        for s in &h.series {
            let _ = write!(o, "<tr><td>{}</td><td>{}</td>", escape(&s.subject), escape(&s.metric));
            for (v, r) in &s.points {
                let (class, mark) = if *r { (" class=\"up\"", " ▲") } else { ("", "") };
                let _ = write!(o, "<td{class}>{}{mark}</td>", escape(&value(*v, s.unit)));
            }
            o.push_str("</tr>");
        }
        o.push_str("</table>");
        for (m, chart) in charts(h).into_iter().enumerate() {
            let _ = write!(o, "<figure id=\"trend-{hi}-{m}\"></figure>");
            page.charts.push(Chart {
                id: format!("trend-{hi}-{m}"),
                ..chart
            });
        }
    }
    o.push_str("<p>▲: regressed against the build before, by the tolerances of <code>fdsoak compare</code>. With scripting on, each metric is also charted per build (red lines: regressed builds); drag to zoom, double-click to zoom out, hover for values. The tables above are the same figures.</p>");
    o.push_str(&zoom::scripts(&page).unwrap_or_default());
    o.push_str("</body></html>\n");
    o
}

/// One chart per metric, a line per subject, x = builds in order.
fn charts(h: &History) -> Vec<Chart> {
    let labels: Vec<String> = h.builds.iter().map(|b| b.label.clone()).collect();
    let regressed: Vec<i64> = h
        .regressed_against
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_some())
        .map(|(i, _)| i as i64 * 1000)
        .collect();
    let mut metrics: Vec<(&str, &str)> = Vec::new();
    for s in &h.series {
        if !metrics.iter().any(|m| m.0 == s.metric) {
            metrics.push((&s.metric, s.unit));
        }
    }
    metrics
        .into_iter()
        .map(|(metric, unit)| {
            let lines: Vec<&Series> = h.series.iter().filter(|s| s.metric == metric).collect();
            Chart {
                title: metric.to_string(),
                y: unit.trim().to_string(),
                x: zoom::delta_ints(0..labels.len() as i64),
                x_scale: 1.0,
                x_max: (labels.len().max(2) - 1) as f64,
                x_labels: labels.clone(),
                v_scale: 1000.0,
                events: if regressed.is_empty() {
                    BTreeMap::new()
                } else {
                    BTreeMap::from([("regressed".to_string(), zoom::delta_ints(regressed.iter().copied()))])
                },
                series: lines
                    .iter()
                    .enumerate()
                    .map(|(i, s)| zoom::Series {
                        label: s.subject.clone(),
                        color: zoom::color(i),
                        dash: false,
                        v: zoom::delta(s.points.iter().map(|p| p.0), 1000.0),
                    })
                    .collect(),
                ..Chart::default()
            }
        })
        .collect()
}
