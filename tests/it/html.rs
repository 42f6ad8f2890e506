//! The HTML report: self-contained, findings first, every chart drawn from
//! real data; and, with Chromium present, rendered in a real headless browser.

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
    assert!(!html.contains("<script"), "no scripts");
    for needle in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(needle), "no fetches: found {needle}");
    }
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
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs chromium; it must be present there"
        );
        eprintln!("chromium not installed: skipping the browser check (scripts/screenshot-report.sh documents it)");
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
