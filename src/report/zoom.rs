//! The zoomable charts: the min/max traces as compact JSON in the page,
//! drawn by uPlot (bundled from the npm package `uplot`, MIT, its licence
//! kept in the page) and a small script of ours, `zoom.js`.
//!
//! Drag across a chart to zoom into that span, double-click to zoom back out,
//! hover for the values. Phases are shaded and fault events marked, as on
//! the static SVG charts, which stay in the page for readers with scripting
//! off and are hidden once a chart has drawn. Nothing is fetched.
//!
//! Each chart's x positions and values are integers, delta-coded
//! (`x = Σdx · x_scale`, `v = Σdv / v_scale`), so a 24-hour soak at 1 Hz
//! (86,400 points per descriptor series) stays within a few megabytes.

use super::chart_table::{self as table, ChartSpec, Named};
use super::charts::PALETTE;
use super::limits::Marks;
use super::model::Summary;
use crate::domain::{Role, TCP_STATES};
use crate::series::{Grid, ProcTraces, Timeline, Trace, Traces};
use serde::Serialize;
use std::collections::BTreeMap;

/// uPlot's minified build, its stylesheet and its licence, as published in the npm package.
pub const UPLOT_VERSION: &str = "1.6.32";
const UPLOT_JS: &str = include_str!("vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("vendor/uplot/uPlot.min.css");
const UPLOT_LICENSE: &str = include_str!("vendor/uplot/LICENSE");
/// Ours: reads the data block and draws each chart.
const ZOOM_JS: &str = include_str!("assets/zoom.js");
const ZOOM_CSS: &str = include_str!("assets/zoom.css");

/// Everything the script draws.
#[derive(Debug, Default, Serialize)]
pub struct Page {
    pub phases: Vec<PhaseMark>,
    /// Fault events by kind, times in ms, delta-coded.
    pub events: BTreeMap<String, Vec<i64>>,
    pub charts: Vec<Chart>,
}

#[derive(Debug, Serialize)]
pub struct PhaseMark {
    pub name: String,
    pub start: f64,
    pub end: f64,
    pub idle: bool,
}

/// One chart; `id` is the `<figure>` it goes into.
#[derive(Debug, Default, Serialize)]
pub struct Chart {
    pub id: String,
    pub title: String,
    pub y: String,
    /// Delta-coded x positions, in units of `x_scale` seconds (or builds).
    pub x: Vec<i64>,
    pub x_scale: f64,
    /// The full range shown before any zoom.
    pub x_max: f64,
    /// Names for x = 0, 1, 2…, when the x axis is builds rather than time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub x_labels: Vec<String>,
    pub v_scale: f64,
    pub stacked: bool,
    pub series: Vec<Series>,
    /// This chart's own events (times in ms, delta-coded), instead of the page's.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub events: BTreeMap<String, Vec<i64>>,
    pub levels: Vec<LevelMark>,
    pub lines: Vec<LineMark>,
}

#[derive(Debug, Serialize)]
pub struct Series {
    pub label: String,
    pub color: String,
    pub dash: bool,
    /// One value per x position, delta-coded over the non-null ones.
    pub v: Vec<Option<i64>>,
}

#[derive(Debug, Serialize)]
pub struct LevelMark {
    pub label: String,
    pub y: f64,
    pub color: String,
}

#[derive(Debug, Serialize)]
pub struct LineMark {
    pub label: String,
    pub color: String,
    pub from: (f64, f64),
    pub to: (f64, f64),
}

/// A palette colour as `#rrggbb`.
pub fn color(i: usize) -> String {
    let c = PALETTE[i % PALETTE.len()];
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// Delta-codes `values` after scaling them to integers; nulls stay null and do not move the base.
pub fn delta(values: impl IntoIterator<Item = Option<f64>>, scale: f64) -> Vec<Option<i64>> {
    let mut prev = 0i64;
    values
        .into_iter()
        .map(|v| {
            v.filter(|v| v.is_finite()).map(|v| {
                let n = (v * scale).round() as i64;
                let d = n - prev;
                prev = n;
                d
            })
        })
        .collect()
}

/// Plain delta coding of integers.
pub fn delta_ints(values: impl IntoIterator<Item = i64>) -> Vec<i64> {
    let mut prev = 0;
    values
        .into_iter()
        .map(|v| {
            let d = v - prev;
            prev = v;
            d
        })
        .collect()
}

/// One series of a zoomable chart, as traced.
pub struct TraceLine<'a> {
    pub label: String,
    pub color: String,
    pub dash: bool,
    pub trace: &'a Trace,
}

impl<'a> TraceLine<'a> {
    /// A solid line of a series the chart table names.
    fn named(named: &Named, trace: &'a Trace) -> TraceLine<'a> {
        TraceLine {
            label: named.name.into(),
            color: color(named.color),
            dash: false,
            trace,
        }
    }
}

/// A chart over `grid` from traces: each bucket any trace saw gives two x
/// positions (a quarter and three quarters of the way through it), carrying
/// each trace's two extremes in the order they came.
pub fn from_traces(mut chart: Chart, grid: Grid, lines: &[TraceLine]) -> Chart {
    let buckets: Vec<usize> = (0..grid.len)
        .filter(|b| lines.iter().any(|l| l.trace.get(*b).is_some()))
        .collect();
    chart.x = delta_ints(buckets.iter().flat_map(|b| [4 * *b as i64 + 1, 4 * *b as i64 + 3]));
    chart.x_scale = grid.width / 4.0;
    let scale = chart.v_scale;
    chart.series = lines
        .iter()
        .map(|l| Series {
            label: l.label.clone(),
            color: l.color.clone(),
            dash: l.dash,
            v: delta(
                buckets.iter().flat_map(|b| match l.trace.get(*b) {
                    Some((a, z)) => [Some(a), Some(z)],
                    None => [None, None],
                }),
                scale,
            ),
        })
        .collect();
    chart
}

/// The phases and fault events of a run, for every chart.
pub fn page(s: &Summary) -> Page {
    let mut events: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut by_kind: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for e in &s.fault_events {
        by_kind
            .entry(&e.kind)
            .or_default()
            .push((e.t_secs * 1000.0).round() as i64);
    }
    for (k, mut ts) in by_kind {
        ts.sort_unstable();
        events.insert(k.to_string(), delta_ints(ts));
    }
    Page {
        phases: s
            .phases
            .iter()
            .map(|p| PhaseMark {
                name: p.name.clone(),
                start: p.start_secs,
                end: p.end_secs,
                idle: p.idle,
            })
            .collect(),
        events,
        charts: Vec::new(),
    }
}

/// Every zoomable chart of a run's report, as the chart table lists them
/// and in the order of the static ones, each going into the `<figure>` whose
/// id it names.
pub fn report_page(s: &Summary, tl: &Timeline, marks: &Marks) -> Page {
    let mut page = page(s);
    let tr = &tl.traces;
    page.charts.push(fds_chart(tr, marks));
    let target = tr.procs.iter().find(|((role, _), _)| *role == Role::Target);
    if let (Some(((_, pid), p)), true) = (target, table::KINDS.shown_for(s)) {
        page.charts.push(kinds_chart(*pid, p, tr.fine, marks.x_max));
        page.charts.push(tcp_chart(*pid, p, tr.fine, marks.x_max));
    }
    if table::LATENCY.shown_for(s) {
        page.charts.push(latency_chart(tr, marks.x_max));
        page.charts.push(throughput_chart(tr, marks.x_max));
    }
    page
}

/// An empty chart as `spec` says, titled `title`, showing 0 to `x_max` before any zoom.
fn chart_of(spec: &ChartSpec, title: String, x_max: f64) -> Chart {
    Chart {
        id: spec.id.into(),
        title,
        y: spec.y.into(),
        v_scale: spec.v_scale(),
        stacked: spec.stacked,
        x_max,
        ..Chart::default()
    }
}

/// Descriptors per process, with the soft limits and the projections to them.
fn fds_chart(tr: &Traces, marks: &Marks) -> Chart {
    let lines: Vec<TraceLine> = tr
        .procs
        .iter()
        .enumerate()
        .map(|(i, ((role, pid), p))| TraceLine {
            label: format!("{role} (pid {pid})"),
            color: color(i),
            dash: false,
            trace: &p.total,
        })
        .collect();
    let spec = &table::FDS;
    let mut chart = from_traces(chart_of(spec, spec.title.into(), marks.x_max), tr.fine, &lines);
    chart.levels = marks
        .levels
        .iter()
        .map(|l| LevelMark {
            label: l.name.clone(),
            y: l.y,
            color: color(l.color),
        })
        .collect();
    chart.lines = marks
        .projections
        .iter()
        .map(|p| LineMark {
            label: p.name.clone(),
            color: color(p.color),
            from: p.from,
            to: p.to,
        })
        .collect();
    chart
}

/// The target's descriptors by kind, stacked, the largest (the total) first.
fn kinds_chart(pid: i32, p: &ProcTraces, grid: Grid, x_max: f64) -> Chart {
    let traces = p.kinds.iter().chain([&p.total]);
    let mut lines: Vec<TraceLine> = table::KINDS
        .fixed()
        .iter()
        .zip(traces)
        .map(|(named, t)| TraceLine::named(named, t))
        .collect();
    lines.reverse();
    from_traces(
        chart_of(&table::KINDS, table::KINDS.title_for(pid), x_max),
        grid,
        &lines,
    )
}

/// The target's TCP sockets by state: only the states it ever had.
fn tcp_chart(pid: i32, p: &ProcTraces, grid: Grid, x_max: f64) -> Chart {
    let lines: Vec<TraceLine> = p
        .states
        .iter()
        .map(|(i, t)| TraceLine {
            label: TCP_STATES[*i].1.to_string(),
            color: color(*i),
            dash: false,
            trace: t,
        })
        .collect();
    from_traces(chart_of(&table::TCP, table::TCP.title_for(pid), x_max), grid, &lines)
}

/// Latency percentiles, all workloads together.
fn latency_chart(tr: &Traces, x_max: f64) -> Chart {
    let lines: Vec<TraceLine> = table::LATENCY
        .fixed()
        .iter()
        .zip(&tr.latency)
        .map(|(named, t)| TraceLine::named(named, t))
        .collect();
    let spec = &table::LATENCY;
    from_traces(chart_of(spec, spec.title.into(), x_max), tr.coarse, &lines)
}

/// Throughput, with errors and skipped calls when there were any.
fn throughput_chart(tr: &Traces, x_max: f64) -> Chart {
    let ever = |t: &Trace| (0..t.len()).any(|b| t.get(b).is_some_and(|v| v.0 > 0.0 || v.1 > 0.0));
    let lines: Vec<TraceLine> = table::THROUGHPUT
        .fixed()
        .iter()
        .zip(&tr.rates)
        .filter(|(named, t)| !named.optional || ever(t))
        .map(|(named, t)| TraceLine::named(named, t))
        .collect();
    let spec = &table::THROUGHPUT;
    from_traces(chart_of(spec, spec.title.into(), x_max), tr.coarse, &lines)
}

/// The data block and the scripts, to go at the end of `<body>`.
pub fn scripts(page: &Page) -> anyhow::Result<String> {
    // `</` inside a string would end the script element early; `<\/` is the same JSON.
    let data = serde_json::to_string(page)?.replace("</", "<\\/");
    let license = UPLOT_LICENSE.replace("--", "- -");
    Ok(format!(
        "<!-- uPlot {UPLOT_VERSION} (https://github.com/leeoniya/uPlot), bundled from the npm package uplot.\n{license}-->\n\
         <script type=\"application/json\" id=\"fdsoak-data\">{data}</script>\n\
         <script>{UPLOT_JS}</script>\n<script>{ZOOM_JS}</script>\n"
    ))
}

/// The page's extra CSS: uPlot's, and the rules that swap the static charts for the live ones.
pub fn css() -> String {
    format!("{UPLOT_CSS}{ZOOM_CSS}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_coding_skips_nulls() {
        let d = delta([Some(10.0), None, Some(12.0), Some(12.0), Some(f64::NAN)], 1.0);
        assert_eq!(d, vec![Some(10), None, Some(2), Some(0), None]);
        assert_eq!(delta_ints([5, 7, 7, 10]), vec![5, 2, 0, 3]);
    }

    #[test]
    fn a_chart_keeps_both_extremes_of_every_bucket() {
        let grid = Grid::new(10.0, 1.0, 100);
        let mut t = Trace::new(grid.len);
        t.add(2, 5.0);
        t.add(2, 50.0);
        t.add(2, 7.0);
        t.add(4, 3.0);
        let c = from_traces(
            Chart {
                v_scale: 1.0,
                ..Chart::default()
            },
            grid,
            &[TraceLine {
                label: "a".into(),
                color: color(0),
                dash: false,
                trace: &t,
            }],
        );
        assert_eq!(c.x, vec![9, 2, 6, 2], "buckets 2 and 4, two positions each");
        assert_eq!(c.series[0].v, vec![Some(5), Some(45), Some(-47), Some(0)]);
    }

    #[test]
    fn the_data_block_cannot_end_its_script_early() {
        let mut p = Page::default();
        p.phases.push(PhaseMark {
            name: "</script><script>alert(1)</script>".into(),
            start: 0.0,
            end: 1.0,
            idle: false,
        });
        let html = scripts(&p).unwrap();
        let data = html.split("id=\"fdsoak-data\">").nth(1).unwrap();
        let block = data.split("</script>").next().unwrap();
        assert!(block.contains("alert(1)"), "the name is still in the data");
        let back: serde_json::Value = serde_json::from_str(block).unwrap();
        assert_eq!(back["phases"][0]["name"], "</script><script>alert(1)</script>");
    }
}
