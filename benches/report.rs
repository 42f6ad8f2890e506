//! Report-generation benchmark: a 24-hour soak's worth of samples (86,400
//! rows per process at 1 Hz) through analysis and every exporter.
//!
//!     cargo bench --bench report
//!
//! Prints wall times, with reading the same files with `cat` as the I/O
//! floor beside them, since this machine is shared and absolute numbers drift.
//! It also times parsing one Prometheus scrape of a realistic page (about
//! 1,000 lines: Go runtime metrics, process metrics, request histograms).
//! Set FDSOAK_BENCH_KEEP=1 to keep the generated report and look at it.
//!
//! `benches/` holds the `cargo bench` targets, fdsoak's own code timed in
//! process. The side-by-side comparisons with other tools (grpc-go, grpcio,
//! `ls`, `lsof`) are `bench/run`; see `bench/README.md`.

use fdsoak::analysis::Tracker;
use fdsoak::domain::{Reading, Role, TcpState};
use fdsoak::report::model::{PhaseInfo, Summary};
use fdsoak::series::{CsvStream, SampleRow, ThroughputRow};
use std::time::{Duration, Instant};

const SECS: u64 = 86_400;

fn reading(t: u64, leak: bool) -> Reading {
    let mut r = Reading::default();
    let growth = if leak { t / 60 } else { 0 };
    r.fds.socket = 40 + (t * 7 % 13) + growth;
    r.fds.pipe = 3;
    r.fds.anon = 4;
    r.fds.total = r.fds.socket + 7;
    r.tcp.set(TcpState::Established, 30 + (t * 7 % 13));
    r.tcp.set(TcpState::CloseWait, growth);
    r.tcp.set(TcpState::Listen, 1);
    r.nofile_soft = Some(65_536);
    r.nofile_hard = Some(65_536);
    r.threads = 4;
    r.rss_kb = 12_000;
    r
}

fn write_csvs(dir: &std::path::Path) {
    let mut s = CsvStream::create(&dir.join("samples.csv")).unwrap();
    let mut tp = CsvStream::create(&dir.join("throughput.csv")).unwrap();
    for t in 0..SECS {
        for (role, pid, leak) in [(Role::Target, 100, true), (Role::Driver, 101, false)] {
            let unix_ms = 1_700_000_000_000u128 + u128::from(t) * 1000;
            s.write(&SampleRow::new(t as f64, unix_ms, "soak", role, pid, &reading(t, leak)))
                .unwrap();
        }
        tp.write(&ThroughputRow {
            t_secs: t as f64,
            phase: "soak".into(),
            scheduled: t * 100,
            started: t * 100,
            ok: t * 100 - t / 10,
            errors: t / 10,
            skipped: 0,
            in_flight: 2,
            messages: 0,
            p50_us: Some(900),
            p90_us: Some(1800),
            p99_us: Some(4000),
            max_us: Some(9000),
        })
        .unwrap();
    }
    s.flush().unwrap();
    tp.flush().unwrap();
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let v = f();
    (v, start.elapsed())
}

fn main() {
    let dir = std::env::temp_dir().join(format!("fdsoak-bench-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_csvs(&dir);

    let (analyses, analysis_time) = time(|| {
        let mut trackers = [Tracker::new(Role::Target, 100), Tracker::new(Role::Driver, 101)];
        for t in 0..SECS {
            let phase = usize::from(t >= 600);
            for (tr, leak) in trackers.iter_mut().zip([true, false]) {
                tr.observe(t as f64, phase, phase == 1, &reading(t, leak));
            }
        }
        trackers.iter().filter_map(Tracker::finish).collect::<Vec<_>>()
    });

    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports/leaky/summary.json");
    let mut summary: Summary = fdsoak::report::json::read(&fixture).unwrap();
    summary.duration_secs = SECS as f64;
    summary.processes = analyses;
    summary.phases = vec![
        PhaseInfo {
            name: "baseline".into(),
            start_secs: 0.0,
            end_secs: 600.0,
            idle: false,
        },
        PhaseInfo {
            name: "soak".into(),
            start_secs: 600.0,
            end_secs: SECS as f64,
            idle: false,
        },
    ];
    let (_, report_time) = time(|| fdsoak::report::write_all(&summary, &dir).unwrap());
    let (_, cat_time) = time(|| {
        let o = std::process::Command::new("cat")
            .arg(dir.join("samples.csv"))
            .arg(dir.join("throughput.csv"))
            .output()
            .unwrap();
        assert!(o.status.success());
    });
    let html = std::fs::metadata(dir.join("report.html")).unwrap().len();

    println!("24 h soak at 1 Hz: {} sample rows + {} throughput rows", 2 * SECS, SECS);
    println!("{:<44} {:>10}", "step", "time");
    println!(
        "{:<44} {:>8.1}ms",
        "analysis (2 × 86,400 readings, Theil–Sen)",
        analysis_time.as_secs_f64() * 1e3
    );
    println!(
        "{:<44} {:>8.1}ms",
        "all exporters (reads both CSVs for HTML)",
        report_time.as_secs_f64() * 1e3
    );
    println!(
        "{:<44} {:>8.1}ms",
        "reference: cat both CSVs (I/O floor)",
        cat_time.as_secs_f64() * 1e3
    );
    println!(
        "exporters / cat ratio: {:.1}×; report.html is {} KiB",
        report_time.as_secs_f64() / cat_time.as_secs_f64(),
        html / 1024
    );
    checkpoint_cost(&summary, &dir);
    trend_cost(&fixture);
    prometheus_parse_cost();
    if std::env::var_os("FDSOAK_BENCH_KEEP").is_some() {
        println!("kept {}", dir.display());
    } else {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A metrics page of the shape a Go service serves: runtime gauges, the
/// process collector, and request-latency histograms per handler and code.
fn metrics_page() -> String {
    let mut p = String::new();
    p.push_str("# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.\n# TYPE go_gc_duration_seconds summary\n");
    for q in ["0", "0.25", "0.5", "0.75", "1"] {
        p.push_str(&format!("go_gc_duration_seconds{{quantile=\"{q}\"}} 3.2801e-05\n"));
    }
    p.push_str("go_gc_duration_seconds_sum 0.01239\ngo_gc_duration_seconds_count 312\n");
    for name in [
        "go_goroutines",
        "go_threads",
        "go_memstats_alloc_bytes",
        "go_memstats_heap_inuse_bytes",
        "go_memstats_sys_bytes",
    ] {
        p.push_str(&format!(
            "# HELP {name} A runtime figure.\n# TYPE {name} gauge\n{name} 4.194304e+06\n"
        ));
    }
    for (name, v) in [
        ("process_cpu_seconds_total", "41.5"),
        ("process_open_fds", "137"),
        ("process_max_fds", "1.048576e+06"),
        ("process_resident_memory_bytes", "5.1249152e+07"),
        ("process_start_time_seconds", "1.79564e+09"),
    ] {
        p.push_str(&format!(
            "# HELP {name} A process figure.\n# TYPE {name} gauge\n{name} {v}\n"
        ));
    }
    p.push_str(
        "# HELP http_request_duration_seconds Request latency.\n# TYPE http_request_duration_seconds histogram\n",
    );
    let buckets = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
    ];
    'outer: for handler in [
        "/api/v1/users",
        "/api/v1/orders",
        "/api/v1/items",
        "/healthz",
        "/metrics",
        "/api/v1/search",
        "/api/v1/cart",
        "/api/v1/login",
    ] {
        for code in [
            "200", "400", "404", "500", "503", "429", "201", "304", "401", "403", "502",
        ] {
            for (i, le) in buckets.iter().enumerate() {
                p.push_str(&format!(
                    "http_request_duration_seconds_bucket{{handler=\"{handler}\",code=\"{code}\",le=\"{le}\"}} {}\n",
                    i * 17
                ));
            }
            p.push_str(&format!("http_request_duration_seconds_sum{{handler=\"{handler}\",code=\"{code}\"}} 12.5\nhttp_request_duration_seconds_count{{handler=\"{handler}\",code=\"{code}\"}} 187\n"));
            if p.lines().count() >= 1000 {
                break 'outer;
            }
        }
    }
    p
}

fn prometheus_parse_cost() {
    use fdsoak::scenario::{MAX_FDS_METRIC, OPEN_FDS_METRIC};
    let page = metrics_page();
    let lines = page.lines().count();
    let mut times = Vec::new();
    for _ in 0..201 {
        let start = Instant::now();
        let r = fdsoak::sampler::prometheus::parse(&page, OPEN_FDS_METRIC, MAX_FDS_METRIC).unwrap();
        times.push(start.elapsed());
        assert_eq!(r.fds.total, 137);
    }
    times.sort();
    let median = times[times.len() / 2];
    // The parser given the whole page, as a scraper that keeps every metric would.
    let whole = time(|| {
        prometheus_parse::Scrape::parse(page.lines().map(|l| Ok(l.to_string())))
            .unwrap()
            .samples
            .len()
    })
    .1;
    println!(
        "{:<44} {:>8.3}ms  (goal < 1 ms; {} lines, {} KiB; the parser on every line, for reference: {:.3}ms)",
        "parse one Prometheus scrape (median of 201)",
        median.as_secs_f64() * 1e3,
        lines,
        page.len() / 1024,
        whole.as_secs_f64() * 1e3
    );
}

/// One checkpoint at hour 24 of a 1 Hz soak: the live downsample (fed the
/// same rows as the files) charted, and every exporter rendered and written,
/// with nothing read back from the CSV files.
fn checkpoint_cost(summary: &Summary, dir: &std::path::Path) {
    let mut d = fdsoak::series::Downsampler::new(SECS as f64, 1.0);
    for t in 0..SECS {
        for (role, pid, leak) in [(Role::Target, 100, true), (Role::Driver, 101, false)] {
            d.sample(SampleRow::new(t as f64, 0, "soak", role, pid, &reading(t, leak)));
        }
        d.throughput(&ThroughputRow {
            t_secs: t as f64,
            phase: "soak".into(),
            ok: t * 100,
            p50_us: Some(900),
            p90_us: Some(1800),
            p99_us: Some(4000),
            max_us: Some(9000),
            ..ThroughputRow::default()
        });
    }
    let mut s = summary.clone();
    s.verdict = fdsoak::report::model::Verdict::Running;
    s.checkpoint = Some(fdsoak::report::model::CheckpointInfo {
        at_secs: SECS as f64,
        planned_secs: SECS as f64,
        count: 1440,
        pid: std::process::id(),
    });
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let series = d.timeline();
        let files = fdsoak::report::render_all_from(&s, dir, &series).unwrap();
        fdsoak::report::write_files(&files, dir).unwrap();
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "{:<44} {:>8.1}ms  (goal < 200 ms; median of 5; the final report reads the files back instead)",
        "one checkpoint at hour 24 (1 Hz)",
        times[2].as_secs_f64() * 1e3
    );
}

/// `fdsoak trend` over 100 reports of one scenario: read, ordered, each
/// compared with the one before and with the last good build, both pages written.
fn trend_cost(fixture: &std::path::Path) {
    let root = std::env::temp_dir().join(format!("fdsoak-bench-trend-{}", std::process::id()));
    let base: Summary = fdsoak::report::json::read(fixture).unwrap();
    let mut paths = Vec::new();
    for i in 0..100 {
        let dir = root.join(format!("build-{i:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = base.clone();
        s.label = Some(format!("b{i:03}"));
        s.started_at = format!("2026-11-{:02}T00:{:02}:00Z", 1 + i / 60, i % 60);
        std::fs::write(dir.join("summary.json"), serde_json::to_vec(&s).unwrap()).unwrap();
        paths.push(dir);
    }
    let out = root.join("trend");
    let mut times = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let h = fdsoak::trend::histories(&paths, &[], &fdsoak::compare::Tolerances::DEFAULT).unwrap();
        fdsoak::trend::write(&h, &out).unwrap();
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "{:<44} {:>8.1}ms  (goal < 1 s; median of 3)",
        "trend over 100 reports",
        times[1].as_secs_f64() * 1e3
    );
    let _ = std::fs::remove_dir_all(&root);
}
