//! The `rpc` workload against the built-in target's Chatbot, from the
//! repository's `.proto` compiled at run time: unary and server-streaming
//! calls counted, fdsoak's own stream bounds counted OK, the channel policy
//! composed as for health_check, and every bad key a located error.

use crate::common::*;

/// The rpc-short fixture in a temp dir, its proto path made absolute, then `replace` applied.
fn rpc_fixture(dir: &TempDir, replace: &[(&str, &str)]) -> std::path::PathBuf {
    let proto = repo("proto/fdsoak/demo/v1/chatbot.proto");
    let mut all = vec![("../../proto/fdsoak/demo/v1/chatbot.proto", proto.to_str().unwrap())];
    all.extend_from_slice(replace);
    fixture(dir, "rpc-short.toml", &all)
}

#[test]
fn unary_and_streaming_methods_are_driven_from_a_proto_file() {
    let r = run(&repo("tests/scenarios/rpc-short.toml"), &[]);
    assert_eq!(r.code, 0, "{}", r.context());
    let s = r.summary();
    assert!(s.findings.is_empty(), "{}", r.context());
    let ask = s.workloads.iter().find(|w| w.name == "ask").unwrap();
    assert_eq!((ask.kind.as_str(), ask.errors), ("rpc", 0), "{ask:?}");
    assert!(ask.ok >= 150, "4 s at 50/s: {ask:?}");
    let converse = s.workloads.iter().find(|w| w.name == "converse").unwrap();
    assert!(converse.ok >= 60 && converse.errors == 0, "{converse:?}");
    // Each Converse of turn 3 streams three replies, every one counted.
    assert_eq!(converse.messages, 3 * converse.ok, "{converse:?}");
}

#[test]
fn a_stream_fdsoak_ends_itself_counts_ok_and_a_leaky_channel_policy_is_flagged() {
    let dir = TempDir::new("rpc");
    let s = rpc_fixture(
        &dir,
        &[
            (
                r#"data = '{"user": "c", "turn": 3}'"#,
                "data = '{\"turn\": 500}'\n  max_messages = 7",
            ),
            ("  rate = 50\n", "  rate = 50\n  channel = \"per_call_leak\"\n"),
        ],
    );
    let r = run(&s, &[]);
    assert_eq!(r.code, 1, "{}", r.context());
    let summary = r.summary();
    let converse = summary.workloads.iter().find(|w| w.name == "converse").unwrap();
    assert!(converse.ok >= 60 && converse.errors == 0, "{converse:?}");
    assert_eq!(converse.messages, 7 * converse.ok, "cut at max_messages: {converse:?}");
    // per_call_leak composes with rpc as with health_check: the driver holds a channel per Ask.
    assert!(
        r.finding_kinds("driver").contains(&"fd_growth".to_string()),
        "{}",
        r.context()
    );
    let top = r.top_group("driver");
    assert!(top.what.starts_with("ESTABLISHED to 127.0.0.1:"), "{top:?}");
}

#[test]
fn bad_rpc_keys_are_errors_that_name_the_file_line_and_key() {
    let dir = TempDir::new("rpc-bad");
    let cases: [(&str, &str, &str); 6] = [
        (
            "Chatbot/Ask\"",
            "Chatbot/Asks\"",
            "has no method Asks (it has: Ask, Converse, Chat, Tally)",
        ),
        (
            "fdsoak.demo.v1.Chatbot/Ask\"",
            "fdsoak.demo.v2.Chatbot/Ask\"",
            "no service fdsoak.demo.v2.Chatbot",
        ),
        (
            r#""user": "a""#,
            r#""usr": "a""#,
            "request 0: does not match fdsoak.demo.v1.AskRequest",
        ),
        (
            r#""turn": 3"#,
            r#""turn": "three""#,
            "does not match fdsoak.demo.v1.AskRequest",
        ),
        (
            "chatbot.proto\"]\n  data = '[",
            "nope.proto\"]\n  data = '[",
            "nope.proto: no such file",
        ),
        (
            "  rate = 20\n",
            "  rate = 20\n  data_file = \"x.json\"\n",
            "give data or data_file, not both",
        ),
    ];
    for (i, (from, to, expect)) in cases.iter().enumerate() {
        let s = rpc_fixture(&dir, &[(from, to)]);
        let o = std::process::Command::new(FDSOAK)
            .arg("validate")
            .arg(&s)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "case {i}: {err}");
        assert!(err.contains(expect), "case {i}: {err}");
        assert!(
            err.contains("rpc-short.toml:") && err.contains("key `phases[1].workloads["),
            "case {i}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "case {i}: one line: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// The rpc-short fixture with its protos removed: the methods come from the target's reflection.
fn reflected_fixture(dir: &TempDir) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo("tests/scenarios/rpc-short.toml")).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("protos ="))
        .map(|l| format!("{l}\n"))
        .collect();
    dir.write("rpc-reflected.toml", &text)
}

#[test]
fn the_same_workload_through_a_proto_and_through_reflection_counts_the_same() {
    let dir = TempDir::new("rpc-reflect");
    let server = Server::start(&[]);
    let addr = server.addr.to_string();
    let from_proto = run(&repo("tests/scenarios/rpc-short.toml"), &["--target", &addr]);
    let reflected = run(&reflected_fixture(&dir), &["--target", &addr]);
    for r in [&from_proto, &reflected] {
        assert_eq!(r.code, 0, "{}", r.context());
    }
    let counts = |r: &RunResult| -> Vec<(String, u64, u64, u64)> {
        let s = r.summary();
        s.workloads
            .iter()
            .map(|w| (w.name.clone(), w.scheduled, w.errors, w.messages / w.ok.max(1)))
            .collect()
    };
    // Same timetable, same calls, same replies per stream.
    assert_eq!(counts(&from_proto), counts(&reflected));
}

#[test]
fn reflection_falls_back_to_v1alpha_and_its_absence_is_a_located_error() {
    let dir = TempDir::new("rpc-reflect");
    let s = reflected_fixture(&dir);
    let old = Server::start(&["--reflection", "v1alpha"]);
    let r = run(&s, &["--target", &old.addr.to_string()]);
    assert_eq!(r.code, 0, "a v1alpha-only server is enough: {}", r.context());

    let none = Server::start(&["--reflection", "none"]);
    let r = run(&s, &["--target", &none.addr.to_string()]);
    assert_eq!(r.code, 2, "{}", r.context());
    let err = r.stderr.trim();
    assert!(
        err.contains("rpc-reflected.toml:") && err.contains("key `phases[1].workloads[0].method`"),
        "{err}"
    );
    assert!(
        err.contains("does not serve reflection") && err.contains("`protos`"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// The Chatbot's three leaks, each found by the chatbot-streams library scenario and named.
#[test]
fn chatbot_streams_flags_each_chatbot_leak_and_passes_the_clean_target() {
    let knobs = [
        (
            "--leak-ask-channel-every 10",
            "ESTABLISHED to 127.0.0.1:",
            "a client that opens channels",
        ),
        ("--leak-converse-file", FDSOAK, "a file opened per request"),
        ("--converse-ignores-cancel", FDSOAK, "a file opened per request"),
    ];
    // One run at a time, so the tests beside this one keep their CPU.
    let runs: Vec<RunResult> = knobs
        .iter()
        .map(|(knob, _, _)| {
            let spawn = format!("{FDSOAK} serve --port {{port}} --converse-interval 20ms {knob}");
            run(&repo("scenarios/chatbot-streams.toml"), &["--spawn", &spawn])
        })
        .collect();
    let clean = run(&repo("scenarios/chatbot-streams.toml"), &[]);
    assert_eq!(clean.code, 0, "{}", clean.context());
    let s = clean.summary();
    let converse = s
        .workloads
        .iter()
        .find(|w| w.name == "converse" && w.phase == "load")
        .unwrap();
    // fdsoak hangs up on every stream after a second: about 50 replies each, and every one OK.
    assert!(converse.ok >= 100 && converse.errors == 0, "{converse:?}");
    assert!(converse.messages >= 30 * converse.ok, "{converse:?}");
    for (r, (knob, group, cause)) in runs.into_iter().zip(knobs) {
        assert_eq!(r.code, 1, "{knob}: {}", r.context());
        let kinds = r.finding_kinds("target");
        assert!(
            kinds.contains(&"fd_growth".to_string()) && kinds.contains(&"residual_fds".to_string()),
            "{knob}: {kinds:?}"
        );
        assert!(
            r.top_group("target").what.starts_with(group),
            "{knob}: {:?}",
            r.top_group("target")
        );
        assert!(
            r.finding("target", "fd_growth").contains(cause),
            "{knob}: {}",
            r.context()
        );
        assert!(r.finding_kinds("driver").is_empty(), "{knob}: {}", r.context());
    }
}
