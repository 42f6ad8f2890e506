//! The descriptor fingerprint against a real server process: its files by
//! path, its listener, its clients' connections by port and state.

use std::time::Duration;

/// `fdsoak probe --fingerprint` groups a real server's descriptors by what they point at:
/// the files its leak knob keeps, by path; its listener; its clients' connections by port.
#[test]
fn the_fingerprint_groups_files_by_path_and_sockets_by_port_and_state() {
    let server = crate::common::Server::start(&["--leak-fd-every", "1"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = fdsoak::proto::health::health_client::HealthClient::connect(format!("http://{}", server.addr))
            .await
            .unwrap();
        for _ in 0..3 {
            c.check(fdsoak::proto::health::HealthCheckRequest { service: String::new() })
                .await
                .unwrap();
        }
    });
    let held: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(server.addr).unwrap())
        .collect();
    let port = server.addr.port();
    let mut groups = Vec::new();
    crate::common::wait_until(Duration::from_secs(10), "the held connections to be accepted", || {
        let o = std::process::Command::new(crate::common::FDSOAK)
            .args(["probe", &server.pid().to_string(), "--fingerprint", "--json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        groups = v["fingerprint"].as_array().unwrap().clone();
        let accepted = format!("ESTABLISHED from clients of :{port}");
        groups
            .iter()
            .any(|g| g["what"] == accepted.as_str() && g["count"].as_u64() >= Some(2))
    });
    let count = |what: &str| {
        groups
            .iter()
            .find(|g| g["what"] == what)
            .and_then(|g| g["count"].as_u64())
            .unwrap_or(0)
    };
    assert_eq!(count(crate::common::FDSOAK), 3, "one file kept per Check: {groups:#?}");
    assert_eq!(count(&format!("LISTEN on :{port}")), 1, "{groups:#?}");
    drop(held);
}

/// A leak of one file per 10,000 Checks at 500/s: +2 handles over 50 s, inside every count
/// gate. The significance rule catches it by name; the clean target, under the same load,
/// passes. One run after the other: two at 500/s at once would starve the tests beside them.
#[test]
fn a_leak_too_slow_for_the_count_gates_is_caught_by_its_group() {
    use crate::common::*;
    let scenario = repo("tests/scenarios/slow-file-leak.toml");
    let spawn = format!("{FDSOAK} serve --port {{port}} --leak-fd-every 10000");
    let leaky = run(&scenario, &["--spawn", &spawn]);
    let clean = run(&scenario, &[]);

    assert_eq!(leaky.code, 1, "{}", leaky.context());
    assert_eq!(leaky.finding_kinds("target"), ["group_leak"], "{}", leaky.context());
    let top = leaky.top_group("target");
    assert_eq!((top.what.as_str(), top.steady), (FDSOAK, true), "{top:?}");
    assert!((2..=3).contains(&top.change), "{top:?}");
    assert!(leaky.process("target").residual_fds <= 5, "below the residual gate");
    let text = leaky.finding("target", "group_leak");
    assert!(text.contains("likely a file opened per request"), "{text}");
    assert!(leaky.finding_kinds("driver").is_empty(), "{}", leaky.context());

    assert_eq!(clean.code, 0, "{}", clean.context());
    assert!(clean.summary().findings.is_empty(), "{}", clean.context());
    for p in clean.summary().processes {
        assert!(p.fingerprints >= 10, "fingerprints were taken: {p:?}");
        assert!(p.groups.iter().all(|g| !g.steady), "{p:?}");
    }
}
