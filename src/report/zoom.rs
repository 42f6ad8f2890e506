//! The zoomable charts' page format: the charts as compact JSON in the page
//! (a run's are built in [`super::zoom_charts`], a trend's in `trend`),
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

use super::charts::PALETTE;
use super::model::Summary;
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
