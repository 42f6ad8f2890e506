//! Faults with no proxy (`via = "kernel"`), as root, against real
//! processes: `reset` aborts the chosen process's own connections with
//! SOCK_DESTROY (the driver's calls go on, on new connections, and the
//! report counts what was reset; under TLS too, with no proxy in the run),
//! and `blackhole` drops them in nftables
//! for its duration (calls miss their deadlines, then go on), never
//! another process's connection to the same port; `loss` drops a share of
//! their packets, so TCP's own resends show in the latency; no nftables table is
//! left after a run, and one a killed run left is removed by the next; a
//! kind the kernel cannot do is a scenario error; and without
//! CAP_NET_ADMIN the run stops before it starts (exit 3).

use crate::common::*;
use std::io::Read;

/// 50 Checks/s on one channel for 4 s, with `fault` (a `[[phases.faults]]` body) in the load;
/// the calls a reset catches in flight may fail (up to 10%).
fn scenario(dir: &TempDir, fault: &str) -> std::path::PathBuf {
    dir.write(
        "kernel-faults.toml",
        &format!(
            "name = \"kernel-faults\"\n[gates]\nmax_error_rate = 0.1\n[sampler]\ninterval = \"250ms\"\n\
             [[phases]]\nname = \"baseline\"\nduration = \"1s\"\n\
             [[phases]]\nname = \"resets\"\nduration = \"4s\"\n  [[phases.workloads]]\n  kind = \"health_check\"\n  rate = 50\n\
               [[phases.faults]]\n{fault}\n\
             [[phases]]\nname = \"drain\"\nduration = \"1s\"\n"
        ),
    )
}

#[test]
fn a_kernel_reset_aborts_the_drivers_own_connections_and_no_bystanders() {
    if !rustix::process::geteuid().is_root() {
        tool_missing("root (CAP_NET_ADMIN)", "CI runs the tests as root");
        return;
    }
    let server = Server::start(&[]);
    let dir = TempDir::new("kernel-reset");
    // Another process's connection to the same address and port: it must outlive every fault.
    let mut bystander = std::net::TcpStream::connect(server.addr).unwrap();
    let fault = format!(
        "  kind = \"reset\"\n  via = \"kernel\"\n  role = \"driver\"\n  peer = \"{}\"\n  every = \"1s\"",
        server.addr
    );
    let r = run(&scenario(&dir, &fault), &["--target", &server.addr.to_string()]);
    assert_eq!(r.code, 0, "the driver recovers on new connections: {}", r.context());
    let s = r.summary();
    let resets: Vec<_> = s.fault_events.iter().filter(|e| e.kind == "reset").collect();
    assert_eq!(resets.len(), 3, "at 1, 2 and 3 s into the 4 s phase: {resets:?}");
    assert!(
        resets.iter().all(|e| e.connections == 1),
        "the driver's one connection each time: {resets:?}"
    );
    assert!(resets[0].detail.contains("via the kernel: the driver's"), "{resets:?}");
    let w = &s.workloads.iter().find(|w| w.phase == "resets").unwrap();
    assert!(w.ok >= 180, "calls go on after each reset: {w:?}");
    untouched(&mut bystander);
}

/// The bystander's connection is still open: no RST, no FIN reached it (the server's
/// own HTTP/2 preface may be waiting to be read).
fn untouched(bystander: &mut std::net::TcpStream) {
    bystander.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match bystander.read(&mut buf) {
            Ok(0) => panic!("the bystander's connection was closed"),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("the bystander's connection was touched: {e}"),
        }
    }
}

#[test]
fn kernel_faults_say_what_they_cannot_do_and_need_cap_net_admin() {
    let dir = TempDir::new("kernel-fault-errors");
    for (fault, key, words) in [
        (
            "  kind = \"close\"\n  via = \"kernel\"\n  every = \"1s\"",
            "kind",
            "needs the proxy",
        ),
        (
            "  kind = \"reset\"\n  role = \"target\"\n  every = \"1s\"",
            "role",
            "via = \"kernel\" only",
        ),
        (
            "  kind = \"reset\"\n  via = \"kernel\"\n  peer = \"nowhere\"\n  every = \"1s\"",
            "peer",
            "\":PORT\"",
        ),
        ("  kind = \"loss\"\n  fraction = 0.1", "via", "bytes, not packets"),
        (
            "  kind = \"loss\"\n  via = \"kernel\"\n  fraction = 1.0",
            "fraction",
            "kind = \"blackhole\"",
        ),
    ] {
        let r = run(&scenario(&dir, fault), &[]);
        assert_eq!(r.code, 2, "{fault}: {}", r.context());
        assert!(
            r.stderr.contains(&format!("phases[1].faults[0].{key}")) && r.stderr.contains(words),
            "{fault}: {}",
            r.stderr
        );
    }
    if !rustix::process::geteuid().is_root() {
        tool_missing("root (to switch to nobody)", "CI runs the tests as root");
        return;
    }
    // A target on a Unix socket: its connections are out of reach (exit 2, naming the fault).
    let r = run(
        &scenario(&dir, "  kind = \"reset\"\n  via = \"kernel\"\n  every = \"1s\""),
        &["--target", "unix:///nonexistent/fdsoak-test.sock"],
    );
    assert_eq!(r.code, 2, "{}", r.context());
    assert!(
        r.stderr.contains("phases[1].faults[0].via") && r.stderr.contains("Unix socket"),
        "{}",
        r.stderr
    );
    // As `nobody`: no CAP_NET_ADMIN, so the run stops before anything starts.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let exe = dir.path().join("fdsoak");
    std::fs::copy(FDSOAK, &exe).unwrap();
    let sc = scenario(&dir, "  kind = \"reset\"\n  via = \"kernel\"\n  every = \"1s\"");
    let out = dir.path().join("report");
    let o = std::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(&exe)
        .arg("run")
        .arg(&sc)
        .arg("--out")
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("CAP_NET_ADMIN"), "{stderr}");
    assert!(!out.join("summary.json").exists(), "nothing ran");
}

/// The names of the nftables tables fdsoak's runs made that exist now.
fn fdsoak_tables() -> Vec<String> {
    let out = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("table inet fdsoak_").map(|n| format!("fdsoak_{n}")))
        .collect()
}

#[test]
fn a_kernel_blackhole_stalls_the_drivers_connection_and_no_table_outlives_a_run_even_a_killed_one() {
    let Some(_one) = nft_ready() else { return };
    let server = Server::start(&[]);
    let dir = TempDir::new("kernel-blackhole");
    let mut bystander = std::net::TcpStream::connect(server.addr).unwrap();
    // A table of a run that is gone (no process 999999 exists): the next run removes it.
    let stale = "fdsoak_999999_1";
    let made = std::process::Command::new("nft")
        .args(["add", "table", "inet", stale])
        .status()
        .unwrap();
    assert!(made.success());
    let fault = format!(
        "  kind = \"blackhole\"\n  via = \"kernel\"\n  role = \"driver\"\n  peer = \"{}\"\n  at = \"1s\"\n  duration = \"1500ms\"",
        server.addr
    );
    let text = std::fs::read_to_string(scenario(&dir, &fault)).unwrap();
    let sc = dir.write(
        "blackhole.toml",
        &text
            .replace("  rate = 50\n", "  rate = 50\n  deadline = \"300ms\"\n")
            .replace("duration = \"4s\"", "duration = \"8s\""),
    );
    let r = run(&sc, &["--target", &server.addr.to_string()]);
    let s = r.summary();
    let holes: Vec<_> = s.fault_events.iter().filter(|e| e.kind == "blackhole").collect();
    assert_eq!(holes.len(), 1, "{holes:?}");
    assert_eq!(holes[0].connections, 1, "{holes:?}");
    assert!(holes[0].detail.starts_with("for 1s 500ms, via the kernel"), "{holes:?}");
    let w = s.workloads.iter().find(|w| w.phase == "resets").unwrap();
    assert!(
        w.errors >= 10,
        "calls in the 1.5 s hole miss their 300 ms deadline: {w:?}"
    );
    // TCP resends once the hole is lifted (its backoff may take a second or two).
    assert!(w.ok >= 120, "and calls go on after it: {w:?}");
    assert!(fdsoak_tables().is_empty(), "tables left: {:?}", fdsoak_tables());
    a_table_left_by_a_killed_run_is_removed_when_the_next_run_starts(&server, &dir);
    untouched(&mut bystander);
}

/// Part of the test above (the tables are the whole machine's, so the two cannot run side by side).
fn a_table_left_by_a_killed_run_is_removed_when_the_next_run_starts(server: &Server, dir: &TempDir) {
    let fault = format!(
        "  kind = \"blackhole\"\n  via = \"kernel\"\n  role = \"driver\"\n  peer = \"{}\"\n  at = \"500ms\"",
        server.addr
    );
    let sc = scenario(dir, &fault);
    for signal in [libc::SIGINT, libc::SIGKILL] {
        let out = dir.path().join(format!("signal-{signal}"));
        let mut child = std::process::Command::new(FDSOAK)
            .arg("run")
            .arg(&sc)
            .args(["-q", "--target", &server.addr.to_string(), "--out"])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mine = format!("fdsoak_{}_", child.id());
        // Its table, with the blackhole in it (its chains), so the fault has fired.
        wait_until(std::time::Duration::from_secs(20), "the run's blackhole", || {
            let out = std::process::Command::new("nft")
                .args(["list", "ruleset"])
                .output()
                .unwrap();
            let rules = String::from_utf8_lossy(&out.stdout);
            rules.contains(&mine) && rules.contains("chain b0_out")
        });
        // SAFETY: kill(2) on the child started above, not yet waited for.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        child.wait().unwrap();
        let left = fdsoak_tables().iter().any(|t| t.starts_with(&mine));
        if signal == libc::SIGINT {
            assert!(!left, "Ctrl-C ends the run, and its table with it");
            let s = read_summary(&out);
            assert!(
                s.fault_events.iter().any(|e| e.kind == "blackhole"),
                "the report is written"
            );
        } else {
            assert!(left, "a SIGKILL leaves it");
        }
    }
    let r = run(&sc, &["--target", &server.addr.to_string()]);
    assert!(r.code == 0 || r.code == 1, "{}", r.context());
    assert!(fdsoak_tables().is_empty(), "tables left: {:?}", fdsoak_tables());
}

#[test]
fn kernel_loss_drops_a_share_of_the_drivers_packets_so_tcp_resends_show_in_its_latency() {
    let Some(_one) = nft_ready() else { return };
    let server = Server::start(&[]);
    let dir = TempDir::new("kernel-loss");
    let mut bystander = std::net::TcpStream::connect(server.addr).unwrap();
    let fault = format!(
        "  kind = \"loss\"\n  via = \"kernel\"\n  role = \"driver\"\n  peer = \"{}\"\n  fraction = 0.25",
        server.addr
    );
    let text = std::fs::read_to_string(scenario(&dir, &fault)).unwrap();
    // Calls wait out TCP's resends (200 ms and more each on loopback) rather than fail. A lost
    // resend doubles the timer, and every call on the one connection waits behind it, so on a
    // loaded machine a chain of them outlasts many calls' deadlines (22 and 59 of 200 in two CI
    // runs here): failures are not the claim, the resends' latency is.
    let sc = dir.write(
        "loss.toml",
        &text.replace(
            "  rate = 50\n",
            "  rate = 50\n  deadline = \"5s\"\n  max_error_rate = 1.0\n",
        ),
    );
    let r = run(&sc, &["--target", &server.addr.to_string()]);
    assert_eq!(r.code, 0, "{}", r.context());
    let s = r.summary();
    let losses: Vec<_> = s.fault_events.iter().filter(|e| e.kind == "loss").collect();
    assert_eq!(
        losses.len(),
        1,
        "one event, when it first covers a connection: {losses:?}"
    );
    assert_eq!(losses[0].connections, 1, "the driver's one connection: {losses:?}");
    assert!(
        losses[0]
            .detail
            .starts_with("25% of packets, until the phase ends, via the kernel"),
        "{losses:?}"
    );
    let w = s.workloads.iter().find(|w| w.phase == "resets").unwrap();
    // A lost segment that a tail-loss probe does not recover waits for the retransmit
    // timer, 200 ms at least: among 200 calls with a quarter of packets lost, some do.
    assert!(w.latency.max_us >= 200_000, "no resend showed: {:?}", w.latency);
    assert!(w.ok >= 100, "half the calls at least wait out the resends: {w:?}");
    assert!(fdsoak_tables().is_empty(), "tables left: {:?}", fdsoak_tables());
    untouched(&mut bystander);
}

#[test]
fn a_kernel_reset_under_tls_fails_the_drivers_calls_in_flight_and_they_recover() {
    if !rustix::process::geteuid().is_root() {
        tool_missing("root (CAP_NET_ADMIN)", "CI runs the tests as root");
        return;
    }
    let pki = crate::tls::Pki::new();
    let server = pki.server(false);
    let dir = TempDir::new("kernel-reset-tls");
    // 200 calls/s, so a reset is likely to catch some in flight.
    let fault = format!(
        "  kind = \"reset\"\n  via = \"kernel\"\n  role = \"driver\"\n  peer = \"{}\"\n  every = \"1s\"",
        server.addr
    );
    let text = std::fs::read_to_string(scenario(&dir, &fault)).unwrap();
    // A Watch stream on the same connection is always in flight when a reset comes.
    let watch = "rate = 200\n  [[phases.workloads]]\n  kind = \"watch\"\n  name = \"watchers\"\n  streams = 2\n  max_error_rate = 1.0\n";
    let sc = dir.write("tls-resets.toml", &text.replace("rate = 50\n", watch));
    let r = run(
        &sc,
        &["--target", &server.addr.to_string(), "--cacert", &pki.path("ca.pem")],
    );
    assert_eq!(
        r.code,
        0,
        "a reset fails a few calls, then TLS is set up again: {}",
        r.context()
    );
    let s = r.summary();
    let resets: Vec<_> = s.fault_events.iter().filter(|e| e.kind == "reset").collect();
    assert_eq!(resets.len(), 3, "{resets:?}");
    assert!(resets.iter().all(|e| e.connections >= 1), "{resets:?}");
    assert!(s.proxy.is_none(), "no proxy: the kernel needs no way into TLS");
    let w = s
        .workloads
        .iter()
        .find(|w| w.phase == "resets" && w.kind == "watch")
        .unwrap();
    assert!(w.errors >= 3, "each reset fails the streams in flight: {w:?}");
    let w = s
        .workloads
        .iter()
        .find(|w| w.phase == "resets" && w.kind == "health_check")
        .unwrap();
    assert!(w.ok >= 700, "calls go on, over new TLS connections: {w:?}");
}
