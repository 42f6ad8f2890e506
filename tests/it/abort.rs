//! `[gates] abort`: a run stops at the first tick where an armed gate is
//! sure to fail, drains, and reports why (exit 1); a clean run is never
//! stopped. Both ways, against the built-in target's real leaks.

use crate::common::*;

/// Baseline 2 s, a long load, a 2 s drain; the target and gates as given.
fn scenario(dir: &TempDir, target: &str, gates: &str, load: &str) -> std::path::PathBuf {
    dir.write(
        "abort.toml",
        &format!(
            r#"name = "abort"
[target]
{target}
[sampler]
interval = "250ms"
[gates]
{gates}
[[phases]]
name = "baseline"
duration = "2s"
[[phases]]
name = "load"
duration = "{load}"
  [[phases.workloads]]
  kind = "health_check"
  rate = 100
[[phases]]
name = "more-load"
duration = "{load}"
  [[phases.workloads]]
  kind = "health_check"
  rate = 100
[[phases]]
name = "drain"
duration = "2s"
"#
        ),
    )
}

#[test]
fn a_leak_projected_to_the_limit_stops_the_run_early_and_drains() {
    let dir = TempDir::new("abort-leak");
    // 20 files a second: the limit (20000) in about 17 minutes, far under min_time_to_limit (24 h).
    let sc = scenario(&dir, "leak_fd_every = 5", "abort = true", "60s");
    let r = run(&sc, &[]);
    assert_eq!(r.code, 1, "{}", r.context());
    let s = r.summary();
    let aborted = s
        .findings
        .iter()
        .find(|f| f.kind.as_str() == "aborted")
        .expect("an aborted finding");
    assert!(
        aborted.message.contains("gate min_time_to_limit"),
        "{}",
        aborted.message
    );
    assert!(aborted.message.contains("reaches its limit"), "{}", aborted.message);
    // It stopped a few ticks after the projection could first be trusted (10 load samples, then 3 checks a second apart).
    let load = &s.phases[1];
    assert_eq!(load.name, "load");
    assert!(load.end_secs - load.start_secs < 10.0, "{:?}", s.phases);
    // The second load phase was skipped; the drain ran in full.
    let names: Vec<&str> = s.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["baseline", "load", "drain"]);
    let drain = s.phases.last().unwrap();
    assert!(drain.end_secs - drain.start_secs >= 1.9, "{drain:?}");
    assert!(s.duration_secs < 30.0, "{}", s.duration_secs);
    assert!(r.stdout.contains("aborted"), "{}", r.stdout);
}

#[test]
fn usage_over_its_ceiling_stops_the_run_at_once() {
    let dir = TempDir::new("abort-usage");
    let sc = scenario(
        &dir,
        "nofile = 256\nleak_fd_every = 2",
        "abort = [\"max_fd_usage\"]",
        "60s",
    );
    let r = run(&sc, &[]);
    assert_eq!(r.code, 1, "{}", r.context());
    let s = r.summary();
    let aborted = s
        .findings
        .iter()
        .find(|f| f.kind.as_str() == "aborted")
        .expect("aborted");
    assert!(aborted.message.contains("gate max_fd_usage"), "{}", aborted.message);
    // 0.8 × 256 is 205 descriptors: 50 files a second get there in a few seconds.
    assert!(s.duration_secs < 30.0, "{}", s.duration_secs);
}

#[test]
fn a_clean_run_with_every_gate_armed_is_never_stopped() {
    let dir = TempDir::new("abort-clean");
    let sc = scenario(&dir, "", "abort = true", "8s");
    for round in 0..2 {
        let r = run(&sc, &[]);
        assert_eq!(r.code, 0, "round {round}: {}", r.context());
        let s = r.summary();
        assert!(s.findings.is_empty(), "round {round}: {:?}", s.findings);
        assert_eq!(s.phases.len(), 4);
    }
    // Fresh channels per call churn sockets without leaking them: not a trend either.
    let r = run(&repo("scenarios/channel-churn.toml"), &["--abort"]);
    assert_eq!(r.code, 0, "{}", r.context());
}

#[test]
fn a_gate_that_cannot_abort_is_a_usage_error() {
    let dir = TempDir::new("abort-bad");
    for (gates, needle) in [
        (
            "abort = [\"max_residual_fds\"]",
            "cannot be decided before the run ends",
        ),
        ("abort = [\"max_speed\"]", "is not a gate"),
        ("abort = \"yes\"", "abort"),
    ] {
        let sc = scenario(&dir, "", gates, "1s");
        let r = run(&sc, &[]);
        assert_eq!(r.code, 2, "{gates}: {}", r.context());
        assert!(
            r.stderr.contains(needle) && r.stderr.contains("gates"),
            "{gates}: {}",
            r.stderr
        );
    }
}
