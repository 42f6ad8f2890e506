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
