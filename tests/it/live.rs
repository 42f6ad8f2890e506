//! Live metrics (`run --metrics-addr`), scraped from the real endpoint while
//! a real run goes on: every series fdsoak documents is served, with the
//! run's labels; a leaky target's growth is a finding before the run ends;
//! the target's descriptor count agrees with samples.csv at the same tick;
//! the calls counted agree with the report. Then Debian's
//! Prometheus scrapes a run, and its API agrees with the report (renaming
//! `fdsoak_fds` makes that test fail, saying so).

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

fn unix_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

/// One scrape: the page's samples, and when it was asked for and answered (unix ms), or None if nothing answered.
fn scrape(addr: &str) -> Option<(Vec<prometheus_parse::Sample>, (u128, u128))> {
    let asked = unix_ms();
    let (_, body) = get(addr, "/metrics")?;
    let at = (asked, unix_ms());
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
    // A leaky target, so findings appear while the run goes on.
    let leaky = "{fdsoak} serve --port {port} --leak-fd-every 5";
    let mut child = std::process::Command::new(FDSOAK)
        .arg("run")
        .arg(&sc)
        .args([
            "-q",
            "--metrics-addr",
            &addr,
            "--label",
            "build-7",
            "--spawn",
            leaky,
            "--out",
        ])
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
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), 1, "{out}");
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
    // The target's growth is a finding before the run ends.
    let growth = last
        .iter()
        .find(|s| s.metric == "fdsoak_findings" && s.labels.get("kind") == Some("fd_growth"));
    assert_eq!(growth.and_then(|g| g.labels.get("subject")), Some("target"), "{last:?}");

    // The target's descriptors, scrape by scrape, against samples.csv at the tick before each.
    let rows: Vec<_> = samples(dir)
        .into_iter()
        .filter(|r| r.role == fdsoak::domain::Role::Target)
        .collect();
    let mut compared = 0;
    for (page, (asked, answered)) in &scrapes {
        let Some(v) = value(page, "fdsoak_fds", "target") else {
            continue;
        };
        // The tick a scrape reads: one of the last two before it was asked for (a tick's
        // row is written before its gauges are set), or one while it was answered.
        let before: Vec<&fdsoak::series::SampleRow> = rows.iter().filter(|r| r.unix_ms <= *asked).collect();
        if before.len() < 2 {
            continue;
        }
        let during = rows.iter().filter(|r| r.unix_ms > *asked && r.unix_ms <= *answered);
        let candidates: Vec<u64> = before[before.len() - 2..]
            .iter()
            .copied()
            .chain(during)
            .map(|r| r.fds)
            .collect();
        assert!(
            candidates.iter().any(|n| (*n as f64 - v).abs() <= 1.0),
            "scrape asked at {asked}, answered at {answered}: {v}; samples.csv then: {candidates:?}"
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

/// GET `path` from `addr` over HTTP/1.0: the status code and the body.
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus API query's result vector or matrix.
fn query(prom: &str, path: &str) -> Vec<serde_json::Value> {
    let (code, body) = get(prom, path).unwrap_or((0, String::new()));
    assert_eq!(code, 200, "{path}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Debian's Prometheus scrapes a real run every second; its API then gives the
/// target's descriptors as samples.csv has them, and the rate of calls the report does.
#[test]
fn a_real_prometheus_scrapes_a_run_and_agrees_with_the_report() {
    if std::process::Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        tool_missing("prometheus", ".ci/run installs Debian's prometheus");
        return;
    }
    let dir = TempDir::new("live-prom");
    let (metrics, web) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let config = dir.write(
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
             scrape_configs:\n  - job_name: fdsoak\n    static_configs:\n      - targets: ['{metrics}']\n"
        ),
    );
    let prom = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address={web}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let prom = Kill(prom);
    wait_until(Duration::from_secs(30), "prometheus ready", || {
        get(&web, "/-/ready").is_some_and(|(c, _)| c == 200)
    });
    let sc = dir.write(
        "steady.toml",
        "name = \"steady\"\n[sampler]\ninterval = \"250ms\"\n\
         [[phases]]\nname = \"baseline\"\nduration = \"3s\"\n\
         [[phases]]\nname = \"load\"\nduration = \"14s\"\n  [[phases.workloads]]\n  kind = \"health_check\"\n  rate = 100\n\
         [[phases]]\nname = \"drain\"\nduration = \"3s\"\n",
    );
    let r = run(&sc, &["--metrics-addr", &metrics]);
    assert_eq!(r.code, 0, "{}", r.context());
    let rows: Vec<_> = samples(r.out.path())
        .into_iter()
        .filter(|r| r.role == fdsoak::domain::Role::Target)
        .collect();
    let (first, last) = (
        rows[0].unix_ms as f64 / 1000.0,
        rows.last().unwrap().unix_ms as f64 / 1000.0,
    );

    // The target's descriptors, as Prometheus stored them, against samples.csv at the same tick.
    let q = encode("fdsoak_fds{role=\"target\",scenario=\"steady\"}");
    let series = query(
        &web,
        &format!("/api/v1/query_range?query={q}&start={first}&end={last}&step=1"),
    );
    assert!(
        !series.is_empty(),
        "Prometheus stored no fdsoak_fds for the target (is the series renamed?)"
    );
    let values = series[0]["values"].as_array().unwrap();
    assert!(values.len() >= 15, "{values:?}");
    // Each stored value is the gauge a scrape read: what samples.csv has at the tick
    // before the evaluation time, or at one of the few ticks before that (a scrape is up to 1 s old).
    for v in values {
        let (ts, fds) = (v[0].as_f64().unwrap(), v[1].as_str().unwrap().parse::<f64>().unwrap());
        let recent: Vec<u64> = rows
            .iter()
            .filter(|r| (r.unix_ms as f64) <= ts * 1000.0 && (r.unix_ms as f64) > ts * 1000.0 - 2500.0)
            .map(|r| r.fds)
            .collect();
        assert!(
            recent.iter().any(|n| (*n as f64 - fds).abs() <= 1.0),
            "at {ts}: Prometheus {fds}, samples.csv {recent:?}"
        );
    }

    // The rate of calls in the middle of the load, against the report's throughput.
    let s = r.summary();
    let w = &s.workloads[0];
    let load = &s.phases.iter().find(|p| p.name == "load").unwrap();
    let throughput = w.ok as f64 / (load.end_secs - load.start_secs);
    let load_rows: Vec<f64> = rows
        .iter()
        .filter(|r| r.phase == "load")
        .map(|r| r.unix_ms as f64 / 1000.0)
        .collect();
    // Late in the load, so the window holds nothing of its start.
    let mid = load_rows[load_rows.len() - 1] - 1.5;
    let q = encode("sum(rate(fdsoak_calls_total{code=\"OK\",phase=\"load\",scenario=\"steady\"}[6s]))");
    let rate = query(&web, &format!("/api/v1/query?query={q}&time={mid}"));
    assert!(
        !rate.is_empty(),
        "Prometheus has no rate of fdsoak_calls_total (is the series renamed?)"
    );
    let rate: f64 = rate[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(
        (rate / throughput - 1.0).abs() <= 0.05,
        "Prometheus {rate}/s, the report {throughput}/s"
    );

    // Every query of the Grafana dashboard is one this Prometheus accepts, and most find data.
    for q in dashboard_queries() {
        // A variable's `label_values(M, L)` is Grafana's; Prometheus asks it as `group by (L) (M)`.
        let promql = match q.strip_prefix("label_values(").and_then(|r| r.strip_suffix(')')) {
            Some(args) => {
                let (m, l) = args.split_once(',').unwrap();
                format!("group by ({}) ({m})", l.trim())
            }
            None => q.clone(),
        };
        let found = query(&web, &format!("/api/v1/query?query={}&time={mid}", encode(&promql)));
        // No faults, no growth, no errors and no findings in this run: those may rightly be empty.
        let may_be_empty = ["fault_events", "deriv(", "code!=", "fdsoak_findings"]
            .iter()
            .any(|w| q.contains(w));
        assert!(may_be_empty || !found.is_empty(), "the dashboard's {q:?} finds nothing");
    }
    drop(prom);
}

/// The Grafana dashboard's queries (panels, annotations, variables), with its variables filled in.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(repo("deploy/grafana/fdsoak.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("expr" | "definition", serde_json::Value::String(q)) => out.push(q.clone()),
                        _ => walk(x, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(&dash, &mut out);
    out.iter()
        .map(|q| q.replace("$scenario", ".*").replace("$label", ".*"))
        .collect()
}

/// The `fdsoak_…` series a query names, histogram suffixes taken off.
fn series_named(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = q;
    while let Some(at) = rest.find("fdsoak_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name);
        out.push(base.to_string());
    }
    out
}

#[test]
fn every_dashboard_query_names_a_series_the_endpoint_serves() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 10, "{queries:?}");
    for q in &queries {
        let named = series_named(q);
        assert!(!named.is_empty(), "{q}: names no fdsoak series");
        for name in named {
            assert!(
                fdsoak::live::SERIES.contains(&name.as_str()),
                "{q}: {name} is not served"
            );
        }
    }
    let text = std::fs::read_to_string(repo("deploy/grafana/fdsoak.json")).unwrap();
    for want in [
        "fdsoak_fault_events_total",
        "\"name\": \"label\"",
        "histogram_quantile(0.99",
        "fdsoak_tcp_sockets",
        "deriv(",
    ] {
        assert!(text.contains(want), "the dashboard has no {want}");
    }
}
