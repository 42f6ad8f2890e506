//! `--workers`: the driver on one thread (the default) or several keeps the
//! same timetable, and every call it starts has its lag on the timetable
//! recorded; the lag breakdown (`FDSOAK_LAG_BREAKDOWN`) follows every call
//! through its stages; a worker count that is not a number is a usage error.

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
fn the_lag_breakdown_follows_every_call_stage_by_stage() {
    let dir = TempDir::new("breakdown");
    let sc = fixture(
        &dir,
        "churn-short.toml",
        &[
            ("channel = \"per_call\"", "channel = \"shared\""),
            ("rate = 40", "rate = 400"),
        ],
    );
    let file = dir.path().join("breakdown.json");
    let r = run_env(&sc, &["--duration", "load=2s"], &[("FDSOAK_LAG_BREAKDOWN", &file)]);
    assert_eq!(r.code, 0, "{}", r.context());
    let s = r.summary();
    let w = s.workloads.iter().find(|w| w.phase == "load").unwrap();
    let text = std::fs::read_to_string(&file).expect("the breakdown is written when the timetable ends");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let stages = v["stages"].as_array().unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(names, ["timer", "first_poll", "handed_to_h2", "first_byte_written"]);
    // Every call started passes every stage once (no call failed or was retried here).
    assert_eq!(w.errors, 0, "{w:?}");
    for st in stages {
        assert_eq!(st["count"].as_u64(), Some(w.started), "{st}");
    }
    // Each call reaches the stages in order, so each percentile does too.
    for key in ["p50_us", "p99_us", "max_us"] {
        let at: Vec<f64> = stages.iter().map(|s| s[key].as_f64().unwrap()).collect();
        assert!(at.windows(2).all(|p| p[0] <= p[1]), "{key}: {at:?}");
    }
    // Off unless asked for: a run without the variable writes nothing there.
    std::fs::remove_file(&file).unwrap();
    let r = run(&sc, &["--duration", "load=1s"]);
    assert_eq!(r.code, 0, "{}", r.context());
    assert!(!file.exists());
}

#[test]
fn a_worker_count_that_is_not_a_number_is_a_usage_error() {
    let dir = TempDir::new("workers-bad");
    let sc = fixture(&dir, "churn-short.toml", &[]);
    let r = run(&sc, &["--workers", "many"]);
    assert_eq!(r.code, 2, "{}", r.context());
    assert!(r.stderr.contains("--workers"), "{}", r.context());
}
