//! What the processes fdsoak starts wrote is kept in the report: a spawned
//! target's stdout and stderr in `target.log` (each line with its time and
//! stream; a metadata token it echoes redacted), a client's in `client.log`,
//! and a client that writes without stopping for a minute stays within the log's bound.

use crate::common::*;

/// Baseline, load and drain, short; `extra` is more of the scenario (a client, metadata).
fn scenario(dir: &TempDir, extra: &str) -> std::path::PathBuf {
    dir.write(
        "short.toml",
        &format!(
            "name = \"output\"\n{extra}\n[sampler]\ninterval = \"200ms\"\n\
             [[phases]]\nname = \"baseline\"\nduration = \"1s\"\n\
             [[phases]]\nname = \"load\"\nduration = \"2s\"\n  [[phases.workloads]]\n  kind = \"health_check\"\n  rate = 20\n\
             [[phases]]\nname = \"drain\"\nduration = \"1s\"\n"
        ),
    )
}

#[test]
fn a_spawned_targets_output_is_in_target_log_by_time_and_stream_with_its_secret_redacted() {
    let dir = TempDir::new("output-target");
    let sc = scenario(&dir, "metadata = { authorization = \"Bearer s3cr3t-t0ken\" }");
    // The server prints the header's value and the token alone, read from files: the
    // command line (which the report shows) holds neither.
    let header = dir.write("header.txt", "warning: saw Bearer s3cr3t-t0ken\n");
    let token = dir.write("token.txt", "token s3cr3t-t0ken\n");
    let spawn = format!(
        "sh -c 'echo hello on stdout; cat {} {} >&2; exec {FDSOAK} serve --port {{port}}'",
        header.display(),
        token.display()
    );
    let r = run(&sc, &["--spawn", &spawn]);
    assert_eq!(r.code, 0, "{}", r.context());
    let log = std::fs::read_to_string(r.out.path().join("target.log")).unwrap();
    let line = |stream: &str, text: &str| {
        log.lines()
            .any(|l| l.starts_with("[+") && l.contains(&format!("s {stream}] ")) && l.ends_with(text))
    };
    assert!(line("stdout", "hello on stdout"), "{log}");
    assert!(line("stderr", "warning: saw <redacted>"), "{log}");
    assert!(line("stderr", "token <redacted>"), "the credential alone: {log}");
    assert!(
        log.lines()
            .any(|l| l.contains("stdout] ") && l.contains(" listening on 127.0.0.1:")),
        "{log}"
    );
    // Nothing of the report's holds it.
    for entry in std::fs::read_dir(r.out.path()).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("s3cr3t-t0ken"),
            "the token is in {}",
            entry.path().display()
        );
    }
    assert!(!r.out.path().join("client.log").exists(), "no client, no client.log");
}

#[test]
fn a_clients_output_is_in_client_log_and_a_client_that_never_stops_writing_stays_bounded() {
    let dir = TempDir::new("output-client");
    // For a minute, about 20,000 lines a second on both streams (paced, so that it
    // does not take a core from the tests beside it): some 1.2 million lines.
    let writer = dir.write(
        "writer.py",
        "import sys, time\nprint('client says hello', flush=True)\nn = 0\nwhile True:\n    for _ in range(100):\n        n += 1\n        print('again', n, 'x' * 60)\n        print('and on stderr', n, file=sys.stderr)\n    sys.stdout.flush(); sys.stderr.flush()\n    time.sleep(0.01)\n",
    );
    let sc = scenario(&dir, &format!("[client]\ncommand = \"python3 {}\"", writer.display()));
    let r = run(&sc, &["--duration", "load=60s"]);
    assert!(r.code == 0 || r.code == 1, "{}", r.context());
    let log = std::fs::read_to_string(r.out.path().join("client.log")).unwrap();
    assert!(
        log.lines()
            .next()
            .unwrap_or_default()
            .ends_with("stdout] client says hello"),
        "{:.300}",
        log
    );
    let lines = log.lines().count();
    assert!(
        lines <= fdsoak::child::output::LOG_HEAD + fdsoak::child::output::LOG_LAST + 1,
        "{lines} lines kept"
    );
    assert!(log.contains(" lines ("), "no line says what was cut");
    let cut: u64 = log
        .lines()
        .find_map(|l| l.strip_prefix("[… ")?.split(' ').next()?.parse().ok())
        .unwrap_or_default();
    assert!(cut > 200_000, "a minute's writing was mostly cut: {cut} lines");
    let bytes = std::fs::metadata(r.out.path().join("client.log")).unwrap().len();
    assert!(bytes < 2_000_000, "client.log is {bytes} bytes");
    // The end is the end: its last line is among the last it wrote.
    assert!(
        log.lines().last().unwrap_or_default().contains("] a"),
        "{:.300}",
        log.lines().last().unwrap_or_default()
    );
    assert!(r.out.path().join("target.log").exists(), "the built-in target's log");
}

#[test]
fn a_target_that_dies_leaves_its_last_words_in_the_terminal_and_every_report_file() {
    let dir = TempDir::new("output-dies");
    let sc = scenario(&dir, "");
    let spawn = format!(
        "python3 {} {{port}} die-after 10",
        repo("tests/programs/server.py").display()
    );
    let r = run(&sc, &["--spawn", &spawn]);
    assert_eq!(r.code, 3, "a dead target is an error: {}", r.context());
    let fatal = "FATAL: connection pool exhausted: too many open files (pool=db-main)";
    // The terminal: the death with its status, then its last lines with the log's path.
    assert!(r.stdout.contains("exit status: 17"), "{}", r.context());
    assert!(r.stdout.contains("the last lines the target wrote"), "{}", r.context());
    assert!(r.stdout.contains(&format!("    | {fatal}")), "{}", r.context());
    assert!(r
        .stdout
        .contains(&r.out.path().join("target.log").display().to_string()));
    // Its complaint, in one sentence.
    assert!(
        r.stdout.contains("○ the target wrote 'Too many open files' once"),
        "{}",
        r.context()
    );
    for file in ["summary.md", "report.html", "target.log"] {
        let text = std::fs::read_to_string(r.out.path().join(file)).unwrap();
        assert!(text.contains(fatal), "{file} lacks the last words");
        assert!(text.contains("pool db-main: 64 of 64"), "{file} lacks the line before");
    }
    let s = r.summary();
    let target = &s.output[0];
    assert_eq!(
        (target.role, target.log.as_str()),
        (fdsoak::domain::Role::Target, "target.log")
    );
    assert_eq!(target.last_lines.last().map(String::as_str), Some(fatal));
    assert_eq!(s.files.get("target_log").map(String::as_str), Some("target.log"));
}

#[test]
fn a_target_that_never_becomes_ready_keeps_its_log_and_last_lines() {
    let dir = TempDir::new("output-not-ready");
    let sc = scenario(&dir, "");
    let spawn =
        "sh -c 'echo loading config for port {port}; echo \"open /var/lib/app: too many open files\" >&2; exit 17'";
    let r = run(&sc, &["--spawn", spawn]);
    assert_eq!(r.code, 3, "{}", r.context());
    assert!(
        r.stdout.contains("exited before it was ready (exit status: 17)"),
        "{}",
        r.context()
    );
    assert!(
        r.stdout.contains("    | open /var/lib/app: too many open files"),
        "{}",
        r.context()
    );
    let log = std::fs::read_to_string(r.out.path().join("target.log")).unwrap();
    assert!(
        log.contains("stdout] loading config") && log.contains("stderr] open /var/lib/app"),
        "{log}"
    );
    let md = std::fs::read_to_string(r.out.path().join("summary.md")).unwrap();
    assert!(md.contains("```text\nloading config for port "), "{md}");
    let s = r.summary();
    let last = &s.output[0].last_lines;
    assert_eq!(last.len(), 2, "{last:?}");
    assert!(last[0].starts_with("loading config for port "), "{last:?}");
    assert_eq!(last[1], "open /var/lib/app: too many open files");
}

#[test]
fn a_passing_run_keeps_no_last_lines_in_the_report() {
    let dir = TempDir::new("output-quiet");
    let sc = scenario(&dir, "");
    let r = run(&sc, &["--show-output"]);
    assert_eq!(r.code, 0, "{}", r.context());
    // Shown as it came, each line marked with its process…
    assert!(
        r.stderr.contains("[target] ") && r.stderr.contains("listening on"),
        "{}",
        r.context()
    );
    // …and kept in the log, but not in the report: nothing needed explaining.
    let s = r.summary();
    assert!(s.output.iter().all(|o| o.last_lines.is_empty()), "{:?}", s.output);
    assert!(!r.stdout.contains("the last lines"), "{}", r.context());
}
