//! The static figures of `report.html`, in page order: descriptors per
//! process against the soft limit (with the projection to the limit), the
//! target's descriptors by kind, its TCP sockets by state, latency
//! percentiles and throughput. Each is an SVG drawn by [`super::charts`]
//! that works without scripts; with scripting on, [`super::zoom`] draws a
//! zoomable chart over it from the same data.

use super::charts::{line_chart, Level, Line, TimeAxis, PALETTE};
use super::model::Summary;
use crate::rows::SampleRow as FdRow;
use crate::rows::Timeline;
use crate::vocab::{Role, TCP_STATES};
use plotters::style::RGBColor;

fn series(rows: &[FdRow], f: impl Fn(&FdRow) -> u64) -> Vec<(f64, f64)> {
    rows.iter().map(|r| (r.t_secs, f(r) as f64)).collect()
}

/// A static chart: (the id of its figure, title, svg, caption).
pub type Figure = (&'static str, String, String, String);

/// Builds every static chart, in page order.
pub fn charts(s: &Summary, tl: &Timeline, marks: &super::limits::Marks) -> anyhow::Result<Vec<Figure>> {
    let events: Vec<(f64, String)> = s.fault_events.iter().map(|e| (e.t_secs, e.kind.clone())).collect();
    let axis = TimeAxis {
        x_max: s.planned_secs(),
        phases: &s.phases,
        events: &events,
    };
    let mut out = vec![fds_chart(tl, marks, &axis)?];
    // Not from a source that gives counts only: a chart of zeros would mislead (the note under the table says why).
    let target = tl.processes.iter().find(|((role, _), _)| *role == Role::Target);
    if let (Some(((_, pid), rows)), true) = (target, super::limits::target_detail(s)) {
        out.push(kinds_chart(*pid, rows, &axis)?);
        out.push(tcp_chart(*pid, rows, &axis)?);
    }
    // Latency and throughput chart fdsoak's own calls: a run whose load came only from a client has none.
    if !s.workloads.is_empty() {
        out.push(latency_chart(tl, &axis)?);
        out.push(throughput_chart(s, tl, &axis)?);
    }
    Ok(out)
}

/// A solid line.
fn line(name: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Line {
    Line {
        name: name.into(),
        color,
        points,
        dashed: false,
    }
}

/// Descriptors per process, against the soft limit, with the projection where there is growth.
fn fds_chart(tl: &Timeline, marks: &super::limits::Marks, axis: &TimeAxis) -> anyhow::Result<Figure> {
    let mut lines: Vec<Line> = tl
        .processes
        .iter()
        .enumerate()
        .map(|(i, ((role, pid), rows))| {
            line(
                format!("{role} (pid {pid})"),
                PALETTE[i % PALETTE.len()],
                series(rows, |r| r.fds),
            )
        })
        .collect();
    lines.extend(marks.projections.iter().map(|p| Line {
        name: p.name.clone(),
        color: PALETTE[p.color % PALETTE.len()],
        points: vec![p.from, p.to],
        dashed: true,
    }));
    let levels: Vec<Level> = marks
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
        x_max: marks.x_max,
        ..*axis
    };
    let svg = line_chart("Open file descriptors", "FDs", &axis, &lines, &levels, false)?;
    Ok((
        "chart-fds",
        "File descriptors per process".into(),
        svg,
        marks.notes.join("; "),
    ))
}

/// The target's descriptors by kind, stacked.
fn kinds_chart(pid: i32, rows: &[FdRow], axis: &TimeAxis) -> anyhow::Result<Figure> {
    type Pick = fn(&FdRow) -> u64;
    let kinds: [(&str, Pick); 5] = [
        ("sockets", |r| r.sockets),
        ("pipes", |r| r.sockets + r.pipes),
        ("files", |r| r.sockets + r.pipes + r.files),
        ("anon inodes", |r| r.sockets + r.pipes + r.files + r.anon),
        ("other", |r| r.fds),
    ];
    let stacked: Vec<Line> = kinds
        .iter()
        .enumerate()
        .rev()
        .map(|(i, (name, f))| line(*name, PALETTE[i], series(rows, f)))
        .collect();
    let title = format!("Target (pid {pid}) FDs by kind, stacked");
    let svg = line_chart(&title, "FDs", axis, &stacked, &[], true)?;
    Ok((
        "chart-kinds",
        "Target descriptors by kind".into(),
        svg,
        "Each band is one kind; the top edge is the total.".into(),
    ))
}

/// The target's TCP sockets by state: only the states it ever had.
fn tcp_chart(pid: i32, rows: &[FdRow], axis: &TimeAxis) -> anyhow::Result<Figure> {
    let lines: Vec<Line> = TCP_STATES
        .iter()
        .enumerate()
        .filter(|(_, (st, _, _))| rows.iter().any(|r| r.tcp().get(*st) > 0))
        .map(|(i, (st, name, _))| line(*name, PALETTE[i % PALETTE.len()], series(rows, |r| r.tcp().get(*st))))
        .collect();
    let title = format!("Target (pid {pid}) TCP sockets by state");
    let svg = line_chart(&title, "sockets", axis, &lines, &[], false)?;
    Ok((
        "chart-tcp",
        "Target TCP sockets by state".into(),
        svg,
        "From the kernel's TCP tables, joined on the target's socket inodes.".into(),
    ))
}

/// Latency percentiles over time, all workloads together.
fn latency_chart(tl: &Timeline, axis: &TimeAxis) -> anyhow::Result<Figure> {
    type Pick = fn(&(f64, f64, f64, f64, f64)) -> f64;
    let picks: [(&str, RGBColor, Pick); 4] = [
        ("p50", PALETTE[2], |p| p.1),
        ("p90", PALETTE[0], |p| p.2),
        ("p99", PALETTE[3], |p| p.3),
        ("max", PALETTE[1], |p| p.4),
    ];
    let lat: Vec<Line> = picks
        .iter()
        .map(|(name, color, f)| line(*name, *color, tl.latency.iter().map(|p| (p.0, f(p))).collect()))
        .collect();
    let title = "Latency (from the scheduled start of each call)";
    let svg = line_chart(title, "ms", axis, &lat, &[], false)?;
    Ok((
        "chart-latency",
        "Latency percentiles".into(),
        svg,
        "All workloads together, worst value in each slice of time.".into(),
    ))
}

/// Throughput, with errors and skipped calls when there were any; the caption counts failures by code.
fn throughput_chart(s: &Summary, tl: &Timeline, axis: &TimeAxis) -> anyhow::Result<Figure> {
    type Pick = fn(&(f64, f64, f64, f64)) -> f64;
    let rate = |f: Pick| tl.rates.iter().map(|p| (p.0, f(p))).collect::<Vec<_>>();
    let mut tput = vec![line("ok / s", PALETTE[2], rate(|p| p.1))];
    let optional: [(&str, RGBColor, Pick); 2] = [
        ("errors / s", PALETTE[1], |p| p.2),
        ("skipped / s", PALETTE[3], |p| p.3),
    ];
    for (name, color, f) in optional {
        let pts = rate(f);
        if pts.iter().any(|p| p.1 > 0.0) {
            tput.push(line(name, color, pts));
        }
    }
    let svg = line_chart("Throughput and errors", "calls / s", axis, &tput, &[], false)?;
    let codes: Vec<String> = s
        .workloads
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
    Ok(("chart-throughput", "Throughput and errors".into(), svg, caption))
}
