//! Live metrics (`run --metrics-addr`), scraped from the real endpoint while
//! a real run goes on: every series fdsoak documents is served, with the
//! run's labels; the target's descriptor count agrees with samples.csv at
//! the same tick; the calls counted agree with the report.

use crate::common::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One scrape: the page's samples, and when it was taken (unix ms), or None if nothing answered.
fn scrape(addr: &str) -> Option<(Vec<prometheus_parse::Sample>, u128)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: fdsoak\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
    let body = text.split_once("\r\n\r\n")?.1;
    let lines = body.lines().map(|l| Ok(l.to_string()));
    Some((prometheus_parse::Scrape::parse(lines).ok()?.samples, at))
}

fn value(samples: &[prometheus_parse::Sample], name: &str, role: &str) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.metric == name && s.labels.get("role") == Some(role))
        .and_then(|s| match s.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
}

#[test]
fn a_scrape_during_a_run_agrees_with_the_report_at_the_same_tick() {
    let addr = format!("127.0.0.1:{}", free_port());
    let dir = TempDir::new("live");
    // With a fault, so the fault events are served too.
    let sc = fixture(
        &dir,
        "churn-short.toml",
        &[(
            "  channel = \"per_call\"\n",
            "  channel = \"per_call\"\n\n  [[phases.faults]]\n  kind = \"goaway\"\n  every = \"1s\"\n",
        )],
    );
    let mut child = std::process::Command::new(FDSOAK)
        .arg("run")
        .arg(&sc)
        .args(["-q", "--metrics-addr", &addr, "--label", "build-7", "--out"])
        .arg(dir.path().join("r"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut scrapes = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && Instant::now() < end {
        if let Some(s) = scrape(&addr) {
            scrapes.push(s);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), 0, "{out}");
    let dir = out
        .split("report in ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_string();
    let dir = std::path::Path::new(&dir);
    assert!(scrapes.len() >= 10, "{} scrapes", scrapes.len());

    // Every documented series is served, with the run's labels.
    let (last, _) = scrapes
        .iter()
        .rev()
        .find(|(s, _)| s.iter().any(|x| x.metric == "fdsoak_calls_total"))
        .unwrap();
    for name in fdsoak::live::SERIES {
        assert!(
            last.iter()
                .any(|s| s.metric == *name || s.metric.starts_with(&format!("{name}_"))),
            "{name} not served"
        );
    }
    let any = &last[0];
    assert_eq!(any.labels.get("scenario"), Some("churn-short"));
    assert_eq!(any.labels.get("label"), Some("build-7"));

    // The target's descriptors, scrape by scrape, against samples.csv at the tick before each.
    let rows: Vec<_> = samples(dir)
        .into_iter()
        .filter(|r| r.role == fdsoak::vocab::Role::Target)
        .collect();
    let mut compared = 0;
    for (page, at) in &scrapes {
        let Some(v) = value(page, "fdsoak_fds", "target") else {
            continue;
        };
        let Some(row) = rows.iter().rev().find(|r| r.unix_ms <= *at) else {
            continue;
        };
        let next = rows.iter().find(|r| r.unix_ms > row.unix_ms);
        let close = |fds: u64| (fds as f64 - v).abs() <= 1.0;
        assert!(
            close(row.fds) || next.is_some_and(|n| close(n.fds)),
            "scrape at {at}: {v}, samples.csv at {}: {}",
            row.unix_ms,
            row.fds
        );
        compared += 1;
    }
    assert!(compared >= 10, "{compared}");

    // The calls the last scrape counted, against the report's.
    let ok: f64 = last
        .iter()
        .filter(|s| s.metric == "fdsoak_calls_total" && s.labels.get("code") == Some("OK"))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    let reported: u64 = read_summary(dir).workloads.iter().map(|w| w.ok).sum();
    assert!(ok > 0.0 && ok <= reported as f64, "{ok} of {reported}");
}
