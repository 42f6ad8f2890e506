//! Finding, reaching and losing targets: attach by port, unreachable
//! targets, a target killed mid-run, Ctrl-C, and the built-in target's
//! health protocol semantics. Every target is a real process.

use crate::common::*;
use fdsoak::domain::FindingKind;
use fdsoak::proto::health::health_check_response::ServingStatus;
use fdsoak::proto::health::health_client::HealthClient;
use fdsoak::proto::health::HealthCheckRequest;
use fdsoak::report::model::Verdict;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn a_server_started_elsewhere_is_found_by_its_port_and_sampled() {
    let server = Server::start(&[]);
    let dir = TempDir::new("attach");
    let s = fixture(&dir, "churn-short.toml", &[]);
    let r = run(&s, &["--target", &server.addr.to_string()]);
    assert_eq!(r.code, 0, "{}", r.context());
    let sum = r.summary();
    assert_eq!(sum.target.mode, "address");
    assert_eq!(sum.target.pid, Some(server.pid()));
    assert!(sample_rows(r.out.path(), "target") >= 20);
    assert!(
        samples(r.out.path())
            .iter()
            .any(|s| s.role.as_str() == "target" && s.pid == server.pid()),
        "samples carry the server's pid"
    );
    // fdsoak did not start it, so it leaves it running.
    assert!(process_exists(server.pid()));
}

#[test]
fn an_unreachable_target_is_a_run_error_with_a_report() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = TempDir::new("unreach");
    let s = fixture(
        &dir,
        "churn-short.toml",
        &[(
            "name = \"churn-short\"",
            "name = \"churn-short\"\n[target]\nready_timeout = \"2s\"",
        )],
    );
    let r = run(&s, &["--target", &format!("127.0.0.1:{port}")]);
    assert_eq!(r.code, 3, "{}", r.context());
    assert_eq!(r.verdict(), "error");
    let f = &r.summary().findings[0];
    assert_eq!(f.kind, FindingKind::RunError);
    let msg = &f.message;
    assert!(
        msg.contains(&format!("127.0.0.1:{port} did not answer a health check within 2s")),
        "{msg}"
    );
    assert!(
        r.stdout.contains("did not answer"),
        "the error is printed: {}",
        r.context()
    );
    assert!(r.summary().duration_secs < 10.0, "gave up at the deadline");
}

#[test]
fn a_target_killed_mid_run_still_gets_a_report_marked_error() {
    let mut server = Server::start(&[]);
    let out = TempDir::new("killed");
    let mut fdsoak = Command::new(FDSOAK)
        .arg("run")
        .arg(repo("scenarios/quickstart.toml"))
        .args([
            "--out",
            out.path().to_str().unwrap(),
            "-q",
            "--target",
            &server.addr.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "target samples", || {
        sample_rows(out.path(), "target") >= 4
    });
    server.child.kill().unwrap();
    let code = wait_exit(&mut fdsoak, Duration::from_secs(30));
    assert_eq!(code, 3);
    let sum = read_summary(out.path());
    assert_eq!(sum.verdict, Verdict::Error);
    assert_eq!(sum.findings[0].kind, FindingKind::TargetDied);
    assert!(sum.findings[0].message.contains(&format!("pid {}", server.pid())));
    assert!(out.path().join("latency.csv").exists());
}

#[test]
fn ctrl_c_writes_a_report_marked_interrupted_and_stops_the_target() {
    let out = TempDir::new("sigint");
    let mut fdsoak = Command::new(FDSOAK)
        .arg("run")
        .arg(repo("scenarios/quickstart.toml"))
        .args(["--out", out.path().to_str().unwrap(), "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "target samples", || {
        sample_rows(out.path(), "target") >= 4
    });
    let pid = rustix::process::Pid::from_raw(fdsoak.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let code = wait_exit(&mut fdsoak, Duration::from_secs(30));
    assert_eq!(code, 130);
    let sum = read_summary(out.path());
    assert_eq!(sum.verdict, Verdict::Interrupted);
    assert_eq!(sum.findings[0].kind, FindingKind::Interrupted);
    assert!(!sum.processes.is_empty(), "figures cover the part that ran");
    let target = sum.target.pid.unwrap();
    assert!(!process_exists(target), "the built-in target was stopped");
}

async fn client(addr: std::net::SocketAddr) -> HealthClient<tonic::transport::Channel> {
    HealthClient::connect(format!("http://{addr}")).await.unwrap()
}

#[tokio::test]
async fn the_builtin_target_speaks_the_health_protocol() {
    let server = Server::start(&[]);
    let mut c = client(server.addr).await;
    let ok = c.check(HealthCheckRequest { service: String::new() }).await.unwrap();
    assert_eq!(ok.into_inner().status(), ServingStatus::Serving);
    let ok = c
        .check(HealthCheckRequest {
            service: "fdsoak.demo.v1.Chatbot".into(),
        })
        .await
        .unwrap();
    assert_eq!(ok.into_inner().status(), ServingStatus::Serving);
    let err = c
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);

    let mut known = c
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(known.message().await.unwrap().unwrap().status(), ServingStatus::Serving);
    let mut unknown = c
        .watch(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        unknown.message().await.unwrap().unwrap().status(),
        ServingStatus::ServiceUnknown
    );
    // The stream stays open: no end-of-stream and no error while we hold it.
    let next = tokio::time::timeout(Duration::from_millis(300), unknown.message()).await;
    assert!(
        next.is_err(),
        "Watch of an unknown service must not end the call: {next:?}"
    );

    let mut chat = fdsoak::proto::demo::chatbot_client::ChatbotClient::connect(format!("http://{}", server.addr))
        .await
        .unwrap();
    let req = fdsoak::proto::demo::AskRequest {
        user: "u".into(),
        turn: 3,
        context: vec![1, 2],
        message: "hi".into(),
    };
    let one = chat.ask(req.clone()).await.unwrap().into_inner();
    assert!(one.confidence > 0.0 && one.confidence < 1.0);
    let mut stream = chat.converse(req).await.unwrap().into_inner();
    let mut n = 0;
    while let Some(m) = stream.message().await.unwrap() {
        assert!(m.confidence >= one.confidence);
        n += 1;
    }
    assert_eq!(n, 3);
}

#[test]
fn serve_sets_its_own_nofile_limit() {
    let server = Server::start(&["--nofile", "300"]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let nums: Vec<&str> = line.split_whitespace().filter(|w| w.parse::<u64>().is_ok()).collect();
    assert_eq!(nums, ["300", "300"], "{line}");
}

/// Server behaviours through the control path, observed on the wire as a client sees them.
#[tokio::test]
async fn server_behaviours_flip_status_stall_checks_and_end_watches() {
    use std::io::Write;
    let mut child = Command::new(FDSOAK)
        .args(["serve", "--port", "0", "--control-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let addr: std::net::SocketAddr = line.trim().rsplit(' ').next().unwrap().parse().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut send = |json: &str| writeln!(stdin, "{json}").unwrap();
    let mut c = client(addr).await;
    let status = |c: &mut HealthClient<tonic::transport::Channel>| {
        let mut c = c.clone();
        async move {
            c.check(HealthCheckRequest { service: String::new() })
                .await
                .unwrap()
                .into_inner()
                .status()
        }
    };
    assert_eq!(status(&mut c).await, ServingStatus::Serving);
    let mut watch = c
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::Serving);

    // NOT_SERVING for a second: Check and Watch both see it, then see it end.
    send(r#"{"kind":"not_serving","service":"","duration":"1s"}"#);
    assert_eq!(
        watch.message().await.unwrap().unwrap().status(),
        ServingStatus::NotServing
    );
    assert_eq!(status(&mut c).await, ServingStatus::NotServing);
    let back = tokio::time::timeout(Duration::from_secs(5), watch.message()).await;
    assert_eq!(back.unwrap().unwrap().unwrap().status(), ServingStatus::Serving);
    assert_eq!(status(&mut c).await, ServingStatus::Serving);

    // A stall holds answers for its duration on a live connection.
    send(r#"{"kind":"stall","duration":"600ms"}"#);
    let started = std::time::Instant::now();
    let mut stalled = false;
    while !stalled && started.elapsed() < Duration::from_secs(5) {
        let t = std::time::Instant::now();
        status(&mut c).await;
        stalled = t.elapsed() >= Duration::from_millis(300);
    }
    assert!(stalled, "no Check was held by the stall");

    // end_watch ends the stream with UNAVAILABLE.
    send(r#"{"kind":"end_watch"}"#);
    let end = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .unwrap();
    assert_eq!(end.unwrap_err().code(), tonic::Code::Unavailable);
    let _ = child.kill();
    let _ = child.wait();
}
