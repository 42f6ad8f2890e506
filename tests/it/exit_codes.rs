//! The exit-code table (`fdsoak::error::Exit`), one row per code, each
//! reached one real way through the binary, and the stderr line that says
//! which kind of mistake a 2 is: a flag, a scenario key, or a named input.

use crate::common::*;
use fdsoak::error::Exit;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `fdsoak ARGS` to completion: (exit code, stderr).
fn fdsoak(args: &[&str]) -> (i32, String) {
    let o = Command::new(FDSOAK).args(args).stdin(Stdio::null()).output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into())
}

#[test]
fn the_codes_are_the_documented_numbers() {
    let table = [
        (Exit::Pass, 0),
        (Exit::Fail, 1),
        (Exit::Usage, 2),
        (Exit::RunError, 3),
        (Exit::Interrupted, 130),
    ];
    for (exit, code) in table {
        assert_eq!(exit.code(), code, "{exit:?}");
    }
}

#[test]
fn each_exit_code_has_a_way_to_reach_it() {
    let clean = repo("tests/fixtures/reports/clean");
    let leaky = repo("tests/fixtures/reports/leaky");
    let (clean, leaky) = (clean.to_str().unwrap(), leaky.to_str().unwrap());
    let dir = TempDir::new("exit-codes");

    // 0: a comparison that found no regression.
    let (code, err) = fdsoak(&["compare", clean, clean]);
    assert_eq!(code, 0, "{err}");

    // 1: a comparison that found one (a gate failed).
    let (code, err) = fdsoak(&["compare", clean, leaky]);
    assert_eq!(code, 1, "{err}");

    // 2, a flag: named as the flag, with no file or line.
    let quickstart = repo("scenarios/quickstart.toml");
    let (code, err) = fdsoak(&["run", quickstart.to_str().unwrap(), "--duration", "nosuch=5s"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("error: --duration: "), "{err}");

    // 2, a scenario key: file, line and key.
    let bad = dir.write(
        "bad.toml",
        "name = \"bad\"\n\n[[phases]]\nname = \"p\"\nduration = \"soon\"\n",
    );
    let (code, err) = fdsoak(&["validate", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.toml:5: key `phases[0].duration`"), "{err}");

    // 2, another named input: a report directory that holds no report.
    let (code, err) = fdsoak(&["report", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("summary.json"), "{err}");

    // 3: a run whose target never answers; the report says so.
    let nobody = dir.write(
        "nobody.toml",
        "name = \"nobody\"\n[target]\nready_timeout = \"1s\"\n[[phases]]\nname = \"p\"\nduration = \"1s\"\n",
    );
    let out = dir.path().join("nobody-report");
    let (code, err) = fdsoak(&[
        "run",
        nobody.to_str().unwrap(),
        "--target",
        "127.0.0.1:1",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(read_summary(&out).verdict.as_str(), "error");

    // 130: the user interrupted a run; the report is written and marked.
    let out = dir.path().join("interrupted-report");
    let mut run = Command::new(FDSOAK)
        .arg("run")
        .arg(repo("tests/scenarios/churn-short.toml"))
        .args(["--out", out.to_str().unwrap(), "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "target samples", || {
        sample_rows(&out, "target") >= 2
    });
    let pid = rustix::process::Pid::from_raw(run.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    assert_eq!(wait_exit(&mut run, Duration::from_secs(30)), 130);
    assert_eq!(read_summary(&out).verdict.as_str(), "interrupted");
}
