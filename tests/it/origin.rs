//! Origins (`--origin`) against real Python programs using grpcio from PyPI
//! (`.ci/run` installs it): the line that opened what leaked is named, in
//! the finding and in summary.json, for a client and for servers; a clean
//! pair passes as it does without origins; an attached target is said to
//! carry no agent; the agents' files are gone after the run.

use crate::common::*;
use std::path::Path;

/// The 1-based line of `file` holding `needle`.
fn line_of(file: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(repo(file)).unwrap();
    1 + text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{file} has no {needle:?}"))
}

/// Stalls that fail a client's checks while its connections stay up.
fn stalls(dir: &TempDir) -> std::path::PathBuf {
    dir.write(
        "stalls.toml",
        "name = \"stalls\"\n[client]\ncommand = \"true\"\n[sampler]\ninterval = \"200ms\"\n\
         [[phases]]\nname = \"baseline\"\nduration = \"3s\"\n\
         [[phases]]\nname = \"stalls\"\nduration = \"10s\"\n  [[phases.faults]]\n  kind = \"blackhole\"\n  every = \"1500ms\"\n  duration = \"900ms\"\n\
         [[phases]]\nname = \"drain\"\nduration = \"2s\"\n",
    )
}

fn python(program: &str, args: &str) -> String {
    format!(
        "python3 {} {args}",
        repo(&format!("tests/programs/{program}")).display()
    )
}

/// No agent directory of fdsoak's is left in `tmp`.
fn no_agent_files(tmp: &Path) {
    let left: Vec<_> = std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("fdsoak-origin-"))
        .collect();
    assert!(left.is_empty(), "agent files left behind: {left:?}");
}

#[test]
fn a_python_checker_that_leaks_a_channel_per_retry_is_named_at_its_insecure_channel_line() {
    let dir = TempDir::new("origin-checker");
    let line = line_of("tests/programs/checker.py", "grpc.insecure_channel(");
    let r = run(
        &stalls(&dir),
        &["--origin", "--client", &python("checker.py", "{addr} retry-leak")],
    );
    assert_eq!(r.code, 1, "{}", r.context());
    let want = format!("checker.py:{line} in new_channel");
    assert!(r.stdout.contains(&want), "no {want:?} in the findings: {}", r.context());
    let g = r.top_group("client");
    let o = g
        .origins
        .first()
        .unwrap_or_else(|| panic!("no origins: {}", r.context()));
    assert_eq!(o.stack.via, fdsoak::vocab::OriginVia::Channel);
    assert!(o.count >= 3, "{o:?}");
    let top = o.stack.top_user_frame().unwrap();
    assert_eq!((top.line as usize, top.function.as_str()), (line, "new_channel"));
    // The frames above it are the program's own too: the retry path that called it.
    assert!(o.stack.frames.iter().any(|f| f.function == "check_with_retry"), "{o:?}");
}

#[test]
fn python_servers_that_leak_files_or_backend_channels_are_named_at_the_line() {
    let dir = TempDir::new("origin-server");
    let short = fixture(
        &dir,
        "churn-short.toml",
        &[("channel = \"per_call\"", "channel = \"shared\"")],
    );
    for (mode, needle, function) in [
        ("leak-file 10", "kept.append(open(", "Check"),
        ("backend-channel", "backend = grpc.insecure_channel(", "Check"),
    ] {
        let line = line_of("tests/programs/server.py", needle);
        let spawn = python("server.py", &format!("{{port}} {mode}"));
        let r = run(&short, &["--origin", "--spawn", &spawn, "--nofile", "4096"]);
        assert_eq!(r.code, 1, "{mode}: {}", r.context());
        let want = format!("server.py:{line} in {function}");
        assert!(r.stdout.contains(&want), "{mode}: no {want:?}: {}", r.context());
        let s = r.summary();
        let origin = s.origin.as_ref().unwrap();
        assert!(
            origin.notes.is_empty(),
            "{mode}: the Python target published its table: {origin:?}"
        );
    }
}

#[test]
fn origins_change_no_verdict_of_a_clean_pair_and_leave_no_files() {
    let dir = TempDir::new("origin-clean");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let short = fixture(
        &dir,
        "churn-short.toml",
        &[("channel = \"per_call\"", "channel = \"shared\"")],
    );
    for _ in 0..2 {
        let out = dir.path().join("report");
        let o = std::process::Command::new(FDSOAK)
            .arg("run")
            .arg(&short)
            .args(["--origin", "-q", "--out", out.to_str().unwrap(), "--spawn"])
            .arg(python("server.py", "{port} clean"))
            .env("TMPDIR", &tmp)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
        let s = read_summary(&out);
        assert_eq!(s.origin.as_ref().unwrap().agents, vec![fdsoak::vocab::Role::Target]);
        no_agent_files(&tmp);
        std::fs::remove_dir_all(&out).unwrap();
    }
    // The good checker, through stalls, with its agent: still flat.
    let r = run(
        &stalls(&dir),
        &["--origin", "--client", &python("checker.py", "{addr} good")],
    );
    assert_eq!(r.code, 0, "{}", r.context());
}

#[test]
fn an_attached_target_is_said_to_carry_no_agent() {
    let server = Server::start(&[]);
    let short = repo("tests/scenarios/churn-short.toml");
    let r = run(&short, &["--origin", "--target", &server.addr.to_string()]);
    assert_eq!(r.code, 0, "{}", r.context());
    let note = "origins need a process fdsoak starts";
    assert!(r.stdout.contains(note), "not said in the terminal: {}", r.context());
    let s = r.summary();
    let origin = s.origin.unwrap();
    assert!(origin.agents.is_empty());
    assert!(origin.notes.iter().any(|n| n.contains(note)), "{origin:?}");
}
