//! Report-generation benchmark: a 24-hour soak's worth of samples (86,400
//! rows per process at 1 Hz) through analysis and every exporter.
//!
//!     cargo bench --bench report
//!
//! Prints wall times, with reading the same files with `cat` as the I/O
//! floor beside them, since this machine is shared and absolute numbers drift.
//! Set FDSOAK_BENCH_KEEP=1 to keep the generated report and look at it.

use fdsoak::analysis::{Role, Tracker};
use fdsoak::report::model::{PhaseInfo, Summary};
use fdsoak::sampler::probe::Reading;
use std::io::Write;
use std::time::{Duration, Instant};

const SECS: u64 = 86_400;

fn reading(t: u64, leak: bool) -> Reading {
    let mut r = Reading::default();
    let growth = if leak { t / 60 } else { 0 };
    r.fds.socket = 40 + (t * 7 % 13) + growth;
    r.fds.pipe = 3;
    r.fds.anon = 4;
    r.fds.total = r.fds.socket + 7;
    r.tcp.established = 30 + (t * 7 % 13);
    r.tcp.close_wait = growth;
    r.tcp.listen = 1;
    r.nofile_soft = Some(65_536);
    r.nofile_hard = Some(65_536);
    r.threads = 4;
    r.rss_kb = 12_000;
    r
}

fn write_csvs(dir: &std::path::Path) {
    let mut s = std::io::BufWriter::new(std::fs::File::create(dir.join("samples.csv")).unwrap());
    writeln!(s, "t_secs,unix_ms,phase,role,pid,fds,sockets,pipes,files,anon,other,tcp_established,tcp_syn_sent,tcp_syn_recv,tcp_fin_wait1,tcp_fin_wait2,tcp_time_wait,tcp_close,tcp_close_wait,tcp_last_ack,tcp_listen,tcp_closing,nofile_soft,nofile_hard,threads,rss_kb").unwrap();
    let mut tp = std::io::BufWriter::new(std::fs::File::create(dir.join("throughput.csv")).unwrap());
    writeln!(
        tp,
        "t_secs,phase,scheduled,started,ok,errors,skipped,in_flight,messages,p50_us,p90_us,p99_us,max_us"
    )
    .unwrap();
    for t in 0..SECS {
        for (role, pid, leak) in [("target", 100, true), ("driver", 101, false)] {
            let r = reading(t, leak);
            writeln!(
                s,
                "{t}.000,{},soak,{role},{pid},{},{},{},0,{},0,{},0,0,0,0,0,0,{},0,{},0,65536,65536,4,12000",
                1_700_000_000_000u64 + t * 1000,
                r.fds.total,
                r.fds.socket,
                r.fds.pipe,
                r.fds.anon,
                r.tcp.established,
                r.tcp.close_wait,
                r.tcp.listen
            )
            .unwrap();
        }
        writeln!(
            tp,
            "{t}.000,soak,{},{},{},{},0,2,0,900,1800,4000,9000",
            t * 100,
            t * 100,
            t * 100 - t / 10,
            t / 10
        )
        .unwrap();
    }
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
    if std::env::var_os("FDSOAK_BENCH_KEEP").is_some() {
        println!("kept {}", dir.display());
    } else {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
