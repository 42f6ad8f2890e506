//! `report.html`: one self-contained page (inline SVG and CSS, no scripts,
//! no network fetches) that opens from disk in any browser.
//!
//! The verdict and findings come first; then descriptors per process against
//! the soft limit (with the projection to the limit where there is growth),
//! the target's descriptors by kind, its TCP sockets by state, latency
//! percentiles and throughput over time. Phases are shaded on every chart.

use super::charts::{line_chart, Level, Line, TimeAxis, PALETTE};
use super::model::Summary;
use super::timeline::{self, Timeline};
use super::zoom;
use super::Exporter;
use crate::analysis::findings::human_secs;
use crate::rows::SampleRow as FdRow;
use crate::vocab::{Role, TCP_STATES};
use std::fmt::Write;

pub struct Html;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222}\
h1{font-size:22px;margin:0 0 4px}.meta{color:#666;font-size:13px;margin-bottom:16px}\
.verdict{display:inline-block;padding:4px 12px;border-radius:4px;color:#fff;font-weight:600;margin-right:8px}\
.pass{background:#2c8a3c}.fail{background:#c62828}.error{background:#b26a00}.interrupted{background:#555}\
ul.findings{background:#fff4f4;border-left:4px solid #c62828;padding:10px 10px 10px 28px;margin:12px 0}\
ul.findings.none{background:#f2faf3;border-color:#2c8a3c}\
table{border-collapse:collapse;font-size:13px;margin:8px 0 20px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}\
th{background:#f5f5f5}td:first-child,th:first-child{text-align:left}figure{margin:0 0 18px}\
figcaption{font-size:12px;color:#666}h2{font-size:17px;margin-top:26px}";

impl Exporter for Html {
    fn file_name(&self) -> &'static str {
        "report.html"
    }

    fn render(&self, s: &Summary, dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
        let tl = timeline::read(dir, planned_secs(s), interval_secs(s))?;
        self.render_with(s, dir, &tl)
    }

    fn render_with(&self, s: &Summary, _dir: &std::path::Path, tl: &Timeline) -> anyhow::Result<Vec<u8>> {
        let mut o = String::new();
        writeln!(o, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">")?;
        writeln!(
            o,
            "<title>fdsoak · {} · {}</title><style>{CSS}{}</style></head><body>",
            esc(&s.scenario.name),
            s.verdict.as_str(),
            zoom::css()
        )?;
        let class = s.verdict.as_str();
        writeln!(
            o,
            "<h1><span class=\"verdict {class}\">{}</span>fdsoak · {}</h1>",
            class.to_uppercase(),
            esc(&s.scenario.name)
        )?;
        writeln!(
            o,
            "<div class=\"meta\">{} · target {} · started {} · ran {} · fdsoak {}</div>",
            esc(&s.scenario.description),
            esc(&s.target.description),
            esc(&s.started_at),
            human_secs(s.duration_secs),
            esc(&s.tool.version)
        )?;
        if let Some(note) = s.progress_note() {
            writeln!(o, "<p class=\"meta\"><strong>{}</strong></p>", esc(&note))?;
        }
        if s.findings.is_empty() {
            writeln!(
                o,
                "<ul class=\"findings none\"><li>No findings: every gate passed.</li></ul>"
            )?;
        } else {
            writeln!(o, "<ul class=\"findings\">")?;
            for f in &s.findings {
                writeln!(o, "<li>{}</li>", esc(&f.message))?;
            }
            writeln!(o, "</ul>")?;
        }
        tables(&mut o, s)?;
        let marks = super::limits::marks(s, tl, planned_secs(s));
        for (i, (id, title, svg, caption)) in charts(s, tl, &marks)?.into_iter().enumerate() {
            writeln!(
                o,
                "<h2>{}</h2><figure id=\"{id}\">{svg}<p class=\"zoomhint\">Drag across the chart to zoom in, double-click to zoom out; hover for values.</p><figcaption>{}</figcaption></figure>",
                esc(&title),
                esc(&caption)
            )?;
            if i == 0 {
                group_table(&mut o, s)?;
            }
        }
        writeln!(o, "<p class=\"meta\">With scripting on, the charts are zoomable and keep each series' lowest and highest value in every {}-second slice of time (every sample, for runs up to {}); without it, they show at most {} points per series (the sample with the most descriptors in each slice). samples.csv and throughput.csv hold every sample.</p>", tl.traces.fine.width, human_secs(crate::rows::FINE_BUCKETS as f64 * interval_secs(s)), timeline::BUCKETS)?;
        o.push_str(&zoom::scripts(&zoom::report_page(s, tl, &marks))?);
        writeln!(o, "</body></html>")?;
        Ok(o.into_bytes())
    }
}

/// Under the descriptor chart: the groups that grew, named.
fn group_table(o: &mut String, s: &Summary) -> anyhow::Result<()> {
    let rows = super::table::group_rows(&s.processes);
    if rows.is_empty() {
        return Ok(());
    }
    let th: Vec<String> = super::table::GROUP_HEADERS
        .iter()
        .map(|h| format!("<th>{h}</th>"))
        .collect();
    writeln!(
        o,
        "<h3>What grew, end of run minus end of baseline</h3><table class=\"groups\"><tr>{}</tr>",
        th.concat()
    )?;
    for row in rows {
        let td: Vec<String> = row.iter().map(|c| format!("<td>{}</td>", esc(c))).collect();
        writeln!(o, "<tr>{}</tr>", td.concat())?;
    }
    writeln!(o, "</table>")?;
    Ok(())
}

fn tables(o: &mut String, s: &Summary) -> anyhow::Result<()> {
    if !s.processes.is_empty() {
        let headers: Vec<String> = super::table::PROCESS_HEADERS
            .iter()
            .map(|h| format!("<th>{h}</th>"))
            .collect();
        writeln!(o, "<table><tr>{}</tr>", headers.concat())?;
        for p in &s.processes {
            let cells: Vec<String> = super::table::process_cells(p)
                .iter()
                .map(|c| format!("<td>{}</td>", esc(c)))
                .collect();
            writeln!(o, "<tr>{}</tr>", cells.concat())?;
        }
        writeln!(o, "</table>")?;
        for note in super::table::source_notes(s) {
            writeln!(o, "<p class=\"meta\">{}</p>", esc(&note))?;
        }
    }
    if !s.workloads.is_empty() {
        writeln!(o, "<table><tr><th>phase / workload</th><th>ok</th><th>errors</th><th>skipped</th><th>rate/s</th><th>p50</th><th>p99</th><th>p99.9</th><th>max</th><th>status codes</th></tr>")?;
        for w in &s.workloads {
            let ms = |us: u64| format!("{:.2} ms", us as f64 / 1000.0);
            let codes: Vec<String> = w.status_counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(
                o,
                "<tr><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&w.phase),
                esc(&w.name),
                w.ok,
                w.errors,
                w.skipped,
                w.achieved_rate,
                ms(w.latency.p50_us),
                ms(w.latency.p99_us),
                ms(w.latency.p999_us),
                ms(w.latency.max_us),
                esc(&codes.join(", "))
            )?;
        }
        writeln!(o, "</table>")?;
    }
    Ok(())
}

/// The span the charts cover: the run, or for a checkpoint the whole planned run.
pub fn planned_secs(s: &Summary) -> f64 {
    s.checkpoint
        .as_ref()
        .map_or(s.duration_secs, |c| c.planned_secs.max(s.duration_secs))
}

/// The sampling interval, which no chart bucket is narrower than.
pub fn interval_secs(s: &Summary) -> f64 {
    s.scenario.resolved.sampler.interval.as_secs_f64()
}

fn series(rows: &[FdRow], f: impl Fn(&FdRow) -> u64) -> Vec<(f64, f64)> {
    rows.iter().map(|r| (r.t_secs, f(r) as f64)).collect()
}

/// A static chart: (the id of its figure, title, svg, caption).
type Figure = (&'static str, String, String, String);

/// Builds every static chart, in page order.
fn charts(s: &Summary, tl: &Timeline, marks: &super::limits::Marks) -> anyhow::Result<Vec<Figure>> {
    let mut out = Vec::new();
    let dur = planned_secs(s);
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
