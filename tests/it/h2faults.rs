//! HTTP/2 faults from the proxy, against real servers: a GOAWAY makes the
//! driver reconnect (the report counts connections and GOAWAYs) whether the
//! server is the built-in one or grpcio; GOAWAYs that cross a request
//! (`on_next_stream`) alone catch a client that leaks a channel per failed
//! check, and a good client passes them; RST_STREAM resets the fraction of
//! streams asked for and leaves the connection up; and without a fault the
//! `fdsoak proxy` process passes every byte unchanged both ways.

use crate::common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

/// A shared channel at 100 checks/s for `secs`, with `fault` in the load phase.
fn scenario(dir: &TempDir, secs: u32, fault: &str) -> std::path::PathBuf {
    dir.write(
        "h2.toml",
        &format!(
            "name = \"h2\"\n[sampler]\ninterval = \"100ms\"\n\
             [[phases]]\nname = \"baseline\"\nduration = \"1s\"\n\
             [[phases]]\nname = \"load\"\nduration = \"{secs}s\"\n\
               [[phases.workloads]]\n  kind = \"health_check\"\n  rate = 100\n  channel = \"shared\"\n\
               [[phases.faults]]\n{fault}\n\
             [[phases]]\nname = \"drain\"\nduration = \"2s\"\n"
        ),
    )
}

/// A client scenario whose only faults are GOAWAYs that cross a request, every second for 14 s.
fn goaway_client_scenario(dir: &TempDir) -> std::path::PathBuf {
    dir.write(
        "goaway-client.toml",
        "name = \"goaway-client\"\n[client]\ncommand = \"true\"\n[sampler]\ninterval = \"200ms\"\n\
         [[phases]]\nname = \"baseline\"\nduration = \"3s\"\n\
         [[phases]]\nname = \"goaways\"\nduration = \"14s\"\n  [[phases.faults]]\n  kind = \"goaway\"\n  every = \"1s\"\n  on_next_stream = true\n\
         [[phases]]\nname = \"drain\"\nduration = \"3s\"\n",
    )
}

const GOAWAY_EVERY_SECOND: &str = "  kind = \"goaway\"\n  every = \"1s\"";

/// The driver's channel gets a GOAWAY each second, reconnects each time, and the report says so.
fn assert_reconnects_on_goaway(r: &RunResult) {
    let s = r.summary();
    let proxy = s
        .proxy
        .clone()
        .unwrap_or_else(|| panic!("no proxy stats: {}", r.context()));
    assert!(proxy.goaways >= 4, "{proxy:?}");
    assert!(proxy.accepted > proxy.goaways, "a reconnect per GOAWAY: {proxy:?}");
    let event = s.fault_events.iter().find(|e| e.kind == "goaway").unwrap();
    assert_eq!(event.detail, "NO_ERROR", "{event:?}");
    assert!(r.finding_kinds("driver").is_empty(), "{}", r.context());
    assert!(r.finding_kinds("target").is_empty(), "{}", r.context());
}

#[test]
fn a_goaway_makes_the_driver_reconnect_and_the_report_counts_it() {
    let dir = TempDir::new("h2-goaway");
    let r = run(&scenario(&dir, 6, GOAWAY_EVERY_SECOND), &[]);
    assert_reconnects_on_goaway(&r);
    // Any plaintext server, not only the built-in one: grpcio from PyPI.
    let grpcio = format!("python3 {} {{port}} clean", repo("tests/programs/server.py").display());
    let r = run(&scenario(&dir, 6, GOAWAY_EVERY_SECOND), &["--spawn", &grpcio]);
    assert_reconnects_on_goaway(&r);
}

#[test]
fn goaways_alone_catch_a_client_that_leaks_a_channel_per_failed_check() {
    let dir = TempDir::new("h2-client");
    let sc = goaway_client_scenario(&dir);
    let demo = |mode: &str| format!("{FDSOAK} client-demo --mode {mode} --interval 50ms --deadline 300ms");
    let r = run(&sc, &["--client", &demo("retry-leak")]);
    assert_eq!(r.code, 1, "{}", r.context());
    assert!(!r.finding_kinds("client").is_empty(), "{}", r.context());
    let top = r.top_group("client");
    assert!(top.what.starts_with("ESTABLISHED to ") && top.change >= 5, "{top:?}");
    for _ in 0..2 {
        let r = run(&sc, &["--client", &demo("good")]);
        assert_eq!(r.code, 0, "{}", r.context());
    }
}

#[test]
fn rst_stream_resets_the_fraction_asked_for_and_leaves_the_connection_up() {
    let dir = TempDir::new("h2-rst");
    let fault = "  kind = \"rst_stream\"\n  probability = 0.2\n  error_code = \"CANCEL\"";
    let r = run(&scenario(&dir, 6, fault), &[]);
    let s = r.summary();
    let proxy = s.proxy.unwrap();
    let w = &s.workloads[0];
    let calls = w.ok + w.errors;
    assert!(calls >= 500, "{w:?}");
    let share = proxy.rst_streams as f64 / calls as f64;
    assert!((0.12..0.28).contains(&share), "{share}: {proxy:?}");
    // Each reset stream is one failed call; nothing else failed.
    assert_eq!(w.errors, proxy.rst_streams, "{w:?} {proxy:?}");
    assert_eq!(proxy.accepted, 1, "{proxy:?}");
}

#[test]
fn http2_faults_with_tls_are_a_scenario_error() {
    let dir = TempDir::new("h2-tls");
    let sc = scenario(&dir, 2, GOAWAY_EVERY_SECOND);
    let r = run(&sc, &["--insecure"]);
    assert_eq!(r.code, 2, "{}", r.context());
    assert!(
        r.stderr.contains("phases[1].faults[0].kind") && r.stderr.contains("inside TLS"),
        "{}",
        r.context()
    );
}

/// PREFACE, then frames of random kinds, flags, streams and sizes (header blocks left open included).
fn random_frames(rng: &mut fastrand::Rng, preface: bool, total: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(total + 20_000);
    if preface {
        out.extend_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    }
    while out.len() < total {
        let len = rng.usize(0..16_384);
        out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&[rng.u8(0..10), rng.u8(..)]);
        out.extend_from_slice(&rng.u32(..).to_be_bytes());
        out.extend((0..len).map(|_| rng.u8(..)));
    }
    out
}

#[test]
fn without_a_fault_the_proxy_passes_every_byte_unchanged() {
    let mut rng = fastrand::Rng::with_seed(22);
    let up_bytes = random_frames(&mut rng, true, 2 << 20);
    let down_bytes = random_frames(&mut rng, false, 2 << 20);
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let reply = down_bytes.clone();
    let server = std::thread::spawn(move || {
        let (mut s, _) = upstream.accept().unwrap();
        let mut got = Vec::new();
        let mut w = s.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            w.write_all(&reply).unwrap();
            w.shutdown(std::net::Shutdown::Write).unwrap();
        });
        s.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        got
    });
    let mut proxy = Command::new(FDSOAK)
        .args(["proxy", "--upstream", &upstream_addr.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(proxy.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let listen = line.trim().rsplit(' ').next().unwrap().to_string();
    let mut client = std::net::TcpStream::connect(&listen).unwrap();
    let mut w = client.try_clone().unwrap();
    let sent = up_bytes.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut got_down = Vec::new();
    client.read_to_end(&mut got_down).unwrap();
    writer.join().unwrap();
    let got_up = server.join().unwrap();
    let _ = proxy.kill();
    let _ = proxy.wait();
    assert!(
        got_up == up_bytes,
        "client to server: {} bytes of {}",
        got_up.len(),
        up_bytes.len()
    );
    assert!(
        got_down == down_bytes,
        "server to client: {} bytes of {}",
        got_down.len(),
        down_bytes.len()
    );
}

/// bench/go/server, or None where Go is not installed.
fn grpc_go_server(dir: &TempDir) -> Option<std::path::PathBuf> {
    go_build(dir, "bench/go/server")
}

#[test]
fn a_grpc_go_server_behind_the_proxy_gets_goaways_too() {
    let dir = TempDir::new("h2-grpc-go");
    let Some(server) = grpc_go_server(&dir) else { return };
    let spawn = format!("{} -addr 127.0.0.1:{{port}}", server.display());
    let r = run(&scenario(&dir, 6, GOAWAY_EVERY_SECOND), &["--spawn", &spawn]);
    assert_reconnects_on_goaway(&r);
    // A client that leaks a channel per failed check is caught by GOAWAYs alone, in front of grpc-go.
    let sc = goaway_client_scenario(&dir);
    let demo = format!("{FDSOAK} client-demo --mode retry-leak --interval 50ms --deadline 300ms");
    let r = run(&sc, &["--client", &demo, "--spawn", &spawn]);
    assert_eq!(r.code, 1, "{}", r.context());
    let top = r.top_group("client");
    assert!(top.what.starts_with("ESTABLISHED to ") && top.change >= 5, "{top:?}");
}

#[test]
fn under_tls_the_proxy_ends_tls_with_the_certificate_it_is_given_and_a_goaway_reaches_grpc_go() {
    let dir = TempDir::new("h2-goaway-tls");
    let pki = crate::tls::Pki::new();
    let with_tls = |tls: &str| {
        let text = std::fs::read_to_string(scenario(&dir, 6, GOAWAY_EVERY_SECOND)).unwrap();
        dir.write(
            "h2-tls.toml",
            &text.replacen("[sampler]", &format!("{tls}[sampler]"), 1),
        )
    };
    // Without a certificate for the proxy: a scenario error that says which keys enable it.
    let ca_only = format!("[tls]\nca = \"{}\"\n", pki.path("ca.pem"));
    let r = run(&with_tls(&ca_only), &[]);
    assert_eq!(r.code, 2, "{}", r.context());
    assert!(
        r.stderr.contains("phases[1].faults[0].kind") && r.stderr.contains("proxy_cert and proxy_key"),
        "{}",
        r.stderr
    );
    let Some(exe) = go_build(&dir, "tests/programs/goleak") else {
        return;
    };
    // The proxy presents a certificate from the CA the driver trusts (here the server's own).
    let tls = format!(
        "[tls]\nca = \"{}\"\nproxy_cert = \"{}\"\nproxy_key = \"{}\"\n",
        pki.path("ca.pem"),
        pki.path("server.pem"),
        pki.path("server.key")
    );
    let spawn = format!(
        "{} -addr 127.0.0.1:{{port}} -tls-cert {} -tls-key {}",
        exe.display(),
        pki.path("server.pem"),
        pki.path("server.key")
    );
    let r = run(&with_tls(&tls), &["--spawn", &spawn]);
    assert_eq!(r.code, 0, "{}", r.context());
    // As in plaintext: a call that crosses a GOAWAY may fail; the error gate judges them.
    assert_reconnects_on_goaway(&r);
}
