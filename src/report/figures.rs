//! The static figures of `report.html`, in page order, as the chart table
//! ([`super::chart_table`]) lists them: descriptors per process against the
//! soft limit (with the projection to the limit), the target's descriptors
//! by kind, its TCP sockets by state, latency percentiles and throughput.
//! Each is an SVG drawn by [`super::charts`] that works without scripts;
//! with scripting on, [`super::zoom`] draws a zoomable chart over it from
//! the same table and data.

use super::chart_table::{self as table, ChartSpec};
use super::charts::{line_chart, Level, Line, TimeAxis, PALETTE};
use super::limits::Marks;
use super::model::Summary;
use crate::domain::{Role, TCP_STATES};
use crate::series::SampleRow as FdRow;
use crate::series::Timeline;

fn series(rows: &[FdRow], f: impl Fn(&FdRow) -> u64) -> Vec<(f64, f64)> {
    rows.iter().map(|r| (r.t_secs, f(r) as f64)).collect()
}

/// A static chart, ready for its `<figure>`.
pub struct Figure {
    pub spec: &'static ChartSpec,
    /// The title drawn on the chart.
    pub title: String,
    /// The series drawn, in legend order.
    pub series: Vec<String>,
    pub svg: String,
    pub caption: String,
}

/// What every chart of a run is drawn against.
struct Context<'a> {
    s: &'a Summary,
    tl: &'a Timeline,
    marks: &'a Marks,
    axis: TimeAxis<'a>,
}

/// Builds every static chart the run shows, in page order.
pub fn charts(s: &Summary, tl: &Timeline, marks: &Marks) -> anyhow::Result<Vec<Figure>> {
    let events: Vec<(f64, String)> = s.fault_events.iter().map(|e| (e.t_secs, e.kind.clone())).collect();
    let cx = Context {
        s,
        tl,
        marks,
        axis: TimeAxis {
            x_max: s.planned_secs(),
            phases: &s.phases,
            events: &events,
        },
    };
    let mut out = vec![fds_chart(&cx)?];
    let target = tl.processes.iter().find(|((role, _), _)| *role == Role::Target);
    if let (Some(((_, pid), rows)), true) = (target, table::KINDS.shown_for(s)) {
        out.push(kinds_chart(*pid, rows, &cx)?);
        out.push(tcp_chart(*pid, rows, &cx)?);
    }
    if table::LATENCY.shown_for(s) {
        out.push(latency_chart(&cx)?);
        out.push(throughput_chart(&cx)?);
    }
    Ok(out)
}

/// A solid line of a series the table names.
fn line(named: &table::Named, points: Vec<(f64, f64)>) -> Line {
    Line {
        name: named.name.into(),
        color: PALETTE[named.color % PALETTE.len()],
        points,
        dashed: false,
    }
}

/// What one chart draws: its series, and the fds chart's projections and limits.
#[derive(Default)]
struct Drawing {
    series: Vec<Line>,
    projections: Vec<Line>,
    levels: Vec<Level>,
}

impl Drawing {
    fn of(series: Vec<Line>) -> Drawing {
        Drawing {
            series,
            ..Drawing::default()
        }
    }

    /// Draws it as `spec` says, titled `title`, over `axis`.
    fn draw(self, spec: &'static ChartSpec, title: String, axis: &TimeAxis, caption: String) -> anyhow::Result<Figure> {
        let names = self.series.iter().map(|l| l.name.clone()).collect();
        let mut lines = self.series;
        lines.extend(self.projections);
        let svg = line_chart(&title, spec.y, axis, &lines, &self.levels, spec.stacked)?;
        Ok(Figure {
            spec,
            title,
            series: names,
            svg,
            caption,
        })
    }
}

/// Descriptors per process, against the soft limit, with the projection where there is growth.
fn fds_chart(cx: &Context) -> anyhow::Result<Figure> {
    let series = cx
        .tl
        .processes
        .iter()
        .enumerate()
        .map(|(i, ((role, pid), rows))| Line {
            name: format!("{role} (pid {pid})"),
            color: PALETTE[i % PALETTE.len()],
            points: series(rows, |r| r.fds),
            dashed: false,
        })
        .collect();
    let projections = cx
        .marks
        .projections
        .iter()
        .map(|p| Line {
            name: p.name.clone(),
            color: PALETTE[p.color % PALETTE.len()],
            points: vec![p.from, p.to],
            dashed: true,
        })
        .collect();
    let levels = cx
        .marks
        .levels
        .iter()
        .map(|l| Level {
            name: l.name.clone(),
            y: l.y,
            color: PALETTE[l.color % PALETTE.len()],
        })
        .collect();
    // The projection may run past the run's end: the axis reaches it.
    let axis = TimeAxis {
        x_max: cx.marks.x_max,
        ..cx.axis
    };
    let drawing = Drawing {
        series,
        projections,
        levels,
    };
    drawing.draw(&table::FDS, table::FDS.title.into(), &axis, cx.marks.notes.join("; "))
}

/// The target's descriptors by kind, stacked: each band is drawn over the sum of the ones below it.
fn kinds_chart(pid: i32, rows: &[FdRow], cx: &Context) -> anyhow::Result<Figure> {
    type Pick = fn(&FdRow) -> u64;
    let tops: [Pick; 5] = [
        |r| r.sockets,
        |r| r.sockets + r.pipes,
        |r| r.sockets + r.pipes + r.files,
        |r| r.sockets + r.pipes + r.files + r.anon,
        |r| r.fds,
    ];
    // The largest first, so each smaller band is drawn over it.
    let stacked = table::KINDS
        .fixed()
        .iter()
        .zip(tops)
        .rev()
        .map(|(named, top)| line(named, series(rows, top)))
        .collect();
    let caption = "Each band is one kind; the top edge is the total.".into();
    Drawing::of(stacked).draw(&table::KINDS, table::KINDS.title_for(pid), &cx.axis, caption)
}

/// The target's TCP sockets by state: only the states it ever had.
fn tcp_chart(pid: i32, rows: &[FdRow], cx: &Context) -> anyhow::Result<Figure> {
    let lines = TCP_STATES
        .iter()
        .enumerate()
        .filter(|(_, (st, _, _))| rows.iter().any(|r| r.tcp().get(*st) > 0))
        .map(|(i, (st, name, _))| Line {
            name: name.to_string(),
            color: PALETTE[i % PALETTE.len()],
            points: series(rows, |r| r.tcp().get(*st)),
            dashed: false,
        })
        .collect();
    let caption = "From the kernel's TCP tables, joined on the target's socket inodes.".into();
    Drawing::of(lines).draw(&table::TCP, table::TCP.title_for(pid), &cx.axis, caption)
}

/// Latency percentiles over time, all workloads together.
fn latency_chart(cx: &Context) -> anyhow::Result<Figure> {
    type Pick = fn(&(f64, f64, f64, f64, f64)) -> f64;
    let picks: [Pick; 4] = [|p| p.1, |p| p.2, |p| p.3, |p| p.4];
    let lat = table::LATENCY
        .fixed()
        .iter()
        .zip(picks)
        .map(|(named, f)| line(named, cx.tl.latency.iter().map(|p| (p.0, f(p))).collect()))
        .collect();
    let caption = "All workloads together, worst value in each slice of time.".into();
    Drawing::of(lat).draw(&table::LATENCY, table::LATENCY.title.into(), &cx.axis, caption)
}

/// Throughput, with errors and skipped calls when there were any; the caption counts failures by code.
fn throughput_chart(cx: &Context) -> anyhow::Result<Figure> {
    type Pick = fn(&(f64, f64, f64, f64)) -> f64;
    let picks: [Pick; 3] = [|p| p.1, |p| p.2, |p| p.3];
    let tput = table::THROUGHPUT
        .fixed()
        .iter()
        .zip(picks)
        .filter(|(named, f)| !named.optional || cx.tl.rates.iter().any(|p| f(p) > 0.0))
        .map(|(named, f)| line(named, cx.tl.rates.iter().map(|p| (p.0, f(p))).collect()))
        .collect();
    let codes: Vec<String> =
        cx.s.workloads
            .iter()
            .flat_map(|w| {
                w.status_counts
                    .iter()
                    .filter(|(k, _)| k.as_str() != "OK")
                    .map(move |(k, v)| format!("{}: {k} {v}", w.name))
            })
            .collect();
    let caption = if codes.is_empty() {
        "No failed calls.".to_string()
    } else {
        format!("Failed calls by status code — {}", codes.join(", "))
    };
    Drawing::of(tput).draw(&table::THROUGHPUT, table::THROUGHPUT.title.into(), &cx.axis, caption)
}
