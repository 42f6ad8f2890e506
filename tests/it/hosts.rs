//! Targets beyond fdsoak's own view: a server in its own PID and network
//! namespace (as in a container) read by the PID this host sees, a port
//! held by a forwarder refused by name, and a rehearsal of the distributed
//! run (the target on a second "host", sharded drivers, FDs from its
//! Prometheus endpoint, then `merge`). Namespaces are real, made with
//! iproute2; where they cannot be made the test says why and skips.

use crate::common::netns::NetNs;
use crate::common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

fn namespace() -> Option<NetNs> {
    match NetNs::create() {
        Ok(ns) => Some(ns),
        Err(why) => {
            tool_missing(&format!("a network namespace ({why})"), "CI runs as root with iproute2");
            None
        }
    }
}

#[test]
fn a_server_in_its_own_pid_and_network_namespace_is_read_by_its_host_pid() {
    let Some(ns) = namespace() else { return };
    for (leak, want) in [(true, 1), (false, 0)] {
        let args: &[&str] = if leak { &["--leak-fd-every", "10"] } else { &[] };
        let (mut wrapper, pid, lines) = ns.serve(args);
        let addr = lines[0].clone();
        let r = run(
            &repo("scenarios/quickstart.toml"),
            &["--target", &addr, "--pid", &pid.to_string()],
        );
        let _ = wrapper.kill();
        let _ = wrapper.wait();
        assert_eq!(r.code, want, "leak {leak}: {}", r.context());
        let target = r.process("target");
        assert_eq!(target.pid, pid);
        // Its TCP states come from its own namespace's tables: its listener is there.
        let rows: Vec<_> = samples(r.out.path())
            .into_iter()
            .filter(|s| s.role == fdsoak::domain::Role::Target)
            .collect();
        assert!(rows.iter().all(|t| t.tcp_listen >= 1), "{rows:?}");
        assert!(rows.iter().any(|t| t.tcp_established >= 1), "{rows:?}");
        if leak {
            assert!(
                r.finding_kinds("target").contains(&"fd_growth".to_string()),
                "{}",
                r.context()
            );
            let top = r.top_group("target");
            assert_eq!((top.kind.as_str(), top.what.as_str()), ("file", FDSOAK), "{top:?}");
        } else {
            assert!(r.summary().findings.is_empty(), "{}", r.context());
        }
    }
}

#[test]
fn a_port_held_by_a_forwarder_is_named_and_not_sampled() {
    let server = Server::start(&[]);
    // A real relay, named as Docker's is: the fdsoak proxy run as `docker-proxy`.
    let dir = TempDir::new("forwarder");
    let relay_exe = dir.path().join("docker-proxy");
    std::os::unix::fs::symlink(FDSOAK, &relay_exe).unwrap();
    let mut relay = Command::new(&relay_exe)
        .args(["proxy", "--upstream", &server.addr.to_string()])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(relay.stdout.take().unwrap()), &mut line).unwrap();
    let relay_addr = line.trim().rsplit(' ').next().unwrap().to_string();
    let r = run(&repo("scenarios/quickstart.toml"), &["--target", &relay_addr]);
    let _ = relay.kill();
    let _ = relay.wait();
    assert_eq!(r.code, 3, "{}", r.context());
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains(&format!(
            "held by docker-proxy (Docker's published-port relay), pid {}",
            relay.id()
        )),
        "{all}"
    );
    assert!(all.contains("--pid $(docker inspect"), "{all}");
    // Through the server's own port, the owner found is named in the report.
    let r = run(
        &repo("scenarios/quickstart.toml"),
        &["--target", &server.addr.to_string()],
    );
    assert_eq!(r.code, 0, "{}", r.context());
    let desc = r.summary().target.description;
    assert!(
        desc.contains(&format!(
            "pid {}, fdsoak, the owner of its listening socket",
            server.pid()
        )),
        "{desc}"
    );
}

#[test]
fn rehearsal_sharded_drivers_against_a_target_on_a_second_host_read_from_its_metrics() {
    let Some(ns) = namespace() else { return };
    let metrics_addr = format!("{}:0", ns.ip);
    let (mut wrapper, _pid, lines) = ns.serve(&["--metrics-addr", &metrics_addr, "--leak-fd-every", "20"]);
    let (addr, url) = (lines[0].clone(), lines[1].clone());
    let dir = TempDir::new("rehearsal");
    let sc = dir.write(
        "rehearsal.toml",
        r#"name = "rehearsal"
[sampler]
interval = "500ms"
[[phases]]
name = "baseline"
duration = "2s"
[[phases]]
name = "load"
duration = "10s"
  [[phases.workloads]]
  kind = "health_check"
  name = "checks"
  rate = 300
[[phases]]
name = "drain"
duration = "2s"
"#,
    );
    let start_at = humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_secs(4)).to_string();
    let outs: Vec<TempDir> = (0..3).map(|i| TempDir::new(&format!("driver{i}"))).collect();
    let drivers: Vec<_> = outs
        .iter()
        .enumerate()
        .map(|(i, out)| {
            Command::new(FDSOAK)
                .arg("run")
                .arg(&sc)
                .arg("--out")
                .arg(out.path())
                .args(["-q", "--target", &addr, "--fds-from", &url, "--start-at", &start_at])
                .args(["--shard", &format!("{i}/3")])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<_> = drivers.into_iter().map(|d| d.wait_with_output().unwrap()).collect();
    let merged = TempDir::new("rehearsal-merged");
    let o = Command::new(FDSOAK)
        .arg("merge")
        .args(outs.iter().map(|o| o.path()))
        .arg("--out")
        .arg(merged.path())
        .output()
        .unwrap();
    let _ = wrapper.kill();
    let _ = wrapper.wait();
    for (i, c) in codes.iter().enumerate() {
        // Each driver sees the target's leak through its metrics: 1 file per 20 of all drivers' checks.
        assert_eq!(
            c.status.code(),
            Some(1),
            "driver {i}: {}",
            String::from_utf8_lossy(&c.stdout)
        );
    }
    let m = read_summary(merged.path());
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}\n{:?}\n{:?}",
        String::from_utf8_lossy(&o.stderr),
        m.findings,
        m.processes
    );
    let target = m
        .processes
        .iter()
        .find(|p| p.role == fdsoak::domain::Role::Target)
        .unwrap();
    assert_eq!((target.source, target.pid), (fdsoak::domain::FdSource::Prometheus, 0));
    // 300/s for 10 s from three drivers: 3,000 checks, 150 files.
    let calls: u64 = m.workloads.iter().filter(|w| w.phase == "load").map(|w| w.ok).sum();
    assert!((2970..=3030).contains(&calls), "{calls}");
    assert!((120..=180).contains(&target.residual_fds), "{target:?}");
    assert!(
        m.findings
            .iter()
            .any(|f| f.subject == "target" && f.kind.as_str() == "fd_growth"),
        "{:?}",
        m.findings
    );
}
