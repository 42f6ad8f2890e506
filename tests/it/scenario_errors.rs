//! Bad input through the real binary: one clear error naming the file, the
//! line and the key; exit code 2; never a panic.

use crate::common::*;
use std::process::Command;

const GOOD: &str = "name = \"t\"\n\n[[phases]]\nname = \"load\"\nduration = \"2s\"\n\n  [[phases.workloads]]\n  kind = \"health_check\"\n  rate = 10\n";

fn check(label: &str, text: &str, line: usize, key: &str) {
    let dir = TempDir::new("bad");
    let file = dir.write("bad.toml", text);
    for sub in ["run", "validate"] {
        let o = Command::new(FDSOAK).arg(sub).arg(&file).arg("--help").output().unwrap();
        assert!(o.status.success(), "{sub} --help");
        let o = Command::new(FDSOAK).arg(sub).arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{label} ({sub}): {stderr}");
        assert!(!stderr.contains("panicked"), "{label}: {stderr}");
        let want = format!("{}:{line}: key `{key}`", file.display());
        assert!(stderr.contains(&want), "{label} ({sub}): want {want:?} in {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{label}: one error, one line: {stderr}"
        );
    }
}

#[test]
fn malformed_toml() {
    check("malformed", &GOOD.replace("rate = 10", "rate = [10"), 9, "rate");
}

#[test]
fn unknown_key() {
    check(
        "unknown key",
        &GOOD.replace("rate = 10", "rate = 10\n  burst = 3"),
        10,
        "phases[0].workloads[0].burst",
    );
}

#[test]
fn negative_rate() {
    check(
        "negative rate",
        &GOOD.replace("rate = 10", "rate = -1"),
        9,
        "phases[0].workloads[0].rate",
    );
}

#[test]
fn zero_duration() {
    check(
        "zero duration",
        &GOOD.replace("\"2s\"", "\"0s\""),
        5,
        "phases[0].duration",
    );
}

#[test]
fn unknown_workload_kind() {
    check(
        "unknown kind",
        &GOOD.replace("\"health_check\"", "\"ping_flood\""),
        8,
        "phases[0].workloads[0].kind",
    );
}

#[test]
fn a_missing_file_is_a_usage_error() {
    let o = Command::new(FDSOAK)
        .args(["run", "/nonexistent/x.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/x.toml: cannot read"));
}

#[test]
fn a_spawn_override_without_a_port_placeholder_is_a_usage_error() {
    let o = Command::new(FDSOAK)
        .args([
            "run",
            repo("scenarios/quickstart.toml").to_str().unwrap(),
            "--spawn",
            "./server",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--spawn: must contain the {port} placeholder"));
}

#[test]
fn shipped_scenarios_validate() {
    let mut cmd = Command::new(FDSOAK);
    cmd.arg("validate");
    for e in std::fs::read_dir(repo("scenarios")).unwrap() {
        cmd.arg(e.unwrap().path());
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
