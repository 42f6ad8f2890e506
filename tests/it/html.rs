//! The HTML report: self-contained, findings first, every chart drawn from
//! real data; rendered in a real headless Chromium, where the charts zoom
//! under a real mouse drag, nothing is fetched, and the static charts stand
//! in with scripting off; a day at 1 Hz fits in under 5 MB and keeps every
//! sample of any minute.

use crate::common::*;
use fdsoak::report::Exporter;
use std::process::Command;

fn leaky_html() -> String {
    let dir = repo("tests/fixtures/reports/leaky");
    let s = fdsoak::report::json::read(&dir.join("summary.json")).unwrap();
    String::from_utf8(fdsoak::report::html::Html.render(&s, &dir).unwrap()).unwrap()
}

#[test]
fn the_page_is_self_contained_and_puts_the_findings_first() {
    let html = leaky_html();
    for needle in [
        "src=",
        "href=\"http",
        "url(",
        "@import",
        "fetch(",
        "XMLHttpRequest",
        "import(",
    ] {
        assert!(!html.contains(needle), "no fetches: found {needle}");
    }
    assert!(html.contains("var uPlot=function"), "uPlot is inlined");
    assert!(html.contains("Copyright (c) 2022 Leon Sorokin"), "with its licence");
    let finding = html.find("169 in CLOSE_WAIT").expect("the leak finding is on the page");
    let first_chart = html.find("<svg").unwrap();
    assert!(finding < first_chart, "findings come before the charts");
    assert!(html.find("FAIL").unwrap() < finding);
}

#[test]
fn every_chart_has_real_data() {
    let html = leaky_html();
    let charts: Vec<&str> = html.split("<svg").skip(1).collect();
    assert_eq!(charts.len(), 5, "descriptors, kinds, TCP states, latency, throughput");
    for (i, svg) in charts.iter().enumerate() {
        // The longest polyline in each chart is a data series, not an axis or a legend mark.
        let longest = svg
            .split("<polyline")
            .skip(1)
            .map(|p| {
                p.split("points=\"")
                    .nth(1)
                    .map_or(0, |pts| pts.split('"').next().unwrap().split(' ').count())
            })
            .max()
            .unwrap_or(0);
        assert!(longest >= 20, "chart {i} has a series of {longest} points");
    }
    for title in [
        "Open file descriptors",
        "FDs by kind",
        "TCP sockets by state",
        "Latency",
        "Throughput",
    ] {
        assert!(html.contains(title), "{title}");
    }
    assert!(html.contains("CLOSE_WAIT"), "the TCP state chart names CLOSE_WAIT");
    assert!(
        html.contains("projection: limit in"),
        "growth is projected toward the limit"
    );
    for phase in ["baseline", "load", "drain"] {
        assert!(
            charts[0].contains(&format!(">\n{phase}\n<")),
            "phase {phase} is marked on the time axis"
        );
    }
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn headless_chromium_renders_the_report() {
    let Some(browser) = chromium() else {
        tool_missing(
            "chromium",
            ".ci/run installs it; scripts/screenshot-report.sh documents it",
        );
        return;
    };
    let out = TempDir::new("shot");
    let html = out.write("report.html", &leaky_html());
    let png = out.path().join("report.png");
    let profile = TempDir::new("chromium-profile");
    let o = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--window-size=1100,2400")
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    // A blank 1100x2400 page compresses to a few kilobytes; charts and text do not.
    assert!(
        bytes.len() > 60_000,
        "screenshot is only {} bytes: the page looks blank",
        bytes.len()
    );
}

/// uPlot in the page is the registry package's file, unchanged: compared with
/// the copy npm installs beside the browser test (CI installs it).
#[test]
fn the_bundled_chart_library_is_the_registry_package_unchanged() {
    let installed = repo("tests/browser/node_modules/uplot");
    if !installed.exists() {
        tool_missing(
            "tests/browser/node_modules",
            ".ci/run runs npm ci --prefix tests/browser",
        );
        return;
    }
    for (ours, theirs) in [
        ("uPlot.iife.min.js", "dist/uPlot.iife.min.js"),
        ("uPlot.min.css", "dist/uPlot.min.css"),
        ("LICENSE", "LICENSE"),
    ] {
        let a = std::fs::read(repo(&format!("src/report/vendor/uplot/{ours}"))).unwrap();
        let b = std::fs::read(installed.join(theirs)).unwrap();
        assert!(
            a == b,
            "src/report/vendor/uplot/{ours} differs from the npm package's {theirs}"
        );
    }
    let pkg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(installed.join("package.json")).unwrap()).unwrap();
    assert_eq!(pkg["version"], fdsoak::report::zoom::UPLOT_VERSION);
}

/// Runs tests/browser/zoom.mjs (playwright-core driving /usr/bin/chromium) on `page`.
pub(crate) fn drive(page: &std::path::Path, no_script: bool) -> Option<serde_json::Value> {
    let script = repo("tests/browser/zoom.mjs");
    if chromium().is_none() || !repo("tests/browser/node_modules/playwright-core").exists() {
        tool_missing(
            "chromium or playwright-core",
            ".ci/run installs chromium and runs npm ci in tests/browser",
        );
        return None;
    }
    let mut cmd = Command::new("node");
    cmd.arg(&script).arg(page);
    if no_script {
        cmd.arg("--no-script");
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out.lines().last().unwrap_or_default();
    Some(serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {out}")))
}

#[test]
fn in_a_real_browser_the_charts_draw_zoom_and_fetch_nothing() {
    let out = TempDir::new("zoom");
    let page = out.write("report.html", &leaky_html());
    let Some(r) = drive(&page, false) else { return };
    assert_eq!(r["errors"], serde_json::json!([]), "{r}");
    assert_eq!(r["requests"], serde_json::json!([]), "the page fetched something: {r}");
    let charts = r["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 5, "{r}");
    for c in charts {
        assert!(c["nonzero"].as_bool().unwrap(), "chart without data: {c}");
        assert!(
            c["points"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n.as_u64().unwrap() >= 20),
            "{c}"
        );
    }
    assert_eq!(charts[0]["title"], "Open file descriptors");
    let before = (charts[0]["x"][0].as_f64().unwrap(), charts[0]["x"][1].as_f64().unwrap());
    let after = (
        r["zoomed"]["x"][0].as_f64().unwrap(),
        r["zoomed"]["x"][1].as_f64().unwrap(),
    );
    assert!(
        after.0 > before.0 && after.1 < before.1 && after.1 - after.0 < (before.1 - before.0) * 0.3,
        "the drag narrowed the range: {before:?} -> {after:?}"
    );
    assert!(r["zoomed"]["points_in_view"].as_u64().unwrap() >= 10, "{r}");
    let hover = r["hover"].as_array().unwrap();
    assert!(
        hover.iter().skip(1).any(|v| v.as_str().unwrap().parse::<f64>().is_ok()),
        "hovering shows values: {hover:?}"
    );
    assert_eq!(r["reset"][0].as_f64(), Some(before.0), "double-click zooms back out");
    assert_eq!(
        r["svgs_visible_with_script"], 0,
        "the live charts replace the static ones"
    );
}

#[test]
fn with_scripting_off_the_static_charts_stand_in() {
    let out = TempDir::new("noscript");
    let page = out.write("report.html", &leaky_html());
    let Some(r) = drive(&page, true) else { return };
    assert_eq!(r["requests"], serde_json::json!([]), "{r}");
    assert_eq!(r["svgs_visible"], 5, "{r}");
}

/// A day of samples at 1 Hz, with a one-sample spike, through the same
/// downsampler a run feeds.
#[test]
fn a_day_at_one_hertz_fits_in_5_mb_and_keeps_every_sample_of_a_minute() {
    use fdsoak::domain::{Reading, Role};
    use fdsoak::series::{Downsampler, SampleRow, ThroughputRow};
    const DAY: u64 = 86_400;
    const SPIKE: u64 = 49_037;
    let fds = |t: u64| if t == SPIKE { 5_000 } else { 40 + (t * 7 % 13) + t / 600 };
    let mut d = Downsampler::new(DAY as f64, 1.0);
    for t in 0..DAY {
        for (role, pid) in [(Role::Target, 100), (Role::Driver, 101)] {
            let mut r = Reading::default();
            r.fds.total = if role == Role::Target { fds(t) } else { 16 };
            r.fds.socket = r.fds.total.saturating_sub(8);
            r.nofile_soft = Some(65_536);
            d.sample(SampleRow::new(t as f64 + 0.003, 0, "soak", role, pid, &r));
        }
        d.throughput(&ThroughputRow {
            t_secs: t as f64 + 0.003,
            ok: t * 800,
            p50_us: Some(900 + t % 97),
            p90_us: Some(1_800 + t % 89),
            p99_us: Some(4_000 + t % 83),
            max_us: Some(9_000 + t % 991),
            ..ThroughputRow::default()
        });
    }
    let dir = repo("tests/fixtures/reports/leaky");
    let mut s = fdsoak::report::json::read(&dir.join("summary.json")).unwrap();
    s.duration_secs = DAY as f64;
    let html = fdsoak::report::html::Html.render_with(&s, &dir, &d.timeline()).unwrap();
    eprintln!("report.html for 24 h at 1 Hz: {} bytes", html.len());
    assert!(html.len() < 5_000_000, "{} bytes", html.len());

    let html = String::from_utf8(html).unwrap();
    let page = chart_data(&html);
    let chart = &page["charts"][0];
    assert_eq!(chart["id"], "chart-fds");
    let undelta = |a: &serde_json::Value| -> Vec<Option<f64>> {
        let mut sum = 0i64;
        a.as_array()
            .unwrap()
            .iter()
            .map(|d| {
                d.as_i64().map(|d| {
                    sum += d;
                    sum as f64
                })
            })
            .collect()
    };
    let xs: Vec<f64> = undelta(&chart["x"])
        .into_iter()
        .map(|x| x.unwrap() * chart["x_scale"].as_f64().unwrap())
        .collect();
    let target = undelta(&chart["series"][0]["v"]);
    assert_eq!(chart["series"][0]["label"], "target (pid 100)");
    // The minute holding the spike, zoomed into: every sample's value, in order.
    let minute = (SPIKE / 60 * 60)..(SPIKE / 60 * 60 + 60);
    let shown: Vec<f64> = xs
        .iter()
        .zip(&target)
        .filter(|(x, _)| **x >= minute.start as f64 && **x < minute.end as f64)
        .map(|(_, v)| v.unwrap())
        .collect();
    let actual: Vec<f64> = minute.clone().map(|t| fds(t) as f64).collect();
    assert_eq!(shown, actual, "one minute of a day, zoomed into, shows every sample");
    assert!(shown.contains(&5_000.0), "the one-sample spike survives");

    // And a real browser draws a page that size and zooms it.
    let out = TempDir::new("day");
    let page = out.write("report.html", &html);
    let Some(r) = drive(&page, false) else { return };
    assert_eq!(r["errors"], serde_json::json!([]), "{r}");
    assert_eq!(r["requests"], serde_json::json!([]), "{r}");
    assert!(r["charts"][0]["points"][0].as_u64().unwrap() >= 86_000, "{r}");
    assert!(r["zoomed"]["x"][1].as_f64().unwrap() < DAY as f64 * 0.5, "{r}");
}

/// The zoomable charts' data block of a report or trend page, parsed.
pub(crate) fn chart_data(html: &str) -> serde_json::Value {
    let data = html
        .split("id=\"fdsoak-data\">")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .unwrap_or_else(|| panic!("no chart data in the page"));
    serde_json::from_str(data).unwrap_or_else(|e| panic!("chart data: {e}"))
}

/// The static figures and the zoomable charts come from one chart table:
/// the same ids, titles and series, in the same order, for a run with every
/// chart (a target read by kind and state, calls of fdsoak's own, errors and
/// skipped calls included) and for the fixture's run (no errors, so no
/// optional series in either).
#[test]
fn both_renderers_draw_the_same_charts_from_the_one_table() {
    use fdsoak::report::{chart_table, figures, limits, timeline, zoom_charts};
    use fdsoak::series::{Downsampler, ThroughputRow};
    let dir = repo("tests/fixtures/reports/leaky");
    let s = fdsoak::report::json::read(&dir.join("summary.json")).unwrap();
    let fixture = timeline::read(&dir, s.planned_secs(), s.interval_secs()).unwrap();
    let mut failing = Downsampler::new(s.planned_secs(), s.interval_secs());
    for row in fdsoak::series::read_rows::<fdsoak::series::SampleRow>(&dir.join("samples.csv")).unwrap() {
        failing.sample(row.unwrap());
    }
    for t in 1..=20u64 {
        failing.throughput(&ThroughputRow {
            t_secs: t as f64 * s.planned_secs() / 21.0,
            ok: t * 50,
            errors: t * 3,
            skipped: t,
            p50_us: Some(900),
            p90_us: Some(1_800),
            p99_us: Some(4_000),
            max_us: Some(9_000),
            ..ThroughputRow::default()
        });
    }
    for (name, tl, throughput) in [
        ("the fixture", fixture, vec!["ok / s"]),
        (
            "a run with failed calls",
            failing.timeline(),
            vec!["ok / s", "errors / s", "skipped / s"],
        ),
    ] {
        let marks = limits::marks(&s, &tl, s.planned_secs());
        let figures = figures::charts(&s, &tl, &marks).unwrap();
        let page = zoom_charts::report_page(&s, &tl, &marks);
        let ids: Vec<&str> = figures.iter().map(|f| f.spec.id).collect();
        let table: Vec<&str> = chart_table::CHARTS.iter().map(|c| c.id).collect();
        assert_eq!(ids, table, "{name}: every chart, in the table's order");
        assert_eq!(figures.len(), page.charts.len(), "{name}");
        for (f, c) in figures.iter().zip(&page.charts) {
            assert_eq!(f.spec.id, c.id, "{name}");
            assert_eq!(f.title, c.title, "{name}: {}", c.id);
            assert_eq!(f.spec.y, c.y, "{name}: {}", c.id);
            let labels: Vec<&str> = c.series.iter().map(|s| s.label.as_str()).collect();
            assert_eq!(f.series, labels, "{name}: {}", c.id);
            assert!(!labels.is_empty(), "{name}: {}", c.id);
            for label in &labels {
                assert!(f.svg.contains(label), "{name}: the SVG of {} draws {label}", c.id);
            }
            assert!(f.svg.contains(&f.title), "{name}: {}", c.id);
        }
        assert_eq!(
            page.charts[4]
                .series
                .iter()
                .map(|s| s.label.as_str())
                .collect::<Vec<_>>(),
            throughput,
            "{name}"
        );
        assert_eq!(
            figures[1].series,
            ["other", "anon inodes", "files", "pipes", "sockets"],
            "{name}"
        );
    }
}
