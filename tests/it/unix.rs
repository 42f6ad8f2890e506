//! Servers on Unix sockets, as the daemons of a node run (containerd, CSI
//! drivers, device plugins): the built-in target listening on a socket file
//! fdsoak makes up (`--unix-socket`, or `--spawn … {socket}`) passes every
//! library scenario clean, each leak knob is flagged with the socket's path in the finding,
//! and a server already running on a socket is found by it.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const SERVE_UNIX: &str = "{fdsoak} serve --listen unix://{socket}";

fn spawn_unix(knobs: &str) -> String {
    format!("{SERVE_UNIX} {knobs}")
}

/// The made-up socket's path, from the report's target address.
fn socket_path(r: &RunResult) -> String {
    let address = r.summary().target.address.unwrap_or_default();
    let path = address.strip_prefix("unix://");
    path.unwrap_or_else(|| panic!("not a socket: {address:?}")).to_string()
}

#[test]
fn every_library_scenario_passes_clean_on_a_unix_socket() {
    let mut scenarios: Vec<_> = std::fs::read_dir(repo("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    scenarios.sort();
    assert!(scenarios.len() >= 10, "{scenarios:?}");
    for path in scenarios {
        let r = run(&path, &["--unix-socket"]);
        assert_eq!(r.code, 0, "{}: {}", path.display(), r.context());
        assert!(socket_path(&r).ends_with("target.sock"), "{}", r.context());
    }
}

#[test]
fn leak_knobs_on_a_unix_socket_are_flagged_with_its_path() {
    let short = repo("tests/scenarios/churn-short.toml");
    for (knob, want) in [
        ("--leak-channel-every 10", "Unix sockets to "),
        ("--hold-closed-conns", "the client gone"),
    ] {
        let r = run(&short, &["--spawn", &spawn_unix(knob)]);
        assert_eq!(r.code, 1, "{knob}: {}", r.context());
        let path = socket_path(&r);
        let growth = r.finding("target", "fd_growth");
        assert!(growth.contains(want) && growth.contains(&path), "{knob}: {growth}");
    }
    let r = run(&short, &["--spawn", &spawn_unix("--leak-fd-every 10")]);
    assert_eq!(r.code, 1, "{}", r.context());
    let rpc = repo("tests/scenarios/rpc-short.toml");
    let r = run(&rpc, &["--spawn", &spawn_unix("--leak-ask-channel-every 5")]);
    assert_eq!(r.code, 1, "{}", r.context());
    let path = socket_path(&r);
    let growth = r.finding("target", "fd_growth");
    assert!(
        growth.contains("Unix sockets to ") && growth.contains(&path),
        "{growth}"
    );
}

#[test]
fn a_server_already_on_a_unix_socket_is_found_by_its_socket() {
    let dir = TempDir::new("unix-attach");
    let socket = dir.path().join("server.sock");
    let addr = format!("unix://{}", socket.display());
    let mut server = Command::new(FDSOAK)
        .args(["serve", "--listen", &addr])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.trim().ends_with(&addr), "{line}");
    let r = run(&repo("tests/scenarios/churn-short.toml"), &["--target", &addr]);
    // Stopped as a service manager stops it: on SIGTERM it removes its socket file.
    let pid = server.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert_eq!(wait_exit(&mut server, std::time::Duration::from_secs(10)), 0);
    assert_eq!(r.code, 0, "{}", r.context());
    let target = r.summary().target;
    assert_eq!(target.pid, Some(server.id() as i32), "{target:?}");
    assert!(target.description.contains("listening socket"), "{target:?}");
    wait_until(std::time::Duration::from_secs(5), "the socket file removed", || {
        !socket.exists()
    });
}

#[test]
fn unix_addresses_are_checked_before_the_run() {
    let short = repo("tests/scenarios/churn-short.toml");
    let r = run(&short, &["--target", "unix://relative/x.sock"]);
    assert_eq!(r.code, 2, "{}", r.context());
    assert!(
        r.stderr.contains("--target") && r.stderr.contains("absolute"),
        "{}",
        r.context()
    );
    let r = run(&short, &["--target", "unix:///nonexistent/fdsoak.sock"]);
    assert_eq!(r.code, 3, "{}", r.context());
}
