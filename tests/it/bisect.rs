//! `fdsoak bisect` over a git repository made here: sixteen commits of a
//! small grpcio health server, the eleventh starting to leak a file every
//! hundred checks, the seventh not building. The bisection names the
//! eleventh, each commit before it that it ran passed, the seventh was
//! skipped, and the user's working tree was never touched. Ends that are not
//! what they are named exit 1; Ctrl-C leaves the steps so far written.

use crate::common::*;
use fdsoak::bisect::record::{Outcome, Record, Role, StepVerdict};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The server at revision `k`: leaking from 11 on, with a syntax error at 7.
fn server_at(k: u32) -> String {
    let leak_every = if k >= 11 { 100 } else { 0 };
    let broken = if k == 7 { "def broken(:\n    pass\n" } else { "" };
    format!(
        r#""""A health server, revision {k}."""
import os
import sys
from concurrent import futures

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REVISION = {k}
AUDIT_EVERY = {leak_every}
kept = []
{broken}

class Health(health_pb2_grpc.HealthServicer):
    checks = 0

    def Check(self, request, context):
        Health.checks += 1
        if AUDIT_EVERY and Health.checks % AUDIT_EVERY == 0:
            kept.append(open(os.devnull))
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
server.add_insecure_port("127.0.0.1:" + sys.argv[1])
server.start()
print("revision", REVISION, "serving", flush=True)
server.wait_for_termination()
"#
    )
}

/// The repository: commit k (1 to 16) tagged r{k}, and an uncommitted edit on top.
fn make_repo(dir: &TempDir) -> std::path::PathBuf {
    let repo = dir.path().join("server");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "--quiet", "-b", "main"]);
    for k in 1..=16 {
        std::fs::write(repo.join("server.py"), server_at(k)).unwrap();
        git(&repo, &["add", "server.py"]);
        git(&repo, &["commit", "--quiet", "-m", &format!("revision {k}")]);
        git(&repo, &["tag", &format!("r{k}")]);
    }
    std::fs::write(repo.join("server.py"), "# work in progress\n").unwrap();
    repo
}

const SCENARIO: &str = r#"
name = "bisect-audit"

[sampler]
interval = "100ms"

[[phases]]
name = "baseline"
duration = "1s"

[[phases]]
name = "load"
duration = "3s"

  [[phases.workloads]]
  kind = "health_check"
  rate = 400
  channel = "shared"

[[phases]]
name = "drain"
duration = "1s"

[gates]
max_residual_fds = 5
"#;

fn bisect(dir: &TempDir, repo: &Path, ends: (&str, &str), out: &str) -> (Output, Record) {
    let scenario = dir.write("bisect.toml", SCENARIO);
    let out = dir.path().join(out);
    let o = Command::new(FDSOAK)
        .arg("bisect")
        .args([
            "--good",
            ends.0,
            "--bad",
            ends.1,
            "--build",
            "python3 -m py_compile server.py",
        ])
        .arg("--repo")
        .arg(repo)
        .arg(&scenario)
        .args(["--spawn", "python3 server.py {port}", "--out"])
        .arg(&out)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let record = serde_json::from_slice(&std::fs::read(out.join("bisect.json")).unwrap()).unwrap();
    (o, record)
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The user's repository as bisect must leave it: HEAD on main, the edit still there, one worktree.
fn assert_untouched(repo: &Path, head: &str) {
    assert_eq!(git(repo, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(repo, &["status", "--porcelain"]), "M server.py");
    assert_eq!(
        git(repo, &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );
}

#[test]
fn bisect_names_the_commit_that_began_to_leak_skipping_one_that_does_not_build() {
    let dir = TempDir::new("bisect");
    let repo = make_repo(&dir);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let (o, r) = bisect(&dir, &repo, ("r1", "r13"), "found");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let sha = |k: u32| git(&repo, &["rev-parse", &format!("r{k}")]);
    match &r.outcome {
        Outcome::Found {
            commit,
            subject,
            finding,
        } => {
            assert_eq!((commit, subject.as_str()), (&sha(11), "revision 11"), "{r:#?}");
            assert!(finding.as_deref().is_some_and(|f| f.contains("FD")), "{r:#?}");
        }
        other => panic!("not found: {other:?}\n{}", text(&o)),
    }
    assert!(r.candidate_runs() <= 5, "{} candidate runs: {r:#?}", r.candidate_runs());
    for s in &r.steps {
        let k: u32 = s.subject.trim_start_matches("revision ").parse().unwrap();
        let want = match k {
            7 => StepVerdict::Skip,
            k if k < 11 => StepVerdict::Good,
            _ => StepVerdict::Bad,
        };
        assert_eq!(s.verdict, want, "revision {k}: {s:?}");
        // Every run it made left its report, labelled with the commit.
        for run in &s.runs {
            let summary = read_summary(&Path::new(&dir.path().join("found")).join(&run.report));
            assert_eq!(summary.label.as_deref(), Some(s.commit.as_str()));
            // …and what that commit's server wrote, in its own target.log.
            let log = dir.path().join("found").join(&run.report).join("target.log");
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(log.contains(&format!("stdout] revision {k} serving")), "{s:?}: {log}");
        }
    }
    let seven = r.steps.iter().find(|s| s.subject == "revision 7").expect("7 tried");
    assert!(seven.runs.is_empty() && seven.build_log.is_some(), "{seven:?}");
    let log = std::fs::read_to_string(dir.path().join("found").join(seven.build_log.as_ref().unwrap())).unwrap();
    assert!(log.contains("SyntaxError"), "{log}");
    assert_eq!(r.steps[0].role, Role::BadEnd);
    let md = std::fs::read_to_string(dir.path().join("found/bisect.md")).unwrap();
    assert!(md.contains(&format!("first bad commit: {}", &sha(11)[..10])), "{md}");
    assert!(text(&o).contains("revision 11"), "{}", text(&o));
    assert_untouched(&repo, &head);
}

#[test]
fn bisect_exits_1_when_the_bad_end_passes_2_for_a_bad_range_and_130_with_its_steps_on_ctrl_c() {
    let dir = TempDir::new("bisect-ends");
    let repo = make_repo(&dir);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let (o, r) = bisect(&dir, &repo, ("r1", "r5"), "clean");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(r.outcome, Outcome::BadEndPasses);
    assert_eq!(r.steps.len(), 1, "the good end is not run when the bad end passes");

    let scenario = dir.write("bisect.toml", SCENARIO);
    let o = Command::new(FDSOAK)
        .args(["bisect", "--good", "r9", "--bad", "r3", "--repo"])
        .arg(&repo)
        .arg(&scenario)
        .args(["--spawn", "python3 server.py {port}"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--good") && text(&o).contains("not an ancestor"),
        "{}",
        text(&o)
    );

    // Ctrl-C during the first run: the step is written as interrupted, the worktree gone.
    let out = dir.path().join("stopped");
    let mut child = Command::new(FDSOAK)
        .args(["bisect", "--good", "r1", "--bad", "r16", "--repo"])
        .arg(&repo)
        .arg(&scenario)
        .args(["--spawn", "python3 server.py {port}", "--out"])
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "the first run's samples", || {
        sample_rows(
            &out.join(format!("runs/01-{}", &git(&repo, &["rev-parse", "r16"])[..10])),
            "target",
        ) > 3
    });
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(30)), 130);
    let r: Record = serde_json::from_slice(&std::fs::read(out.join("bisect.json")).unwrap()).unwrap();
    assert_eq!(r.outcome, Outcome::Interrupted);
    assert_eq!(r.steps.len(), 1);
    assert_eq!(r.steps[0].verdict, StepVerdict::Interrupted);
    assert!(out.join("bisect.md").exists());
    assert_untouched(&repo, &head);
}

#[test]
fn over_merges_the_candidates_are_the_first_parent_line_when_the_good_end_is_on_it() {
    let dir = TempDir::new("bisect-merges");
    let repo = dir.path();
    git(repo, &["init", "--quiet", "-b", "main"]);
    let commit = |name: &str| {
        std::fs::write(repo.join(name), name).unwrap();
        git(repo, &["add", name]);
        git(repo, &["commit", "--quiet", "-m", name]);
        git(repo, &["rev-parse", "HEAD"])
    };
    commit("base");
    git(repo, &["checkout", "--quiet", "-b", "feature"]);
    commit("f1");
    commit("f2");
    git(repo, &["checkout", "--quiet", "main"]);
    commit("m1");
    git(repo, &["merge", "--quiet", "--no-ff", "-m", "merge feature", "feature"]);
    let at = |rev: &str| fdsoak::bisect::git::resolve(repo, rev).unwrap();
    let subjects = |good: &str| -> Vec<String> {
        let line = fdsoak::bisect::git::between(repo, &at(good), &at("main")).unwrap();
        line.into_iter().map(|c| c.subject).collect()
    };
    assert_eq!(subjects("main~2"), ["m1", "merge feature"], "main's own line");
    assert_eq!(
        subjects("feature~1"),
        ["f2", "merge feature"],
        "from a branch: the ancestry path"
    );
}
