//! Leak detection both ways, against real target processes: leaky targets
//! and leaky clients are flagged with the right finding, clean ones pass.

use crate::common::*;

#[test]
fn quickstart_against_the_clean_builtin_target_passes_repeatedly() {
    let mut reports: Vec<RunResult> = Vec::new();
    for round in 0..3 {
        let r = run(&repo("scenarios/quickstart.toml"), &[]);
        assert_eq!(r.code, 0, "round {round}: {}", r.context());
        assert_eq!(r.verdict(), "pass");
        assert!(r.summary().findings.is_empty(), "round {round}: {}", r.context());
        assert!(
            r.summary().workloads.iter().all(|w| w.ok > 0),
            "every workload made calls"
        );
        reports.push(r);
    }
    // Clean runs of the same build, compared with each other, never read as a regression.
    assert_no_regression_between(&reports);
}

#[test]
fn quickstart_flags_a_target_that_leaks_files() {
    let spawn = format!("{FDSOAK} serve --port {{port}} --leak-fd-every 10");
    let r = run(&repo("scenarios/quickstart.toml"), &["--spawn", &spawn]);
    assert_eq!(r.code, 1, "{}", r.context());
    assert_eq!(r.verdict(), "fail");
    let kinds = r.finding_kinds("target");
    assert!(kinds.contains(&"fd_growth".to_string()), "{kinds:?}\n{}", r.context());
    assert!(
        r.finding_kinds("driver").is_empty(),
        "the driver does not leak: {}",
        r.context()
    );
    let target = r.process("target");
    // 100 checks/s for 14 s, one file kept per 10 checks: about 140 files.
    let residual = target.residual_fds;
    assert!((100..=160).contains(&residual), "residual {residual}");
    assert!(r.stdout.contains("FAIL"), "{}", r.stdout);
    // What leaked, by name: the file the knob keeps open (the server's own executable).
    let top = r.top_group("target");
    assert_eq!((top.kind.as_str(), top.what.as_str()), ("file", FDSOAK), "{top:?}");
    assert!((100..=160).contains(&top.change) && top.steady, "{top:?}");
    let growth = r.finding("target", "fd_growth");
    assert!(
        growth.contains(&format!("× {FDSOAK}: likely a file opened per request")),
        "{growth}"
    );
    // Every exporter shows the table of what grew.
    let read = |f: &str| std::fs::read_to_string(r.out.path().join(f)).unwrap();
    assert!(read("summary.md").contains(&format!("| target | file | {FDSOAK} |")));
    assert!(read("report.html").contains("What grew"));
    assert!(read("junit.xml").contains("likely a file opened per request"));
    assert!(
        r.process("driver").groups.iter().all(|g| !g.steady),
        "{:?}",
        r.process("driver")
    );
}

#[test]
fn channel_churn_flags_close_wait_on_a_server_that_keeps_dead_sockets() {
    let spawn = format!("{FDSOAK} serve --port {{port}} --hold-closed-conns");
    let r = run(&repo("scenarios/channel-churn.toml"), &["--spawn", &spawn]);
    assert_eq!(r.code, 1, "{}", r.context());
    let kinds = r.finding_kinds("target");
    assert!(kinds.contains(&"close_wait".to_string()), "{kinds:?}");
    let target = r.process("target");
    assert!(target.close_wait_final > 100, "{target:?}");
    let msg = format!("{:?}", r.summary().findings);
    assert!(msg.contains("CLOSE_WAIT"), "{msg}");
    let top = r.top_group("target");
    let port = r.target_port();
    assert_eq!(top.what, format!("CLOSE_WAIT from clients of :{port}"), "{top:?}");
    assert!(top.change > 100, "{top:?}");
    let close_wait = r.finding("target", "close_wait");
    assert!(
        close_wait.contains("likely accepted connections never closed after the peer left"),
        "{close_wait}"
    );
}

#[test]
fn channel_churn_against_the_clean_target_passes() {
    let r = run(&repo("scenarios/channel-churn.toml"), &[]);
    assert_eq!(r.code, 0, "{}", r.context());
    let w = &r.summary().workloads[0];
    assert_eq!(w.channel, "per_call");
    assert!(w.ok >= 500, "{w:?}");
}

#[test]
fn a_client_that_never_closes_its_channels_is_flagged_on_the_driver() {
    let dir = TempDir::new("leak");
    let s = fixture(
        &dir,
        "churn-short.toml",
        &[("channel = \"per_call\"", "channel = \"per_call_leak\"")],
    );
    let r = run(&s, &[]);
    assert_eq!(r.code, 1, "{}", r.context());
    let kinds = r.finding_kinds("driver");
    assert!(kinds.contains(&"fd_growth".to_string()), "{kinds:?}\n{}", r.context());
    let driver = r.process("driver");
    assert!(driver.residual_fds >= 150, "{driver:?}");
    // On the right process: the driver's sockets to the target's port.
    let top = r.top_group("driver");
    let port = r.target_port();
    assert_eq!(
        top.what,
        format!("ESTABLISHED to 127.0.0.1:{port} from an ephemeral port")
    );
    assert!(top.change >= 150, "{top:?}");
    assert!(
        r.finding("driver", "fd_growth")
            .contains("likely a client that opens channels and does not close them"),
        "{}",
        r.context()
    );
    // The target's ends of those connections are the driver's leak, told as a note.
    assert_eq!(
        r.finding_kinds("target"),
        vec!["held_by_peer".to_string()],
        "{}",
        r.context()
    );
    let note = r.finding("target", "held_by_peer");
    assert!(
        note.contains(&format!("held open by the driver (pid {})", driver.pid)),
        "{note}"
    );
}

#[test]
fn shared_and_per_call_channels_are_not_flagged() {
    let dir = TempDir::new("noleak");
    for policy in ["shared", "per_call"] {
        let s = fixture(
            &dir,
            "churn-short.toml",
            &[("channel = \"per_call\"", &format!("channel = \"{policy}\""))],
        );
        let r = run(&s, &[]);
        assert_eq!(r.code, 0, "{policy}: {}", r.context());
        assert!(r.finding_kinds("driver").is_empty(), "{policy}");
        assert!(r.summary().workloads[0].ok >= 150, "{policy}");
    }
}

#[test]
fn the_seed_bug_a_fresh_backend_channel_per_health_check_is_flagged() {
    let dir = TempDir::new("seed");
    let s = fixture(
        &dir,
        "churn-short.toml",
        &[("channel = \"per_call\"", "channel = \"shared\"")],
    );
    let spawn = format!("{FDSOAK} serve --port {{port}} --leak-channel-every 5");
    let r = run(&s, &["--spawn", &spawn]);
    assert_eq!(r.code, 1, "{}", r.context());
    assert!(
        r.finding_kinds("target").contains(&"fd_growth".to_string()),
        "{}",
        r.context()
    );
    let t = r.process("target");
    // Each leaked channel holds a client socket and the server's accepted one, both in the target.
    let sockets = t.final_sockets as i64 - t.baseline_sockets as i64;
    assert!(sockets >= 60, "{t:?}");
    assert!(r.finding_kinds("driver").is_empty());
    // The target dials its own port: the client ends name the cause, the accepted ends are there too.
    let port = r.target_port();
    let dialled = format!("ESTABLISHED to 127.0.0.1:{port} from an ephemeral port");
    let accepted = format!("ESTABLISHED from clients of :{port}");
    let change = |what: &str| t.groups.iter().find(|g| g.what == what).map_or(0, |g| g.change);
    assert!(change(&dialled) >= 30 && change(&accepted) >= 30, "{:#?}", t.groups);
    assert_eq!(t.groups[0].what, dialled, "equal groups: the one with a cause first");
    assert!(
        r.finding("target", "fd_growth")
            .contains("likely a client that opens channels and does not close them"),
        "{}",
        r.context()
    );
}
