//! One test per bug found by trying fdsoak as a new user would (issue 8):
//! each failed on the code before the fix.

use crate::common::*;
use fdsoak::series::{read_rows, ThroughputRow};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const HUGE_PHASE: &str = r#"name = "huge"

[[phases]]
name = "baseline"
duration = "300000000000y"
"#;

/// A duration no clock can hold is a file:line: key error, for validate and run alike, not a panic.
#[test]
fn an_absurd_duration_is_a_located_error_not_a_panic() {
    let dir = TempDir::new("huge");
    let file = dir.write("huge.toml", HUGE_PHASE);
    for args in [vec!["validate"], vec!["run", "--out"]] {
        let mut cmd = Command::new(FDSOAK);
        cmd.args(&args);
        if args[0] == "run" {
            cmd.arg(dir.path().join("out"));
        }
        let o = cmd.arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("huge.toml:5: key `phases[0].duration`") && stderr.contains("longest allowed"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// `compare`'s defaults are `Tolerances::default()`, whatever the help says.
#[test]
fn compare_flags_default_to_the_documented_tolerances() {
    use clap::Parser;
    let cli = fdsoak::cli::Cli::try_parse_from(["fdsoak", "compare", "a", "b"]).unwrap();
    let fdsoak::cli::Command::Compare(c) = cli.command else {
        panic!("not a compare command");
    };
    assert_eq!(c.tolerances, fdsoak::compare::Tolerances::default());
    let help = Command::new(FDSOAK).args(["compare", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[default: 1]"), "{help}");
}

fn copy_fixture(name: &str, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    for f in ["summary.json", "samples.csv", "throughput.csv"] {
        std::fs::copy(repo(&format!("tests/fixtures/reports/{name}/{f}")), into.join(f)).unwrap();
    }
}

/// A merged throughput.csv keeps the latency columns, so the merged report's latency chart has data.
#[test]
fn merge_keeps_latency_columns_and_refuses_unparseable_values() {
    let dir = TempDir::new("merge");
    let (a, b, out) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("out"));
    copy_fixture("clean", &a);
    copy_fixture("clean", &b);
    let o = Command::new(FDSOAK)
        .arg("merge")
        .args([&a, &b])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<ThroughputRow> = read_rows(&out.join("throughput.csv"))
        .unwrap()
        .collect::<anyhow::Result<_>>()
        .unwrap();
    assert!(rows.iter().filter(|r| r.p99_us.is_some()).count() > 10, "{rows:?}");
    let inputs: Vec<ThroughputRow> = read_rows(&a.join("throughput.csv"))
        .unwrap()
        .collect::<anyhow::Result<_>>()
        .unwrap();
    let last_ok = |rows: &[ThroughputRow]| rows.last().map(|r| r.ok).unwrap();
    assert_eq!(last_ok(&rows), 2 * last_ok(&inputs));

    // A value that does not parse is an error naming the file and line, never a zero.
    let text = std::fs::read_to_string(b.join("throughput.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let fields: Vec<&str> = lines[3].split(',').collect();
    let mut bad = fields.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    bad[4] = "lots".into();
    lines[3] = bad.join(",");
    std::fs::write(b.join("throughput.csv"), lines.join("\n") + "\n").unwrap();
    let o = Command::new(FDSOAK)
        .arg("merge")
        .args([&a, &b])
        .arg("--out")
        .arg(dir.path().join("out2"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("throughput.csv line 4"), "{stderr}");
}

/// Runs fdsoak with a file-size limit so that every report write fails, as on a full disk.
fn with_full_disk(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let mut cmd = Command::new(FDSOAK);
    cmd.args(args).stdin(Stdio::null());
    // SAFETY: signal and setrlimit are async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: 512,
                rlim_max: 512,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

/// A report that cannot be written exits 3 (not 2), and leaves no temporary file behind.
#[test]
fn write_failures_exit_3_and_leave_no_temporary_files() {
    let dir = TempDir::new("full");
    let rep = dir.path().join("rep");
    copy_fixture("leaky", &rep);
    let o = with_full_disk(&["report".as_ref(), rep.as_os_str()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("File too large") || stderr.contains("writing"),
        "{stderr}"
    );
    assert_eq!(leftovers(&rep), Vec::<String>::new());

    let (a, out) = (dir.path().join("a"), dir.path().join("merged"));
    copy_fixture("clean", &a);
    let o = with_full_disk(&[
        "merge".as_ref(),
        a.as_os_str(),
        rep.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(leftovers(&out), Vec::<String>::new());

    // Reading a report that is not there is the user's to fix: exit 2.
    let missing = dir.path().join("missing");
    for args in [
        vec!["report".as_ref(), missing.as_os_str()],
        vec!["compare".as_ref(), missing.as_os_str(), rep.as_os_str()],
    ] {
        let o = Command::new(FDSOAK).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
}

fn target_pid(report: &Path) -> Option<i32> {
    samples(report)
        .into_iter()
        .find(|r| r.role == fdsoak::domain::Role::Target)
        .map(|r| r.pid)
}

fn alive(pid: i32) -> bool {
    // A zombie waiting for its reaper is as dead as it gets.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// SIGKILL on `fdsoak run` takes the target it started with it, built-in or spawned.
#[test]
fn a_killed_run_takes_its_target_with_it() {
    let dir = TempDir::new("orphan");
    let scenario = dir.write(
        "long.toml",
        "name = \"long\"\n[sampler]\ninterval = \"50ms\"\n[[phases]]\nname = \"wait\"\nduration = \"10m\"\n",
    );
    let spawn = format!("{FDSOAK} serve --port {{port}}");
    for extra in [vec![], vec!["--spawn", spawn.as_str()]] {
        let out = dir.path().join(format!("out{}", extra.len()));
        let mut run = Command::new(FDSOAK)
            .arg("run")
            .arg(&scenario)
            .arg("--out")
            .arg(&out)
            .arg("-q")
            .args(&extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut pid = None;
        wait_until(Duration::from_secs(30), "the target's first sample", || {
            pid = target_pid(&out);
            pid.is_some()
        });
        let pid = pid.unwrap();
        assert!(alive(pid));
        run.kill().unwrap();
        run.wait().unwrap();
        wait_until(Duration::from_secs(10), "the orphaned target to die", || !alive(pid));
    }
}

/// The declared rust-version is at least what every dependency in the lock file needs
/// (tonic 0.14.9 needs 1.88; uuid, through quick-junit, needs 1.89).
#[test]
fn rust_version_covers_every_dependency() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let platform = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let metadata = |offline: bool| {
        let mut cmd = Command::new(&cargo);
        cmd.args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
            &platform,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
        if offline {
            cmd.arg("--offline");
        }
        cmd.output().unwrap()
    };
    // Offline when the build has fetched everything; from the registry when a manifest is missing.
    let mut o = metadata(true);
    if !o.status.success() {
        o = metadata(false);
    }
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let version = |s: &str| -> Vec<u64> {
        let mut v: Vec<u64> = s.split('.').map(|p| p.parse().unwrap_or(0)).collect();
        v.resize(3, 0);
        v
    };
    let ours = version(env!("CARGO_PKG_RUST_VERSION"));
    for p in meta["packages"].as_array().unwrap() {
        if let Some(needs) = p["rust_version"].as_str() {
            assert!(
                version(needs) <= ours,
                "{} needs rustc {needs}; Cargo.toml says {}",
                p["name"],
                env!("CARGO_PKG_RUST_VERSION")
            );
        }
    }
}
