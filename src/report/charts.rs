//! SVG charts for the HTML report, drawn with plotters.
//!
//! Every chart shares one time axis (seconds since the run started, labelled
//! as durations) and shades the phases on it, so a reader can line up a jump
//! in descriptors with the phase that caused it. Series are passed in
//! already downsampled (see [`super::timeline`]).

use crate::analysis::findings::human_secs;
use crate::report::model::PhaseInfo;
use plotters::prelude::*;

/// Chart size in SVG pixels.
const SIZE: (u32, u32) = (960, 300);

/// A line to draw.
pub(crate) struct Line {
    pub name: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

/// A horizontal reference line, such as a soft limit.
pub(crate) struct Level {
    pub name: String,
    pub y: f64,
    pub color: RGBColor,
}

pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

fn y_top(lines: &[Line], levels: &[Level]) -> f64 {
    let m = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .chain(levels.iter().map(|l| l.y))
        .fold(0.0, f64::max);
    if m <= 0.0 {
        1.0
    } else {
        m * 1.1
    }
}

/// The shared time axis: its length, the phases to shade and the fault events to mark.
pub(crate) struct TimeAxis<'a> {
    pub x_max: f64,
    pub phases: &'a [PhaseInfo],
    pub events: &'a [(f64, String)],
}

/// Draws a line chart; `stacked` fills the area under each line (draw the largest first).
pub(crate) fn line_chart(
    title: &str,
    y_desc: &str,
    axis: &TimeAxis<'_>,
    lines: &[Line],
    levels: &[Level],
    stacked: bool,
) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let x_max = axis.x_max.max(1e-3);
        let y_max = y_top(lines, levels);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc("time since start")
            .y_desc(y_desc)
            .x_label_formatter(&|x| human_secs(*x))
            .y_label_formatter(&|y| compact(*y))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;
        shade_phases(&mut chart, axis.phases, y_max)?;
        mark_events(&mut chart, axis.events, y_max)?;
        draw_levels(&mut chart, levels, x_max)?;
        draw_lines(&mut chart, lines, stacked)?;
        if !lines.is_empty() || !levels.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .label_font(("sans-serif", 12))
                .draw()?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// The chart being drawn: SVG, seconds against values.
type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Each phase shaded, alternately lighter and darker, idle ones grey, with its name at the top.
fn shade_phases(chart: &mut Chart<'_, '_>, phases: &[PhaseInfo], y_max: f64) -> anyhow::Result<()> {
    for (i, p) in phases.iter().enumerate() {
        let shade = if p.idle {
            RGBColor(120, 120, 120)
        } else {
            RGBColor(70, 130, 180)
        };
        let alpha = if i % 2 == 0 { 0.07 } else { 0.13 };
        chart.draw_series(std::iter::once(Rectangle::new(
            [(p.start_secs, 0.0), (p.end_secs, y_max)],
            shade.mix(alpha).filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            p.name.clone(),
            (p.start_secs, y_max),
            ("sans-serif", 12).into_font().color(&RGBColor(90, 90, 90)),
        )))?;
    }
    Ok(())
}

/// Fault events: a thin line at each, labelled while there are few enough to read.
fn mark_events(chart: &mut Chart<'_, '_>, events: &[(f64, String)], y_max: f64) -> anyhow::Result<()> {
    let marker = RGBColor(200, 30, 30);
    for (i, (t, kind)) in events.iter().enumerate() {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(*t, 0.0), (*t, y_max)],
            marker.mix(0.5),
        )))?;
        if events.len() <= 40 {
            let y = y_max * (0.93 - 0.06 * (i % 3) as f64);
            chart.draw_series(std::iter::once(Text::new(
                kind.clone(),
                (*t, y),
                ("sans-serif", 11).into_font().color(&marker),
            )))?;
        }
    }
    Ok(())
}

/// Each level as a dashed line across the chart, in the legend.
fn draw_levels(chart: &mut Chart<'_, '_>, levels: &[Level], x_max: f64) -> anyhow::Result<()> {
    for level in levels {
        let c = level.color;
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, level.y), (x_max, level.y)],
                8,
                5,
                c.stroke_width(2),
            ))?
            .label(level.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
    }
    Ok(())
}

/// Each line, solid or dashed, over its filled area when `stacked`, in the legend.
fn draw_lines(chart: &mut Chart<'_, '_>, lines: &[Line], stacked: bool) -> anyhow::Result<()> {
    for line in lines {
        let c = line.color;
        let pts = line.points.clone();
        if stacked {
            chart.draw_series(AreaSeries::new(pts.clone(), 0.0, c.mix(0.55)).border_style(c))?;
        }
        let drawn = if line.dashed {
            chart.draw_series(DashedLineSeries::new(pts, 6, 4, c.stroke_width(2)))?
        } else {
            chart.draw_series(LineSeries::new(pts, c.stroke_width(2)))?
        };
        drawn
            .label(line.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
    }
    Ok(())
}

/// Axis numbers: 1200 → 1.2k, 3500000 → 3.5M.
fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
