//! The guest suite: the agents `--origin` puts inside a process must not
//! change what it does. Each real program runs with the agents and without,
//! and its own output (what it did, its descriptor count at the end) must be
//! the same; under fdsoak, the verdict must be the same. The programs
//! (tests/programs/guests/) drop grpcio channels without closing them (the
//! collector on and off), fork a thousand times while the publisher runs,
//! serve as a pre-fork server with a multiprocessing pool, and close and
//! receive descriptors by every route (close_range, closefrom, vfork,
//! posix_spawn, SCM_RIGHTS). A grpc-js program makes, closes and drops
//! Clients under the channel ledger's script, and prints what that script
//! could change (the classes' identities, a constructor's error, its own
//! `Error.prepareStackTrace`, what the collector frees), and a grpc-java one
//! the same under the JVM part (channels shut down and dropped, files, an
//! exception, child processes). FDSOAK_GUEST_REPEAT
//! sets how many times each pair runs (3 unless set; 20 for the figures in
//! docs/origins.md).

use crate::common::*;
use fdsoak::origin::Agents;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn repeat() -> usize {
    std::env::var("FDSOAK_GUEST_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn guest(name: &str) -> String {
    repo(&format!("tests/programs/guests/{name}")).display().to_string()
}

/// `program args` run to its end (at most two minutes: a guest that hangs its host
/// fails here), with the agents' environment when given; its stdout.
fn output(agents: Option<&Agents>, program: &[&str]) -> String {
    let mut cmd = Command::new(program[0]);
    cmd.args(&program[1..]);
    for (k, v) in agents.map(|a| a.env()).unwrap_or_default() {
        cmd.env(k, v);
    }
    // The publisher as busy as it can be, so that a fork lands in its work.
    cmd.env("FDSOAK_ORIGIN_INTERVAL", "0.001");
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let code = wait_exit(&mut child, Duration::from_secs(120));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!(code, 0, "{program:?} failed: {out}");
    out
}

/// The words after `key` in a line of `key value` pairs.
fn field(line: &str, key: &str) -> i64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words
        .iter()
        .position(|w| *w == key)
        .unwrap_or_else(|| panic!("no {key} in {line:?}"));
    words[i + 1].parse().unwrap()
}

#[test]
fn dropped_channels_are_freed_with_the_agent_as_without_it_collector_on_or_off() {
    let server = Server::start(&[]);
    let target = server.addr.to_string();
    let agents = Agents::install(true).unwrap();
    for collector in ["gc", "nogc"] {
        for i in 0..repeat() {
            let program = ["python3", &guest("dropped.py"), &target, "200", collector];
            let without = output(None, &program);
            let with = output(Some(&agents), &program);
            for key in ["before", "after"] {
                assert_eq!(
                    field(&with, key),
                    field(&without, key),
                    "{collector} #{i}, {key}: without the agent {without:?}, with it {with:?}"
                );
            }
            assert!(
                field(&with, "after") - field(&with, "before") <= 1,
                "{collector} #{i}: {with:?}"
            );
        }
    }
}

#[test]
fn grpc_js_clients_behave_the_same_under_the_channel_ledger_s_script() {
    if grpcjs_server().is_none() {
        return;
    }
    let server = Server::start(&[]);
    let target = server.addr.to_string();
    let agents = Agents::install(true).unwrap();
    let program = ["node", "--expose-gc", &guest("channels.js"), &target, "20"];
    for i in 0..repeat() {
        let without = output(None, &program);
        let with = output(Some(&agents), &program);
        assert_eq!(with, without, "#{i}");
        assert_eq!(field(&with, "prepared"), 0, "{with}");
        assert_eq!(field(&with, "collected"), 20, "{with}");
    }
}

#[test]
fn grpc_java_channels_behave_the_same_under_the_jvm_agent() {
    let dir = TempDir::new("guest-java");
    let Some(classpath) = javac(&dir, "tests/programs/guests/Channels.java", &grpc_java_server_jars()) else {
        return;
    };
    let server = Server::start(&[]);
    let (host, port) = (server.addr.ip().to_string(), server.addr.port().to_string());
    let agents = Agents::install(true).unwrap();
    let program = ["java", "-cp", &classpath, "Channels", &host, &port, "10"];
    // What varies with the JVM's own start, with the agent or without.
    let steady = |out: &str| {
        let words: Vec<&str> = out.split_whitespace().collect();
        let mut pairs: Vec<String> = words.chunks(2).map(|p| p.join(" ")).collect();
        pairs.retain(|p| !p.starts_with("before "));
        pairs
    };
    for i in 0..repeat() {
        let without = output(None, &program);
        let with = output(Some(&agents), &program);
        assert_eq!(steady(&with), steady(&without), "#{i}");
        assert_eq!((field(&with, "ready"), field(&with, "collected")), (10, 10), "{with}");
    }
}

#[test]
fn no_child_hangs_in_a_thousand_forks_while_the_publisher_runs() {
    let agents = Agents::install(true).unwrap();
    for i in 0..repeat() {
        let without = output(None, &["python3", &guest("forks.py"), "1000"]);
        let with = output(Some(&agents), &["python3", &guest("forks.py"), "1000"]);
        assert_eq!(field(&with, "hung"), 0, "#{i}: {with:?}");
        assert_eq!(field(&with, "done"), 1000, "#{i}: {with:?}");
        assert_eq!(
            field(&with, "fds"),
            field(&without, "fds"),
            "#{i}: {without:?} / {with:?}"
        );
    }
}

/// Starts `cmd` with its stdin held open and returns it with the first line it prints.
fn first_line(cmd: &mut Command) -> (std::process::Child, String) {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line)
}

/// A pre-fork server's answers: per worker PID, its descriptor counts.
fn prefork(agents: Option<&Agents>) -> Vec<i64> {
    let mut cmd = Command::new("python3");
    cmd.args([&guest("prefork.py"), "2"]);
    for (k, v) in agents.map(|a| a.env()).unwrap_or_default() {
        cmd.env(k, v);
    }
    let (mut child, line) = first_line(cmd.env("FDSOAK_ORIGIN_INTERVAL", "0.001"));
    let port = field(&line, "listening") as u16;
    let mut counts = Vec::new();
    for _ in 0..40 {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut answer = String::new();
        BufReader::new(&mut conn).read_line(&mut answer).unwrap();
        let mut words = answer.split_whitespace();
        let (_pid, fds): (i64, i64) = (
            words.next().unwrap().parse().unwrap(),
            words.next().unwrap().parse().unwrap(),
        );
        counts.push(fds);
    }
    drop(child.stdin.take());
    assert_eq!(wait_exit(&mut child, Duration::from_secs(20)), 0);
    counts
}

#[test]
fn a_prefork_server_with_a_multiprocessing_pool_serves_the_same_with_the_agent() {
    let agents = Agents::install(true).unwrap();
    for i in 0..repeat() {
        let without = prefork(None);
        let with = prefork(Some(&agents));
        assert_eq!(with, without, "#{i}: each answer's descriptor count");
    }
}

/// Builds guest.c with debug info.
fn guest_c(dir: &TempDir) -> String {
    cc(dir, "tests/programs/guests/guest.c", "guest", &["-O0"])
        .display()
        .to_string()
}

#[test]
fn closes_by_every_route_and_received_descriptors_are_seen_by_the_native_agent() {
    let dir = TempDir::new("guest-c");
    let exe = guest_c(&dir);
    let agents = Agents::install(true).unwrap();
    let symbols = fdsoak::origin::native::Symbols::default();
    for i in 0..repeat() {
        let without = output(None, &[&exe]);
        let (mut child, with) = first_line(Command::new(&exe).envs(agents.env()));
        assert_eq!(with, without, "#{i}: the program's own account");
        let pid = child.id() as i32;
        let live: Vec<i32> = (0..32).collect();
        let table = fdsoak::origin::table::Table::read(pid, &live, &symbols, None)
            .unwrap_or_else(|| panic!("#{i}: no native table in {pid}"));
        let link = |fd: i64| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .unwrap()
                .display()
                .to_string()
        };
        let opened_in = |fd: i64| {
            table
                .opened(fd as i32, &link(fd))
                .and_then(|s| s.top_user_frame().map(|f| f.function.clone()))
        };
        for key in ["kept"] {
            let fd = field(&with, key);
            for k in fd..fd + 4 {
                assert_eq!(
                    opened_in(k).as_deref(),
                    Some("open_many"),
                    "#{i}: fd {k}, closed only in a vfork or spawned child"
                );
            }
        }
        assert_eq!(
            opened_in(field(&with, "raw")),
            None,
            "#{i}: closed by close_range, reopened unseen"
        );
        assert_eq!(
            opened_in(field(&with, "got")).as_deref(),
            Some("receive_fd"),
            "#{i}: received over SCM_RIGHTS"
        );
        drop(child.stdin.take());
        assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), 0);
    }
}

#[test]
fn a_client_that_drops_channels_with_the_collector_off_passes_under_fdsoak_with_origins_as_without() {
    let dir = TempDir::new("guest-dropped-client");
    let sc = fixture(
        &dir,
        "client-short.toml",
        &[("duration = \"6s\"", "duration = \"12s\"")],
    );
    let client = format!("python3 {} {{addr}} forever nogc", guest("dropped.py"));
    for i in 0..repeat().min(2) {
        let without = run(&sc, &["--client", &client]);
        let with = run(&sc, &["--origin", "--client", &client]);
        assert_eq!(without.code, 0, "#{i} without origins: {}", without.context());
        assert_eq!(with.code, 0, "#{i} with origins: {}", with.context());
        // The last sample may catch a call in flight (a channel's socket, poller and
        // wakeup descriptors): never more than one call's worth apart.
        let last = |r: &RunResult| r.process("client").final_fds;
        let (a, b) = (last(&without), last(&with));
        assert!(
            a.abs_diff(b) <= 6,
            "#{i}: the client ends with {a} descriptors without origins, {b} with"
        );
    }
}
