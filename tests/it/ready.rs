//! Readiness for servers without the health service, and for ports that do
//! not speak plaintext HTTP/2: each gets a message that says what to do.

use crate::common::*;

#[test]
fn a_server_without_the_health_service_is_driven_with_ready_connect_or_rpc() {
    let dir = TempDir::new("ready");
    let spawn = format!("{FDSOAK} serve --port {{port}} --no-health");
    let proto = repo("proto/fdsoak/demo/v1/chatbot.proto");
    let proto = ("../../proto/fdsoak/demo/v1/chatbot.proto", proto.to_str().unwrap());
    for ready in ["connect", "rpc"] {
        let s = fixture(
            &dir,
            "rpc-short.toml",
            &[
                proto,
                ("[sampler]", &format!("[target]\nready = \"{ready}\"\n\n[sampler]")),
            ],
        );
        let r = run(&s, &["--spawn", &spawn]);
        assert_eq!(r.code, 0, "ready = {ready}: {}", r.context());
        assert!(r.summary().workloads.iter().all(|w| w.ok > 0), "{}", r.context());
    }
    // The default waits for a health check, and says which key to set.
    let s = fixture(&dir, "rpc-short.toml", &[proto]);
    let r = run(&s, &["--spawn", &spawn]);
    assert_eq!(r.code, 3, "{}", r.context());
    let error = r.finding("run", "run_error");
    assert!(
        error.contains("does not serve grpc.health.v1.Health (UNIMPLEMENTED)"),
        "{error}"
    );
    assert!(error.contains("target.ready = \"connect\""), "{error}");
}

#[test]
fn a_port_that_speaks_http1_is_named_for_what_it_is() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Answers every connection like an HTTP/1 server: reads the request head, then a 400.
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            let mut head = Vec::new();
            let mut buf = [0u8; 256];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let r = run(
        &repo("tests/scenarios/churn-short.toml"),
        &["--target", &addr.to_string()],
    );
    assert_eq!(r.code, 3, "{}", r.context());
    let error = r.finding("run", "run_error");
    assert!(error.contains("speaks HTTP/1, not gRPC"), "{error}");
}
