//! Bugs a new user met on first use (issue 20), one test each, against real
//! servers: a v1 client certificate made by `openssl x509 -req`, reflection
//! that fails for reasons that are not the scenario's, a server owned by
//! another user, and a run whose load came only from its client.

use crate::common::*;
use crate::tls::Pki;
use std::process::{Command, Stdio};

/// A scenario whose one rpc workload takes its method from the target's reflection.
fn reflected(dir: &TempDir, tls: &str, metadata: &str) -> std::path::PathBuf {
    dir.write(
        "reflected.toml",
        &format!(
            "name = \"reflected\"\n{metadata}\n[target]\nready = \"rpc\"\nready_timeout = \"3s\"\n{tls}\n\
             [[phases]]\nname = \"base\"\nduration = \"1s\"\n\
             [[phases]]\nname = \"load\"\nduration = \"1s\"\n  [[phases.workloads]]\n  kind = \"rpc\"\n  \
             method = \"fdsoak.demo.v1.Chatbot/Ask\"\n  data = '{{\"user\": \"a\"}}'\n  rate = 5\n"
        ),
    )
}

#[test]
fn a_v1_client_certificate_is_named_as_the_clients_not_blamed_on_the_server() {
    let dir = TempDir::new("v1-cert");
    let (key, csr, cert) = (
        dir.path().join("v1.key"),
        dir.path().join("v1.csr"),
        dir.path().join("v1.pem"),
    );
    // As many tutorials do: a request, then `x509 -req` with no extensions file.
    let ok = |c: &mut Command| {
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    assert!(ok(Command::new("openssl")
        .args(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=client", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&csr)));
    assert!(ok(Command::new("openssl")
        .args(["x509", "-req", "-days", "1", "-in"])
        .arg(&csr)
        .arg("-signkey")
        .arg(&key)
        .arg("-out")
        .arg(&cert)));
    let pki = Pki::new();
    let server = pki.server(true);
    let sc = dir.write(
        "v1.toml",
        &format!(
            "name = \"v1\"\n[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n[[phases]]\nname = \"p\"\nduration = \"1s\"\n",
            pki.path("ca.pem"),
            cert.display(),
            key.display()
        ),
    );
    let r = run(&sc, &["--target", &server.addr.to_string()]);
    assert_eq!(r.code, 2, "{}", r.context());
    assert!(r.stderr.contains("key `tls.cert`"), "{}", r.context());
    assert!(r.stderr.contains("not X.509 v3"), "{}", r.context());
    assert!(
        !r.stderr.contains("presented a certificate"),
        "the server is not blamed: {}",
        r.context()
    );
    // The same certificate made properly (v3, by rcgen) passes the same server.
    let good = run(
        &sc,
        &[
            "--target",
            &server.addr.to_string(),
            "--cert",
            &pki.path("client.pem"),
            "--key",
            &pki.path("client.key"),
        ],
    );
    assert_eq!(good.code, 0, "{}", good.context());
}

#[test]
fn reflection_that_fails_on_the_connection_is_a_run_error_with_the_readiness_hints() {
    let pki = Pki::new();
    let dir = TempDir::new("reflect-mtls");
    // A server that requires a client certificate, and none given: TLS 1.3 lets the
    // connection (and so readiness) succeed before the server refuses it.
    let server = pki.server(true);
    let sc = reflected(&dir, &format!("[tls]\nca = \"{}\"", pki.path("ca.pem")), "");
    let r = run(&sc, &["--target", &server.addr.to_string()]);
    assert_eq!(r.code, 3, "a run error, not the scenario's: {}", r.context());
    let e = r.finding("run", "run_error");
    assert!(e.contains("reflection"), "{e}");
    assert!(
        e.contains("if it requires a client certificate, give [tls] cert and key"),
        "{e}"
    );
    assert!(!r.stderr.contains("phases[1].workloads[0].method"), "{}", r.context());
}

#[test]
fn reflection_refused_for_credentials_names_the_code_and_the_metadata() {
    let dir = TempDir::new("reflect-token");
    let mut server = Command::new(FDSOAK)
        .args(["serve", "--port", "0", "--require-token-env", "FDSOAK_TEST_TOKEN"])
        .env("FDSOAK_TEST_TOKEN", "right")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        line.trim().rsplit(' ').next().unwrap().to_string()
    };
    let wrong = reflected(&dir, "", "metadata = { authorization = \"Bearer wrong\" }");
    let r = run(&wrong, &["--target", &addr]);
    assert_eq!(r.code, 3, "{}", r.context());
    let e = r.finding("run", "run_error");
    assert!(e.contains("UNAUTHENTICATED"), "{e}");
    assert!(e.contains("metadata") && e.contains("-H"), "{e}");
    assert!(!e.contains("wrong"), "the token never shows: {e}");
    // The right token: reflection answers and the run passes.
    let right = reflected(&dir, "", "metadata = { authorization = \"Bearer right\" }");
    let r = run(&right, &["--target", &addr]);
    assert_eq!(r.code, 0, "{}", r.context());
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn a_server_of_another_user_is_said_to_be_there_with_the_ways_out() {
    if !rustix::process::geteuid().is_root() {
        tool_missing("root (to switch users)", "CI runs the tests as root");
        return;
    }
    // The server runs as root; fdsoak runs as `nobody`, as against a systemd service of its own account.
    let server = Server::start(&[]);
    let dir = TempDir::new("other-user");
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let sc = dir.write(
        "short.toml",
        "name = \"short\"\n[[phases]]\nname = \"p\"\nduration = \"1s\"\n",
    );
    // A copy of fdsoak that `nobody` may run wherever the checkout lives (it may be under /root).
    let exe = dir.path().join("fdsoak");
    std::fs::copy(FDSOAK, &exe).unwrap();
    let exe = exe.to_str().unwrap().to_string();
    let as_nobody = |args: &[&str]| {
        let o = Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", &exe])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let out = dir.path().join("report");
    let addr = server.addr.to_string();
    let (code, _) = as_nobody(&[
        "run",
        sc.to_str().unwrap(),
        "--target",
        &addr,
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(code, 3);
    let e = &read_summary(&out).findings[0].message;
    assert!(e.contains("belongs to another user (uid 0)"), "{e}");
    assert!(!e.contains("no process on this host listens"), "{e}");
    assert!(e.contains("CAP_SYS_PTRACE") && e.contains("--fds-from"), "{e}");
    let (code, err) = as_nobody(&["probe", &server.pid().to_string()]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("belongs to another user") && err.contains("CAP_SYS_PTRACE"),
        "{err}"
    );
    assert_eq!(err.matches("Permission denied").count(), 0, "{err}");
}

#[test]
fn a_run_whose_client_brought_the_load_says_so_instead_of_empty_charts() {
    let dir = TempDir::new("client-load");
    let sc = fixture(&dir, "client-short.toml", &[]);
    let r = run(&sc, &[]);
    assert_eq!(r.code, 0, "{}", r.context());
    let html = std::fs::read_to_string(r.out.path().join("report.html")).unwrap();
    assert!(html.contains("The client under test brought the load"), "no sentence");
    assert!(
        !html.contains("id=\"chart-latency\""),
        "an empty latency chart is drawn"
    );
    assert!(
        !html.contains("id=\"chart-throughput\""),
        "an empty throughput chart is drawn"
    );
    assert!(html.contains("id=\"chart-fds\""), "the descriptor chart stays");
}
