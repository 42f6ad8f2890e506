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

fn series(rows: &[FdRow], f: impl Fn(&FdRow) -> u64) -> Vec<(f64, f64)> {
    rows.iter().map(|r| (r.t_secs, f(r) as f64)).collect()
}

/// A static chart: (the id of its figure, title, svg, caption).
pub type Figure = (&'static str, String, String, String);

/// Builds every static chart, in page order.
pub fn charts(s: &Summary, tl: &Timeline, marks: &super::limits::Marks) -> anyhow::Result<Vec<Figure>> {
    let mut out = Vec::new();
    let dur = s.planned_secs();
    let phases = &s.phases;
    let events: Vec<(f64, String)> = s.fault_events.iter().map(|e| (e.t_secs, e.kind.clone())).collect();
    let ev = events.as_slice();
    let axis = TimeAxis {
        x_max: dur,
        phases,
        events: ev,
    };

    // 1. Descriptors per process, against the soft limit, with the projection where there is growth.
    let mut lines: Vec<Line> = tl
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
    let (x_max, notes) = (marks.x_max, &marks.notes);
    let svg = line_chart(
        "Open file descriptors",
        "FDs",
        &TimeAxis {
            x_max,
            phases,
            events: ev,
        },
        &lines,
        &levels,
        false,
    )?;
    out.push((
        "chart-fds",
        "File descriptors per process".into(),
        svg,
        notes.join("; "),
    ));

    // 2 and 3. The target's descriptors by kind, and its TCP sockets by state.
    // Not from a source that gives counts only: a chart of zeros would mislead (the note under the table says why).
    let detail = super::limits::target_detail(s);
    let target = tl.processes.iter().find(|((role, _), _)| *role == Role::Target);
    if let (Some(((_, pid), rows)), true) = (target, detail) {
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
            .map(|(i, (name, f))| Line {
                name: name.to_string(),
                color: PALETTE[i],
                points: series(rows, f),
                dashed: false,
            })
            .collect();
        let svg = line_chart(
            &format!("Target (pid {pid}) FDs by kind, stacked"),
            "FDs",
            &axis,
            &stacked,
            &[],
            true,
        )?;
        out.push((
            "chart-kinds",
            "Target descriptors by kind".into(),
            svg,
            "Each band is one kind; the top edge is the total.".into(),
        ));

        let lines: Vec<Line> = TCP_STATES
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
        let svg = line_chart(
            &format!("Target (pid {pid}) TCP sockets by state"),
            "sockets",
            &axis,
            &lines,
            &[],
            false,
        )?;
        out.push((
            "chart-tcp",
            "Target TCP sockets by state".into(),
            svg,
            "From the kernel's TCP tables, joined on the target's socket inodes.".into(),
        ));
    }

    // 4 and 5 chart fdsoak's own calls: a run whose load came only from a client has none.
    if s.workloads.is_empty() {
        return Ok(out);
    }
    // 4. Latency percentiles over time.
    let pick = |f: fn(&(f64, f64, f64, f64, f64)) -> f64| tl.latency.iter().map(|p| (p.0, f(p))).collect::<Vec<_>>();
    let lat = vec![
        Line {
            name: "p50".into(),
            color: PALETTE[2],
            points: pick(|p| p.1),
            dashed: false,
        },
        Line {
            name: "p90".into(),
            color: PALETTE[0],
            points: pick(|p| p.2),
            dashed: false,
        },
        Line {
            name: "p99".into(),
            color: PALETTE[3],
            points: pick(|p| p.3),
            dashed: false,
        },
        Line {
            name: "max".into(),
            color: PALETTE[1],
            points: pick(|p| p.4),
            dashed: false,
        },
    ];
    let svg = line_chart(
        "Latency (from the scheduled start of each call)",
        "ms",
        &axis,
        &lat,
        &[],
        false,
    )?;
    out.push((
        "chart-latency",
        "Latency percentiles".into(),
        svg,
        "All workloads together, worst value in each slice of time.".into(),
    ));

    // 5. Throughput, errors and skipped calls.
    let rate = |f: fn(&(f64, f64, f64, f64)) -> f64| tl.rates.iter().map(|p| (p.0, f(p))).collect::<Vec<_>>();
    let mut tput = vec![Line {
        name: "ok / s".into(),
        color: PALETTE[2],
        points: rate(|p| p.1),
        dashed: false,
    }];
    for (name, color, f) in [
        ("errors / s", PALETTE[1], (|p| p.2) as fn(&(f64, f64, f64, f64)) -> f64),
        ("skipped / s", PALETTE[3], |p| p.3),
    ] {
        let pts = rate(f);
        if pts.iter().any(|p| p.1 > 0.0) {
            tput.push(Line {
                name: name.into(),
                color,
                points: pts,
                dashed: false,
            });
        }
    }
    let svg = line_chart("Throughput and errors", "calls / s", &axis, &tput, &[], false)?;
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
    out.push(("chart-throughput", "Throughput and errors".into(), svg, caption));
    Ok(out)
}
