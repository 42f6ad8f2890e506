//! The client under test, with real processes: fdsoak serves the reference
//! client through the fault proxy and judges its descriptors. A good client
//! passes every client scenario; a client that leaks a channel per failed
//! check passes until a fault makes a check fail; one that leaks a channel
//! per check always fails. Nothing fdsoak started survives a run.

use crate::common::*;
use fdsoak::domain::FindingKind;

const CLIENT_SCENARIOS: [&str; 3] = [
    "client-retry-on-reset",
    "client-server-restart",
    "client-not-serving-flap",
];

fn demo(mode: &str) -> String {
    format!("{{fdsoak}} client-demo --mode {mode} --interval 100ms --deadline 300ms")
}

/// Processes still alive in the process group led by `pid` (the group fdsoak gave a child).
fn group_members(pid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                // After "(comm)": state, ppid, pgrp.
                let rest: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
                rest.first() != Some(&"Z") && rest.get(2) == Some(&pid.to_string().as_str())
            })
        })
        .collect()
}

/// Runs a client scenario and checks that neither the client nor the target outlived it.
fn run_client(scenario: &std::path::Path, mode: &str) -> RunResult {
    let r = run(scenario, &["--client", &demo(mode)]);
    let s = r.summary();
    let client = s
        .client
        .as_ref()
        .unwrap_or_else(|| panic!("no client in the report: {}", r.context()));
    assert!(client.command.contains(&format!("--mode {mode}")), "{client:?}");
    for (who, pid) in [("client", client.pid), ("target", s.target.pid.unwrap())] {
        assert!(group_members(pid).is_empty(), "{who} group {pid} outlived the run");
    }
    r
}

#[test]
fn a_good_client_passes_every_client_scenario_repeatedly() {
    for round in 0..2 {
        for name in CLIENT_SCENARIOS {
            let r = run_client(&repo(&format!("scenarios/{name}.toml")), "good");
            assert_eq!(r.code, 0, "round {round}, {name}: {}", r.context());
            assert!(r.finding_kinds("client").is_empty(), "{name}: {}", r.context());
            let client = r.process("client");
            assert!(client.samples > 50, "{name}: the client was sampled: {client:?}");
        }
    }
}

#[test]
fn a_retry_leak_passes_without_faults_and_is_caught_by_them() {
    let dir = TempDir::new("retry-leak");
    let quiet = fixture(&dir, "client-short.toml", &[]);
    let r = run_client(&quiet, "retry-leak");
    assert_eq!(r.code, 0, "no fault, no failed check, no leak: {}", r.context());

    let r = run_client(&repo("scenarios/client-retry-on-reset.toml"), "retry-leak");
    assert_eq!(r.code, 1, "{}", r.context());
    let kinds = r.finding_kinds("client");
    assert!(kinds.contains(&"fd_growth".to_string()), "{kinds:?}\n{}", r.context());
    let growth = r
        .summary()
        .findings
        .into_iter()
        .find(|f| f.subject == "client" && f.kind == FindingKind::FdGrowth)
        .unwrap();
    assert!(
        growth.message.contains("sockets") && growth.message.contains("FDs/hour"),
        "{}",
        growth.message
    );
    assert_names_a_channel_leak(&r);
    assert!(
        r.finding_kinds("driver").is_empty(),
        "the driver is not at fault: {}",
        r.context()
    );
}

#[test]
fn a_channel_per_check_fails_every_client_scenario() {
    for name in CLIENT_SCENARIOS {
        let r = run_client(&repo(&format!("scenarios/{name}.toml")), "per-check-leak");
        assert_eq!(r.code, 1, "{name}: {}", r.context());
        assert!(
            r.finding_kinds("client").contains(&"fd_growth".to_string()),
            "{name}: {}",
            r.context()
        );
        assert_names_a_channel_leak(&r);
    }
}

/// The client's largest group is its sockets to the address fdsoak served it, and the finding names the cause.
fn assert_names_a_channel_leak(r: &RunResult) {
    let top = r.top_group("client");
    assert!(
        top.what.starts_with("ESTABLISHED to 127.0.0.1:") && top.what.ends_with("from an ephemeral port"),
        "{top:?}"
    );
    let growth = r.finding("client", "fd_growth");
    assert!(
        growth.contains("likely a client that opens channels and does not close them"),
        "{growth}"
    );
}

#[test]
fn a_client_that_crashes_is_a_finding_with_its_status() {
    let dir = TempDir::new("crash");
    let s = fixture(&dir, "client-short.toml", &[]);
    let r = run(&s, &["--client", "sh -c 'echo checking {addr}; sleep 3; exit 3'"]);
    assert_eq!(r.code, 1, "{}", r.context());
    let sum = r.summary();
    let f = sum
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::ClientExited)
        .unwrap_or_else(|| panic!("{}", r.context()));
    assert!(f.message.contains("exit status: 3"), "{}", f.message);
    let client = sum.client.unwrap();
    assert_eq!(client.exited_early.as_deref(), Some("exit status: 3"));
    assert!(
        client.output_tail.iter().any(|l| l.starts_with("checking 127.0.0.1:")),
        "{:?}",
        client.output_tail
    );

    // A client that runs a fixed number of checks may exit: then it is no finding.
    let expected = fixture(
        &dir,
        "client-short.toml",
        &[("[client]", "[client]\nexpect_exit = true")],
    );
    let r = run(&expected, &["--client", "{fdsoak} client-demo --checks 5"]);
    assert_eq!(r.code, 0, "{}", r.context());
}

#[test]
fn a_client_command_that_does_not_exist_is_a_usage_error() {
    let dir = TempDir::new("noclient");
    let s = fixture(&dir, "client-short.toml", &[]);
    let r = run(&s, &["--client", "/nonexistent/checker --target {addr}"]);
    assert_eq!(r.code, 2, "{}", r.context());
    assert!(
        r.stderr.contains("--client") && r.stderr.contains("/nonexistent/checker"),
        "{}",
        r.stderr
    );
    assert!(
        !r.out.path().join("summary.json").exists(),
        "nothing started, nothing to report"
    );
}

#[test]
fn a_client_can_be_served_by_a_spawned_target() {
    let dir = TempDir::new("client-spawn");
    let s = fixture(&dir, "client-short.toml", &[]);
    let spawn = format!("{FDSOAK} serve --port {{port}}");
    let r = run(&s, &["--spawn", &spawn]);
    assert_eq!(r.code, 0, "{}", r.context());
    let sum = r.summary();
    assert_eq!(sum.target.mode, "spawn");
    assert!(
        sum.processes.iter().any(|p| p.role.as_str() == "client"),
        "{}",
        r.context()
    );
    // Server behaviours need the built-in target: with --spawn they are a usage error.
    let r = run(&repo("scenarios/client-not-serving-flap.toml"), &["--spawn", &spawn]);
    assert_eq!(r.code, 2, "{}", r.context());
    assert!(r.stderr.contains("built-in target only"), "{}", r.stderr);
}
