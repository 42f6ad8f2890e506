//! Faults with no proxy (`via = "kernel"`), as root, against real
//! processes: `reset` aborts the chosen process's own connections with
//! SOCK_DESTROY (the driver's calls go on, on new connections, and the
//! report counts what was reset), never another process's connection to
//! the same port; a kind the kernel cannot do is a scenario error; and
//! without CAP_NET_ADMIN the run stops before it starts (exit 3).

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
    // The bystander's connection is still open: no RST, no FIN reached it (the server's
    // own HTTP/2 preface may be waiting to be read).
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
