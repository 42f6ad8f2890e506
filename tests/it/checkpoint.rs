//! Checkpoints: a long run rewrites its report as it goes (verdict
//! `running`), and a run killed with SIGKILL leaves a report that `report`,
//! `compare` and `trend` read, marked `incomplete`, with the figures up to
//! its last checkpoint.

use crate::common::*;
use fdsoak::report::model::Verdict;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn a_soak_killed_with_sigkill_leaves_an_incomplete_report_that_every_reader_reads() {
    let dir = TempDir::new("ckpt");
    let sc = dir.write(
        "soak.toml",
        r#"name = "soak"
[target]
leak_fd_every = 10
[sampler]
interval = "250ms"
checkpoint = "1s"
[[phases]]
name = "baseline"
duration = "1s"
[[phases]]
name = "load"
duration = "120s"
  [[phases.workloads]]
  kind = "health_check"
  rate = 100
[[phases]]
name = "drain"
duration = "2s"
"#,
    );
    let out = TempDir::new("ckpt-out");
    let mut child = Command::new(FDSOAK)
        .arg("run")
        .arg(&sc)
        .arg("--out")
        .arg(out.path())
        .arg("-q")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let summary = out.path().join("summary.json");
    // While it runs, the checkpoint reads as running.
    wait_until(Duration::from_secs(60), "four checkpoints", || {
        fdsoak::report::json::read(&summary)
            .ok()
            .is_some_and(|s| s.checkpoint.as_ref().is_some_and(|c| c.count >= 4) && s.verdict == Verdict::Running)
    });
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();

    let s = read_summary(out.path());
    assert_eq!(s.verdict, Verdict::Incomplete, "the writer is gone");
    let c = s.checkpoint.clone().unwrap();
    assert!(c.at_secs >= 3.0 && c.planned_secs > 120.0, "{c:?}");
    let load = s.workloads.iter().find(|w| w.phase == "load").expect("the load so far");
    assert!(load.ok > 100, "{load:?}");
    let target = s
        .processes
        .iter()
        .find(|p| p.role == fdsoak::domain::Role::Target)
        .unwrap();
    assert!(target.final_fds > target.baseline_fds, "the leak so far: {target:?}");
    for file in ["summary.md", "report.html", "junit.xml", "latency.csv"] {
        assert!(out.path().join(file).exists(), "{file}");
    }
    let md = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert!(md.contains("Checkpoint"), "{md}");

    // `report` re-renders it from its files and says how far it got.
    let o = Command::new(FDSOAK).arg("report").arg(out.path()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert!(md.contains("INCOMPLETE") && md.contains("never finished"), "{md}");
    assert_eq!(read_summary(out.path()).verdict, Verdict::Incomplete);
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("never finished"));

    // `compare` and `trend` read it like any report (exit 0 or 1, never 2).
    let o = Command::new(FDSOAK)
        .arg("compare")
        .arg(out.path())
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let trend_out = TempDir::new("ckpt-trend");
    let o = Command::new(FDSOAK)
        .arg("trend")
        .arg(out.path())
        .arg(out.path())
        .arg("--out")
        .arg(trend_out.path())
        .output()
        .unwrap();
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_short_run_writes_no_checkpoint_and_ends_with_its_verdict() {
    let r = run(&repo("tests/scenarios/churn-short.toml"), &[]);
    assert_eq!(r.code, 0, "{}", r.context());
    let s = r.summary();
    assert!(s.checkpoint.is_none() && s.verdict == Verdict::Pass);
    // With checkpoints asked for, the final report still replaces the last one.
    let r = run(&repo("tests/scenarios/churn-short.toml"), &["--checkpoint", "1s"]);
    assert_eq!(r.code, 0, "{}", r.context());
    let s = r.summary();
    assert!(
        s.checkpoint.is_none() && s.verdict == Verdict::Pass,
        "{:?}",
        s.checkpoint
    );
}
