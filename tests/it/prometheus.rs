//! Descriptor counts from a real Prometheus endpoint (`fdsoak serve
//! --metrics-addr`, the `prometheus` crate's process collector) instead of
//! `/proc`: the two agree, leaks are flagged from the metrics alone, and a
//! misbehaving endpoint leaves gaps, never zeros or false growth.

use crate::common::*;
use fdsoak::sampler::probe::probe;
use fdsoak::sampler::prometheus::Scraper;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scraped_count_agrees_with_proc_at_each_tick() {
    // A target that keeps a file per 5 checks, under 100 checks/s: its count moves all the time.
    let server = Server::with_metrics(&["--leak-fd-every", "5"]);
    let url = server.metrics.clone().unwrap();
    let out = TempDir::new("load");
    let mut load = Command::new(FDSOAK)
        .args([
            "run",
            repo("scenarios/quickstart.toml").to_str().unwrap(),
            "-q",
            "--out",
        ])
        .arg(out.path())
        .args(["--target", &server.addr.to_string()])
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let metrics = fdsoak::sampler::prometheus::MetricNames {
        open: "process_open_fds",
        max: "process_max_fds",
    };
    let scraper = Scraper::new(&url, metrics, Duration::from_secs(2)).unwrap();
    let pid = server.pid();
    let mut pairs: Vec<(u64, u64)> = Vec::new();
    let end = std::time::Instant::now() + Duration::from_secs(20);
    // Ticks until the leak shows through the endpoint, each once the count has moved.
    while pairs.last().is_none_or(|last| last.1 <= pairs[0].1 + 20) {
        assert!(
            std::time::Instant::now() < end,
            "the leak was not seen through the endpoint: {pairs:?}"
        );
        let before = probe(pid).unwrap().fds.total;
        let scraped = scraper.read().await.unwrap();
        let after = probe(pid).unwrap().fds.total;
        // The collector lists /proc/self/fd with one handle of its own: within ±2 of /proc.
        assert!(
            before.saturating_sub(2) <= scraped.fds.total && scraped.fds.total <= after + 2,
            "scraped {} while /proc read {before} then {after}",
            scraped.fds.total
        );
        assert!(scraped.nofile_soft.is_some_and(|l| l > 0), "{scraped:?}");
        pairs.push((before, scraped.fds.total));
        wait_until_async(Duration::from_secs(5), "the target's count to move", move || {
            probe(pid).is_ok_and(|p| p.fds.total != after)
        })
        .await;
    }
    let _ = load.kill();
    let _ = load.wait();
}

#[test]
fn a_leaky_target_is_flagged_from_its_metrics_alone_and_a_clean_one_passes() {
    let leaky = Server::with_metrics(&["--leak-fd-every", "10"]);
    let url = leaky.metrics.clone().unwrap();
    let addr = leaky.addr.to_string();
    let r = run(
        &repo("scenarios/quickstart.toml"),
        &["--target", &addr, "--fds-from", &url],
    );
    assert_eq!(r.code, 1, "{}", r.context());
    assert!(
        r.finding_kinds("target").contains(&"fd_growth".to_string()),
        "{}",
        r.context()
    );
    let target = r.process("target");
    assert_eq!(target.source, fdsoak::domain::FdSource::Prometheus);
    assert_eq!((target.pid, target.fingerprints, target.gaps), (0, 0, 0), "{target:?}");
    assert!((100..=170).contains(&target.residual_fds), "{target:?}");
    assert!(
        target.time_to_limit_secs.is_some() && target.peak_usage.is_some(),
        "{target:?}"
    );
    let growth = r.finding("target", "fd_growth");
    assert!(
        growth.contains("kinds unknown") && !growth.contains("CLOSE_WAIT"),
        "{growth}"
    );
    let s = r.summary();
    assert_eq!(s.target.pid, None, "no PID was looked for");
    assert_eq!(s.target.fds_from.as_deref(), Some(url.as_str()));
    let md = std::fs::read_to_string(r.out.path().join("summary.md")).unwrap();
    assert!(
        md.contains("| unknown |") && md.contains("not available from that source"),
        "{md}"
    );
    let html = std::fs::read_to_string(r.out.path().join("report.html")).unwrap();
    assert!(
        !html.contains("TCP sockets by state"),
        "no chart of zeros for what the source lacks"
    );
    drop(leaky);

    let clean = Server::with_metrics(&[]);
    let (url, addr) = (clean.metrics.clone().unwrap(), clean.addr.to_string());
    for round in 0..2 {
        let r = run(
            &repo("scenarios/quickstart.toml"),
            &["--target", &addr, "--fds-from", &url],
        );
        assert_eq!(r.code, 0, "round {round}: {}", r.context());
        assert!(r.summary().findings.is_empty(), "round {round}: {}", r.context());
    }
}

#[test]
fn a_server_keeping_dead_sockets_is_flagged_from_its_metrics() {
    let server = Server::with_metrics(&["--hold-closed-conns"]);
    let (url, addr) = (server.metrics.clone().unwrap(), server.addr.to_string());
    let r = run(
        &repo("scenarios/channel-churn.toml"),
        &["--target", &addr, "--fds-from", &url],
    );
    assert_eq!(r.code, 1, "{}", r.context());
    let kinds = r.finding_kinds("target");
    assert!(
        kinds.iter().any(|k| k == "fd_growth" || k == "residual_fds"),
        "{kinds:?}"
    );
    // CLOSE_WAIT is unknown from this source: not flagged, not reported as zero.
    assert!(!kinds.contains(&"close_wait".to_string()), "{kinds:?}");
    assert!(r.stdout.contains("FAIL"), "{}", r.context());
}

/// A metrics endpoint that answers in turn: a good page, a stall, a 500, garbage.
fn misbehaving_endpoint() -> (
    String,
    std::thread::JoinHandle<()>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let done = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut turn = 0u32;
        while !done.load(Ordering::Relaxed) {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut req = [0u8; 2048];
            let _ = conn.read(&mut req);
            let reply = |status: &str, body: &str| {
                format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let page = "# TYPE process_open_fds gauge\nprocess_open_fds 40\nprocess_max_fds 1024\n";
            match turn % 4 {
                0 => drop(conn.write_all(reply("200 OK", page).as_bytes())),
                1 => std::thread::sleep(Duration::from_millis(600)),
                2 => drop(conn.write_all(reply("500 Internal Server Error", "boom").as_bytes())),
                _ => drop(conn.write_all(reply("200 OK", "<html>\u{0}\u{1}garbage{{}}\n</html>").as_bytes())),
            }
            turn += 1;
        }
    });
    (url, handle, stop)
}

#[test]
fn a_stalling_failing_or_garbled_endpoint_leaves_gaps_not_growth() {
    let server = Server::start(&[]);
    let (url, handle, stop) = misbehaving_endpoint();
    let dir = TempDir::new("gaps");
    let scenario = dir.write(
        "gaps.toml",
        r#"name = "gaps"
[target.fds]
prometheus = "http://unused/metrics"
timeout = "200ms"
[sampler]
interval = "250ms"
[[phases]]
name = "baseline"
duration = "2s"
[[phases]]
name = "load"
duration = "6s"
  [[phases.workloads]]
  kind = "health_check"
  rate = 50
[[phases]]
name = "drain"
duration = "2s"
"#,
    );
    let r = run(&scenario, &["--target", &server.addr.to_string(), "--fds-from", &url]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    handle.join().unwrap();
    assert_eq!(r.code, 0, "{}", r.context());
    assert!(r.summary().findings.is_empty(), "{}", r.context());
    let target = r.process("target");
    assert!(target.gaps >= 10 && target.samples >= 5, "{target:?}");
    assert_eq!(
        (target.baseline_fds, target.final_fds, target.peak_fds),
        (40, 40, 40),
        "{target:?}"
    );
    // No row was written for a failed scrape: every target row holds the real count.
    let rows: Vec<_> = samples(r.out.path())
        .into_iter()
        .filter(|s| s.role == fdsoak::domain::Role::Target)
        .collect();
    assert!(rows.iter().all(|s| s.fds == 40), "a gap became a number");
    assert!(
        r.stdout.contains("reads failed")
            || std::fs::read_to_string(r.out.path().join("summary.md"))
                .unwrap()
                .contains("reads failed")
    );
}

#[test]
fn an_endpoint_that_never_answers_is_a_run_error() {
    let server = Server::start(&[]);
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = TempDir::new("noanswer");
    let scenario = dir.write(
        "s.toml",
        "name = \"s\"\n[target]\nready_timeout = \"1s\"\n[[phases]]\nname = \"a\"\nduration = \"1s\"\n",
    );
    let url = format!("http://{closed}/metrics");
    let r = run(&scenario, &["--target", &server.addr.to_string(), "--fds-from", &url]);
    assert_eq!(r.code, 3, "{}", r.context());
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains(&format!("FD source {url} did not answer")), "{all}");
    assert!(all.to_lowercase().contains("refused"), "{all}");
    assert_eq!(r.verdict(), "error");
    // A bad URL is the user's mistake: exit 2 before anything starts.
    let r = run(
        &scenario,
        &["--target", &server.addr.to_string(), "--fds-from", "https://x/metrics"],
    );
    assert_eq!(r.code, 2, "{}", r.context());
    assert!(
        r.stderr.contains("--fds-from") && r.stderr.contains("https"),
        "{}",
        r.context()
    );
}
