//! What the processes fdsoak starts wrote is kept in the report: a spawned
//! target's stdout and stderr in `target.log` (each line with its time and
//! stream; a metadata token it echoes redacted), a client's in `client.log`,
//! and a client that writes without stopping stays within the log's bound.

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
    let sc = scenario(
        &dir,
        "[client]\ncommand = \"sh -c 'echo client says hello; while :; do echo again; done'\"",
    );
    let r = run(&sc, &[]);
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
        lines <= fdsoak::child::LOG_HEAD + fdsoak::child::LOG_LAST + 1,
        "{lines} lines kept"
    );
    assert!(log.contains(" lines ("), "no line says what was cut");
    assert!(r.out.path().join("target.log").exists(), "the built-in target's log");
}
