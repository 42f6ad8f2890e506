//! Blame on the right process, with real processes: a grpcio client that
//! leaks a channel per failed check, under the fault proxy's blackholes and
//! resets, against the built-in target. The client fails for its leak; the
//! target's sockets are the server ends of those connections, so its finding
//! is a note naming the client (by its pid) as their holder, and none of its
//! gates fails, unless `--max-held-by-peer` asks. The good checker leaves no
//! such note. The driver's own leak (`per_call_leak`) is in tests/it/leaks.rs.

use crate::common::*;
use fdsoak::domain::{FindingKind, Gate};

fn checker(mode: &str) -> String {
    format!(
        "python3 {} {{addr}} {mode}",
        repo("tests/programs/checker.py").display()
    )
}

fn run_checker(mode: &str, extra: &[&str]) -> RunResult {
    let scenario = repo("scenarios/client-retry-on-reset.toml");
    // A leak per failed check is a handful here: judge residuals tightly, for every process.
    let mut args = vec!["--max-residual-fds", "2", "--client"];
    let client = checker(mode);
    args.push(&client);
    args.extend(extra);
    run(&scenario, &args)
}

#[test]
fn the_target_holding_a_leaky_clients_connections_names_it_and_fails_no_gate() {
    let (leaky, judged, good) = std::thread::scope(|s| {
        let leaky = s.spawn(|| run_checker("retry-leak", &[]));
        let judged = s.spawn(|| run_checker("retry-leak", &["--max-held-by-peer", "0"]));
        let good = s.spawn(|| run_checker("good", &[]));
        (leaky.join().unwrap(), judged.join().unwrap(), good.join().unwrap())
    });

    assert_eq!(leaky.code, 1, "{}", leaky.context());
    let s = leaky.summary();
    let client_pid = s.client.as_ref().unwrap().pid;
    assert!(
        leaky
            .finding_kinds("client")
            .iter()
            .any(|k| k == "residual_fds" || k == "fd_growth"),
        "the client fails for its leak: {}",
        leaky.context()
    );
    assert_eq!(
        leaky.finding_kinds("target"),
        vec!["held_by_peer".to_string()],
        "{}",
        leaky.context()
    );
    let note = leaky.finding("target", "held_by_peer");
    let holder = format!("held open by the client (pid {client_pid}), whose +");
    assert!(
        note.contains(&holder) && note.contains("leaked connections they are"),
        "{note}"
    );
    let failed: Vec<_> = s.checks.iter().filter(|c| c.subject == "target" && !c.passed).collect();
    assert!(failed.is_empty(), "the target's gates pass: {failed:?}");
    let target = leaky.process("target");
    assert!(
        target.residual_fds > 2,
        "the sockets are still counted, only not blamed: {target:?}"
    );
    assert_eq!(target.held_fds(), target.held[0].count as i64);
    assert!(
        leaky.stdout.contains(&format!("○ {note}")),
        "a note, not a failure: {}",
        leaky.stdout
    );

    // Asked to judge them: the target fails too, on its own gate.
    assert_eq!(judged.code, 1, "{}", judged.context());
    let s = judged.summary();
    let check = s
        .checks
        .iter()
        .find(|c| c.gate == Gate::MaxHeldByPeer && c.subject == "target");
    assert!(check.is_some_and(|c| !c.passed), "{:?}", s.checks);
    let note = judged.finding("target", "held_by_peer");
    assert!(note.ends_with("(more than max_held_by_peer allows)"), "{note}");
    assert!(!s.is_note(s.findings.iter().find(|f| f.kind == FindingKind::HeldByPeer).unwrap()));

    assert_eq!(good.code, 0, "{}", good.context());
    assert!(good.summary().findings.is_empty(), "{}", good.context());
}
