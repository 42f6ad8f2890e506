//! Error-quality tests: every bad input names the file, the line and the key.

use super::*;

const GOOD: &str = r#"name = "t"

[target]
mode = "builtin"

[[phases]]
name = "base"
duration = "1s"

[[phases]]
name = "load"
duration = "2s"

  [[phases.workloads]]
  kind = "health_check"
  rate = 10

[[phases]]
name = "drain"
duration = "1s"
"#;

fn err(text: &str) -> (usize, String, String) {
    match parse(Path::new("s.toml"), text).unwrap_err() {
        ScenarioError::Invalid {
            file,
            line,
            key,
            message,
        } => {
            assert_eq!(file, Path::new("s.toml"));
            (line, key, message)
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn the_fixture_is_valid() {
    let s = parse(Path::new("s.toml"), GOOD).unwrap();
    assert_eq!(s.phases.len(), 3);
    assert_eq!(s.phases[1].workloads[0].calls().unwrap().pacing.rate(), Some(10.0));
    assert_eq!(s.gates, Gates::default());
}

#[test]
fn malformed_toml() {
    let (line, key, msg) = err(&GOOD.replace("rate = 10", "rate = = 10"));
    assert_eq!(line, 16);
    assert_eq!(key, "rate");
    assert!(!msg.is_empty());
}

#[test]
fn unknown_key() {
    let (line, key, msg) = err(&GOOD.replace("rate = 10", "rate = 10\n  rat = 3"));
    assert_eq!((line, key.as_str()), (17, "phases[1].workloads[0].rat"));
    assert!(msg.contains("unknown field `rat`"), "{msg}");
}

#[test]
fn negative_rate() {
    let (line, key, msg) = err(&GOOD.replace("rate = 10", "rate = -5"));
    assert_eq!((line, key.as_str()), (16, "phases[1].workloads[0].rate"));
    assert!(msg.contains("positive"), "{msg}");
}

#[test]
fn zero_duration() {
    let (line, key, msg) = err(&GOOD.replace("duration = \"2s\"", "duration = \"0s\""));
    assert_eq!((line, key.as_str()), (12, "phases[1].duration"));
    assert!(msg.contains("greater than zero"), "{msg}");
}

#[test]
fn unknown_workload_kind() {
    let (line, key, msg) = err(&GOOD.replace("kind = \"health_check\"", "kind = \"health_chek\""));
    assert_eq!((line, key.as_str()), (15, "phases[1].workloads[0].kind"));
    assert!(msg.contains("health_chek") && msg.contains("health_check"), "{msg}");
}

#[test]
fn bad_duration_text() {
    let (line, key, _) = err(&GOOD.replace(
        "duration = \"1s\"\n\n[[phases]]\nname = \"load\"",
        "duration = \"soon\"\n\n[[phases]]\nname = \"load\"",
    ));
    assert_eq!((line, key.as_str()), (8, "phases[0].duration"));
}

#[test]
fn keys_of_the_wrong_kind_or_mode() {
    let (line, key, msg) = err(&GOOD.replace("rate = 10", "rate = 10\n  streams = 3"));
    assert_eq!((line, key.as_str()), (17, "phases[1].workloads[0].streams"));
    assert!(msg.contains("does not apply"), "{msg}");
    let (line, key, _) = err(&GOOD.replace("mode = \"builtin\"", "mode = \"address\"\ncommand = \"x {port}\""));
    assert_eq!((line, key.as_str()), (5, "target.command"));
}

#[test]
fn missing_required_key() {
    let (_, key, msg) = err(&GOOD.replace("name = \"t\"\n", ""));
    assert_eq!(key, "name");
    assert!(msg.contains("missing field"), "{msg}");
    let (line, key, _) = err(&GOOD.replace("  rate = 10\n", ""));
    assert_eq!((line, key.as_str()), (14, "phases[1].workloads[0].rate"));
}

#[test]
fn spawn_needs_a_port_placeholder() {
    let (line, key, msg) = err(&GOOD.replace("mode = \"builtin\"", "mode = \"spawn\"\ncommand = \"./srv\""));
    assert_eq!((line, key.as_str()), (5, "target.command"));
    assert!(msg.contains("{port}"));
}

#[test]
fn display_names_file_line_and_key() {
    let e = parse(Path::new("dir/s.toml"), &GOOD.replace("rate = 10", "rate = -5")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "dir/s.toml:16: key `phases[1].workloads[0].rate`: must be a positive number of calls per second, got -5"
    );
}

#[test]
fn rate_and_concurrency_exclude_each_other() {
    let (line, key, msg) = err(&GOOD.replace("rate = 10", "rate = 10\n  concurrency = 4"));
    assert_eq!((line, key.as_str()), (17, "phases[1].workloads[0].concurrency"));
    assert!(msg.contains("not both"), "{msg}");
    let s = parse(Path::new("s.toml"), &GOOD.replace("rate = 10", "concurrency = 4")).unwrap();
    assert_eq!(s.phases[1].workloads[0].calls().unwrap().pacing, Pacing::Concurrency(4));
}

#[test]
fn parses_addresses() {
    let tcp = |s: &str| parse_address(s).unwrap().tcp().unwrap();
    assert_eq!(tcp("127.0.0.1:80").port(), 80);
    assert!(tcp("localhost:81").ip().is_loopback());
    assert!(tcp("[::1]:82").is_ipv6());
    assert!(parse_address("unix:///run/containerd/containerd.sock")
        .unwrap()
        .is_unix());
    assert!(parse_address("nope").is_err());
}

#[test]
fn a_workload_key_is_named_in_every_table_form() {
    let wrong = "kind = \"health_check\", rate = 1, streams = 3";
    let forms = [
        (
            GOOD.replace("rate = 10", "rate = 10\n  streams = 3"),
            17,
            "phases[1].workloads[0].streams",
        ),
        (
            GOOD.replace(
                "  [[phases.workloads]]\n  kind = \"health_check\"\n  rate = 10\n",
                &format!("workloads = [\n  {{ kind = \"watch\", streams = 1 }},\n  {{ {wrong} }},\n]\n"),
            ),
            16,
            "phases[1].workloads[1].streams",
        ),
        (
            format!("name = \"t\"\nphases = [{{ name = \"a\", duration = \"1s\", workloads = [{{ {wrong} }}] }}]\n"),
            2,
            "phases[0].workloads[0].streams",
        ),
    ];
    for (text, want_line, want_key) in forms {
        let (line, key, msg) = err(&text);
        assert_eq!((line, key.as_str()), (want_line, want_key), "{text}");
        assert_eq!(msg, "does not apply to kind \"health_check\"");
    }
}

#[test]
fn each_kind_writes_back_the_table_it_was_read_from() {
    let kinds = [
        "kind = \"health_check\"\n  concurrency = 4\n  service = \"x\"\n  retry = { max_attempts = 3 }",
        "kind = \"watch\"\n  streams = 2\n  reopen_every = \"5s\"\n  channel = \"per_call\"",
        "kind = \"rpc\"\n  method = \"a.B/C\"\n  rate = 2\n  max_in_flight = 7\n  data_file = \"x.json\"\n  hangup = \"cancel\"",
        "kind = \"rpc\"\n  method = \"a.B/C\"\n  rate = 2\n  data = \"{}\"\n  protos = [\"a.proto\"]",
    ];
    for keys in kinds {
        let read = parse(
            Path::new("s.toml"),
            &GOOD.replace("kind = \"health_check\"\n  rate = 10", keys),
        )
        .unwrap();
        let written = toml::to_string(&read).unwrap();
        let again = parse(Path::new("s.toml"), &written).unwrap();
        assert_eq!(
            read.phases[1].workloads[0].load, again.phases[1].workloads[0].load,
            "{written}"
        );
        let table = toml::Value::try_from(&read.phases[1].workloads[0]).unwrap();
        for line in keys.lines() {
            let key = line.trim().split(' ').next().unwrap();
            assert!(table.get(key).is_some(), "{key} lost from {table}");
        }
    }
}

/// Every rule a workload's type holds, in the three ways a file may write the table: the key, its line and the message.
#[test]
fn each_rule_of_a_workload_type_names_its_key_and_line() {
    let does_not_apply = |kind: &str| format!("does not apply to kind {kind:?}");
    let hc = does_not_apply("health_check");
    let cases: &[(&str, &str, &str)] = &[
        (
            "kind = \"watch\"\nstreams = 2\nrate = 10",
            "rate",
            &does_not_apply("watch"),
        ),
        (
            "kind = \"watch\"\nstreams = 2\nconcurrency = 3",
            "concurrency",
            &does_not_apply("watch"),
        ),
        (
            "kind = \"watch\"\nstreams = 2\nmax_in_flight = 3",
            "max_in_flight",
            &does_not_apply("watch"),
        ),
        (
            "kind = \"watch\"\nstreams = 1\nretry = { max_attempts = 2 }",
            "retry",
            &does_not_apply("watch"),
        ),
        (
            "kind = \"watch\"\nstreams = 1\nrate = nan",
            "rate",
            &does_not_apply("watch"),
        ),
        (
            "kind = \"rpc\"\nmethod = \"a.B/C\"\nrate = 1\nservice = \"x\"",
            "service",
            &does_not_apply("rpc"),
        ),
        ("kind = \"health_check\"\nrate = 1\nstreams = 3", "streams", &hc),
        (
            "kind = \"health_check\"\nrate = 1\nreopen_every = \"1s\"",
            "reopen_every",
            &hc,
        ),
        ("kind = \"health_check\"\nrate = 1\nmethod = \"a.B/C\"", "method", &hc),
        (
            "kind = \"health_check\"\nrate = 1\nprotos = [\"x.proto\"]",
            "protos",
            &hc,
        ),
        (
            "kind = \"health_check\"\nrate = 1\nimport_paths = [\".\"]",
            "import_paths",
            &hc,
        ),
        ("kind = \"health_check\"\nrate = 1\ndata = \"{}\"", "data", &hc),
        ("kind = \"health_check\"\nrate = 1\ndata_file = \"x\"", "data_file", &hc),
        (
            "kind = \"health_check\"\nrate = 1\nstream_duration = \"1s\"",
            "stream_duration",
            &hc,
        ),
        (
            "kind = \"health_check\"\nrate = 1\nmax_messages = 1",
            "max_messages",
            &hc,
        ),
        (
            "kind = \"health_check\"\nrate = 1\nsend_interval = \"1s\"",
            "send_interval",
            &hc,
        ),
        ("kind = \"health_check\"\nrate = 1\nhangup = \"cancel\"", "hangup", &hc),
        (
            "kind = \"health_check\"\nservice = \"\"",
            "rate",
            "health_check needs a rate (calls per second) or a concurrency",
        ),
        (
            "kind = \"rpc\"\nmethod = \"a.B/C\"",
            "rate",
            "rpc needs a rate (calls per second) or a concurrency",
        ),
        (
            "kind = \"watch\"\nservice = \"\"",
            "streams",
            "watch needs a number of streams",
        ),
        (
            "kind = \"rpc\"\nrate = 1",
            "method",
            "rpc needs a method, such as \"fdsoak.demo.v1.Chatbot/Ask\"",
        ),
        (
            "kind = \"rpc\"\nmethod = \"a.B/C\"\nrate = 1\ndata = \"{}\"\ndata_file = \"x.json\"",
            "data_file",
            "give data or data_file, not both",
        ),
        (
            "kind = \"health_check\"\nrate = 1\nconcurrency = 4",
            "concurrency",
            "give either rate (open model) or concurrency (closed model), not both",
        ),
        (
            "kind = \"health_check\"\nconcurrency = 4\nmax_in_flight = 3",
            "max_in_flight",
            "applies to rate (the open model) only",
        ),
    ];
    let head = "name = \"t\"\n\n[[phases]]\nname = \"base\"\nduration = \"1s\"\n\n[[phases]]\nname = \"load\"\nduration = \"2s\"\n";
    for (keys, want_key, want) in cases {
        let lines: Vec<&str> = keys.lines().collect();
        let tables = format!(
            "{head}\n  [[phases.workloads]]\n  kind = \"watch\"\n  streams = 1\n\n  [[phases.workloads]]\n{}",
            lines.iter().map(|l| format!("  {l}\n")).collect::<String>()
        );
        let inline = format!(
            "{head}workloads = [\n  {{ kind = \"watch\", streams = 1 }},\n  {{ {} }},\n]\n",
            lines.join(", ")
        );
        let one_line = format!(
            "name = \"t\"\nphases = [{{ name = \"a\", duration = \"1s\", workloads = [{{ {} }}] }}]\n",
            lines.join(", ")
        );
        // The key's own line; a missing key, the line its table starts on.
        let present = lines.iter().position(|l| l.starts_with(&format!("{want_key} ")));
        for (text, line, path) in [
            (tables, present.map_or(15, |i| 16 + i), "phases[1].workloads[1]"),
            (inline, 12, "phases[1].workloads[1]"),
            (one_line, 2, "phases[0].workloads[0]"),
        ] {
            let got = err(&text);
            assert_eq!(got, (line, format!("{path}.{want_key}"), want.to_string()), "{text}");
        }
    }
}
