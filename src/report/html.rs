//! `report.html`: one self-contained page (inline SVG, CSS and scripts, no
//! network fetches) that opens from disk in any browser. With scripting on,
//! the charts are zoomable ([`zoom`]); without it, the static SVG charts stay.
//!
//! The verdict and findings come first, then the tables, then the figures
//! ([`super::figures`]): descriptors per process against the soft limit, the
//! target's descriptors by kind and TCP states, latency and throughput.

use super::model::Summary;
use super::timeline;
use super::zoom;
use super::Exporter;
use crate::analysis::findings::human_secs;
use crate::series::Timeline;
use std::fmt::Write;

pub struct Html;

/// `s` as HTML text or an attribute value: the one escape every page uses.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page's own style; the zoomable charts add [`zoom::css`].
const CSS: &str = include_str!("assets/report.css");

impl Exporter for Html {
    fn file_name(&self) -> &'static str {
        "report.html"
    }

    fn render(&self, s: &Summary, dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
        let tl = timeline::read(dir, s.planned_secs(), s.interval_secs())?;
        self.render_with(s, dir, &tl)
    }

    fn render_with(&self, s: &Summary, _dir: &std::path::Path, tl: &Timeline) -> anyhow::Result<Vec<u8>> {
        let mut o = String::new();
        writeln!(o, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">")?;
        writeln!(
            o,
            "<title>fdsoak · {} · {}</title><style>{CSS}{}</style></head><body>",
            escape(&s.scenario.name),
            s.verdict.as_str(),
            zoom::css()
        )?;
        let class = s.verdict.as_str();
        writeln!(
            o,
            "<h1><span class=\"verdict {class}\">{}</span>fdsoak · {}</h1>",
            class.to_uppercase(),
            escape(&s.scenario.name)
        )?;
        writeln!(
            o,
            "<div class=\"meta\">{} · target {} · started {} · ran {} · fdsoak {}</div>",
            escape(&s.scenario.description),
            escape(&s.target.description),
            escape(&s.started_at),
            human_secs(s.duration_secs),
            escape(&s.tool.version)
        )?;
        if let Some(note) = s.progress_note() {
            writeln!(o, "<p class=\"meta\"><strong>{}</strong></p>", escape(&note))?;
        }
        for note in s.origin.iter().flat_map(|o| &o.notes) {
            writeln!(o, "<p class=\"meta\">Origins: {}</p>", escape(note))?;
        }
        if s.failures().next().is_none() {
            writeln!(
                o,
                "<ul class=\"findings none\"><li>No findings: every gate passed.</li></ul>"
            )?;
        }
        if !s.findings.is_empty() {
            writeln!(o, "<ul class=\"findings\">")?;
            let (leaks, others) = super::leaks::leaks(s);
            for leak in &leaks {
                writeln!(o, "<li class=\"leak\">{}<ul class=\"gates\">", escape(&leak.headline()))?;
                for g in &leak.gates {
                    writeln!(o, "<li><code>{}</code> failed: {}</li>", g.name(), escape(g.words))?;
                }
                writeln!(o, "</ul></li>")?;
            }
            for f in others {
                let class = if s.is_note(f) { " class=\"note\"" } else { "" };
                writeln!(o, "<li{class}>{}</li>", escape(&f.message))?;
            }
            writeln!(o, "</ul>")?;
        }
        said(&mut o, s)?;
        tables(&mut o, s)?;
        let marks = super::limits::marks(s, tl, s.planned_secs());
        for (i, f) in super::figures::charts(s, tl, &marks)?.into_iter().enumerate() {
            writeln!(
                o,
                "<h2>{}</h2><figure id=\"{}\">{}<p class=\"zoomhint\">Drag across the chart to zoom in, double-click to zoom out; hover for values.</p><figcaption>{}</figcaption></figure>",
                escape(f.spec.heading),
                f.spec.id,
                f.svg,
                escape(&f.caption)
            )?;
            if i == 0 {
                group_table(&mut o, s)?;
            }
        }
        if s.workloads.is_empty() {
            let who = if s.client.is_some() {
                "The client under test brought the load"
            } else {
                "No workload ran"
            };
            writeln!(o, "<p class=\"meta\" id=\"no-calls\">{who}: fdsoak made no calls of its own, so there is no latency or throughput to chart. The descriptor charts above are the run.</p>")?;
        }
        writeln!(o, "<p class=\"meta\">With scripting on, the charts are zoomable and keep each series' lowest and highest value in every {}-second slice of time (every sample, for runs up to {}); without it, they show at most {} points per series (the sample with the most descriptors in each slice). samples.csv and throughput.csv hold every sample.</p>", tl.traces.fine.width, human_secs(crate::series::FINE_BUCKETS as f64 * s.interval_secs()), crate::series::BUCKETS)?;
        o.push_str(&zoom::scripts(&super::zoom_charts::report_page(s, tl, &marks))?);
        writeln!(o, "</body></html>")?;
        Ok(o.into_bytes())
    }
}

/// What the processes said: their complaints of exhaustion, and every last line the report kept.
fn said(o: &mut String, s: &Summary) -> std::fmt::Result {
    for t in super::said::told(s) {
        if let Some(c) = &t.complaint {
            writeln!(o, "<p class=\"meta\"><strong>{}.</strong></p>", escape(c))?;
        }
        if !t.last_lines.is_empty() {
            let heading = escape(&t.heading()).replace(t.log, &format!("<a href=\"{0}\">{0}</a>", escape(t.log)));
            let lines: Vec<String> = t.last_lines.iter().map(|l| escape(l)).collect();
            writeln!(
                o,
                "<h2 class=\"said\">{heading}</h2><pre class=\"said\">{}</pre>",
                lines.join("\n")
            )?;
        }
    }
    Ok(())
}

/// Under the descriptor chart: the groups that grew, named.
fn group_table(o: &mut String, s: &Summary) -> anyhow::Result<()> {
    let rows = super::table::group_rows(&s.processes);
    if rows.is_empty() {
        return Ok(());
    }
    let origins = super::table::group_origins(&s.processes);
    let mut th: Vec<String> = super::table::GROUP_HEADERS
        .iter()
        .map(|h| format!("<th>{h}</th>"))
        .collect();
    if origins.is_some() {
        th.push("<th>opened by</th>".into());
    }
    writeln!(
        o,
        "<h3>What grew, end of run minus end of baseline</h3><table class=\"groups\"><tr>{}</tr>",
        th.concat()
    )?;
    for (i, row) in rows.iter().enumerate() {
        let mut td: Vec<String> = row.iter().map(|c| format!("<td>{}</td>", escape(c))).collect();
        if let Some(all) = &origins {
            td.push(format!(
                "<td class=\"origins\">{}</td>",
                origin_cell(all.get(i).copied().unwrap_or_default())
            ));
        }
        writeln!(o, "<tr>{}</tr>", td.concat())?;
    }
    writeln!(o, "</table>")?;
    Ok(())
}

/// A group's origins: the top one in a sentence, unfolding to every stack with who
/// recorded it and its frames (the program's own in bold, a library's plain).
fn origin_cell(origins: &[crate::analysis::groups::Origin]) -> String {
    let Some(top) = origins.first() else {
        return String::new();
    };
    let mut out = format!("<details><summary>{}</summary>", escape(&top.sentence()));
    for origin in origins {
        let by = origin.stack.source.label();
        out.push_str(&format!("<p>{} ({by}):</p><ol>", escape(&origin.sentence())));
        for f in &origin.stack.frames {
            let text = escape(&f.to_string());
            if f.library {
                out.push_str(&format!("<li class=\"lib\">{text}</li>"));
            } else {
                out.push_str(&format!("<li><strong>{text}</strong></li>"));
            }
        }
        out.push_str("</ol>");
    }
    out.push_str("</details>");
    out
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
                .map(|c| format!("<td>{}</td>", escape(c)))
                .collect();
            writeln!(o, "<tr>{}</tr>", cells.concat())?;
        }
        writeln!(o, "</table>")?;
        for note in super::table::source_notes(s) {
            writeln!(o, "<p class=\"meta\">{}</p>", escape(&note))?;
        }
    }
    if !s.workloads.is_empty() {
        writeln!(o, "<table><tr><th>phase / workload</th><th>ok</th><th>errors</th><th>skipped</th><th>rate/s</th><th>p50</th><th>p99</th><th>p99.9</th><th>max</th><th>status codes</th></tr>")?;
        for w in &s.workloads {
            let ms = |us: u64| format!("{:.2} ms", us as f64 / 1000.0);
            let codes: Vec<String> = w
                .status_counts
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .chain(
                    w.status_causes
                        .iter()
                        .map(|c| format!("{} attempts {}: {}", c.attempts, c.code, c.cause)),
                )
                .collect();
            writeln!(
                o,
                "<tr><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&w.phase),
                escape(&w.name),
                w.ok,
                w.errors,
                w.skipped,
                w.achieved_rate,
                ms(w.latency.p50_us),
                ms(w.latency.p99_us),
                ms(w.latency.p999_us),
                ms(w.latency.max_us),
                escape(&codes.join(", "))
            )?;
        }
        writeln!(o, "</table>")?;
    }
    Ok(())
}
