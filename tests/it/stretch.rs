//! `--duration PHASE=DUR` and `--soak DUR` stretch a scenario without
//! editing it: the phases run for the lengths asked, the report records the
//! changes, and a bad phase name is a usage error.

use crate::common::*;

#[test]
fn duration_and_soak_set_the_phase_lengths_that_run() {
    let dir = TempDir::new("stretch");
    let sc = fixture(&dir, "churn-short.toml", &[]);
    // baseline 1s, load 5s, drain 2s as written.
    let lengths =
        |r: &RunResult| -> Vec<f64> { r.summary().phases.iter().map(|p| p.end_secs - p.start_secs).collect() };
    let r = run(&sc, &["--duration", "load=2s", "--duration", "drain=1s"]);
    assert_eq!(r.code, 0, "{}", r.context());
    let l = lengths(&r);
    assert!(
        (l[1] - 2.0).abs() < 0.3 && (l[2] - 1.0).abs() < 0.3 && (l[0] - 1.0).abs() < 0.3,
        "{l:?}"
    );
    let o = &r.summary().scenario.overrides;
    assert_eq!(
        (o[0].phase.as_str(), o[0].written_secs, o[0].run_secs),
        ("load", 5.0, 2.0)
    );
    assert_eq!(r.summary().scenario.resolved.phases[1].duration.as_secs(), 2);

    // 6 s in all: the baseline (1 s) and the drain (2 s) stay, the load gets the other 3 s.
    let r = run(&sc, &["--soak", "6s"]);
    assert_eq!(r.code, 0, "{}", r.context());
    let l = lengths(&r);
    assert!((l[1] - 3.0).abs() < 0.3 && (l[2] - 2.0).abs() < 0.3, "{l:?}");
    assert_eq!(r.summary().scenario.overrides[0].by, "--soak");
}

#[test]
fn a_bad_phase_name_or_length_is_a_usage_error() {
    let dir = TempDir::new("stretch-bad");
    let sc = fixture(&dir, "churn-short.toml", &[]);
    for (args, needle) in [
        (
            vec!["--duration", "lod=8h"],
            "no phase named \"lod\"; the scenario's phases are baseline, load, drain",
        ),
        (vec!["--duration", "load"], "PHASE=DURATION"),
        (vec!["--duration", "load=fortnight"], "--duration"),
        (vec!["--soak", "2s"], "no time for load"),
        (vec!["--soak", "8h", "--duration", "load=1h"], "cannot be used with"),
    ] {
        let r = run(&sc, &args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.context());
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
        assert!(!r.out.path().join("summary.json").exists(), "nothing ran");
    }
}
