//! `--workers`: the driver on one thread (the default) or several keeps the
//! same timetable, and every call it starts has its lag on the timetable
//! recorded; a worker count that is not a number is a usage error.

use crate::common::*;

#[test]
fn one_thread_or_two_the_timetable_runs_and_every_start_has_its_lag() {
    let dir = TempDir::new("workers");
    let sc = fixture(
        &dir,
        "churn-short.toml",
        &[("channel = \"per_call\"", "channel = \"shared\"")],
    );
    for workers in ["1", "2"] {
        let r = run(&sc, &["--workers", workers, "--duration", "load=2s"]);
        assert_eq!(r.code, 0, "--workers {workers}: {}", r.context());
        let s = r.summary();
        let w = s.workloads.iter().find(|w| w.phase == "load").unwrap();
        assert!(w.started > 20, "{w:?}");
        let lag = w
            .timetable_lag
            .as_ref()
            .expect("an open-model workload reports its lag");
        assert_eq!(lag.count, w.started, "--workers {workers}: one lag per started call");
        assert!(lag.p50_us <= lag.p99_us && lag.p99_us <= lag.max_us, "{lag:?}");
    }
}

#[test]
fn a_worker_count_that_is_not_a_number_is_a_usage_error() {
    let dir = TempDir::new("workers-bad");
    let sc = fixture(&dir, "churn-short.toml", &[]);
    let r = run(&sc, &["--workers", "many"]);
    assert_eq!(r.code, 2, "{}", r.context());
    assert!(r.stderr.contains("--workers"), "{}", r.context());
}
