//! Each fault kind's effect on the wire, through the real proxy, against a
//! real `fdsoak serve` process or a real TCP peer; and the library's leaky
//! variants failing with the right finding.

use crate::common::*;
use fdsoak::fault::{proxy, Control};
use fdsoak::proto::health::health_client::HealthClient;
use fdsoak::proto::health::HealthCheckRequest;
use fdsoak::scenario::{parse_fault_spec, Fault};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// An in-process fault proxy in front of `upstream`, stopped on drop.
struct Proxy {
    addr: std::net::SocketAddr,
    control: Arc<Control>,
    stop: CancellationToken,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let control = Arc::new(Control::default());
        let stop = CancellationToken::new();
        tokio::spawn(proxy::run(
            fdsoak::net::Listener::Tcp(listener),
            proxy::Upstream {
                addr: upstream.into(),
                tls: None,
            },
            control.clone(),
            stop.clone(),
        ));
        Proxy { addr, control, stop }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn connect(addr: std::net::SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn fault(spec: &str) -> Fault {
    parse_fault_spec(spec).unwrap()
}

async fn check(addr: std::net::SocketAddr, timeout: Duration) -> Result<(), tonic::Code> {
    let ch = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(timeout);
    let ch = tokio::time::timeout(timeout, ch.connect())
        .await
        .map_err(|_| tonic::Code::DeadlineExceeded)?
        .map_err(|_| tonic::Code::Unavailable)?;
    let mut req = tonic::Request::new(HealthCheckRequest { service: String::new() });
    req.set_timeout(timeout);
    match tokio::time::timeout(timeout, HealthClient::new(ch).check(req)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(s)) => Err(fdsoak::metrics::code_of(&s)),
        Err(_) => Err(tonic::Code::DeadlineExceeded),
    }
}

fn established(pid: i32) -> u64 {
    fdsoak::sampler::probe::probe(pid)
        .unwrap()
        .tcp
        .get(fdsoak::domain::TcpState::Established)
}

#[tokio::test]
async fn reset_aborts_both_sides_at_once() {
    let server = Server::start(&[]);
    let p = Proxy::start(server.addr).await;
    let ch = connect(p.addr).await;
    HealthClient::new(ch.clone())
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(established(server.pid()), 1);
    assert_eq!(p.control.fire(&fault("reset,every=1s")), 1);
    // An RST leaves no FIN handshake behind: the target's socket is gone at once, no CLOSE_WAIT.
    let pid = server.pid();
    wait_until_async(Duration::from_secs(5), "the target's socket to go", move || {
        established(pid) == 0
    })
    .await;
    let r = fdsoak::sampler::probe::probe(server.pid()).unwrap();
    assert_eq!(
        (r.tcp.close_wait(), r.tcp.get(fdsoak::domain::TcpState::Established)),
        (0, 0)
    );
    assert_eq!(p.control.stats().reset, 1);
    // The client's next call reconnects and succeeds.
    let mut again = Ok(());
    for _ in 0..20 {
        again = HealthClient::new(ch.clone())
            .check(HealthCheckRequest::default())
            .await
            .map(|_| ());
        if again.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    again.unwrap();
}

#[tokio::test]
async fn close_sends_fin_and_a_holding_server_keeps_close_wait() {
    let server = Server::start(&["--hold-closed-conns"]);
    let p = Proxy::start(server.addr).await;
    let ch = connect(p.addr).await;
    HealthClient::new(ch.clone())
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    assert!(p.control.fire(&fault("close,every=1s")) >= 1);
    // A FIN, unlike an RST, leaves the server's end in CLOSE_WAIT until it closes it; this one never does.
    let pid = server.pid();
    wait_until_async(Duration::from_secs(5), "CLOSE_WAIT on the target", move || {
        fdsoak::sampler::probe::probe(pid).unwrap().tcp.close_wait() >= 1
    })
    .await;
}

#[tokio::test]
async fn blackhole_stalls_calls_until_their_deadline_then_recovers() {
    let server = Server::start(&[]);
    let p = Proxy::start(server.addr).await;
    let ch = connect(p.addr).await;
    let call = |ch: tonic::transport::Channel| async move {
        let mut req = tonic::Request::new(HealthCheckRequest::default());
        req.set_timeout(Duration::from_millis(300));
        let start = Instant::now();
        let r = tokio::time::timeout(Duration::from_millis(300), HealthClient::new(ch).check(req)).await;
        (r.is_ok_and(|r| r.is_ok()), start.elapsed())
    };
    assert!(call(ch.clone()).await.0);
    assert_eq!(p.control.fire(&fault("blackhole,every=1s,duration=1s")), 1);
    let (ok, took) = call(ch.clone()).await;
    assert!(!ok, "a call into a blackhole does not complete");
    assert!(
        took >= Duration::from_millis(300),
        "it stalls until its deadline: {took:?}"
    );
    // The sockets stayed open: the target still has its end established.
    assert_eq!(established(server.pid()), 1);
    // Each failed try lasts its 300 ms deadline: 20 tries wait out the 1 s window with room to spare.
    let mut recovered = false;
    for _ in 0..20 {
        if call(ch.clone()).await.0 {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "after the window the same connection carries calls again");
}

#[tokio::test]
async fn refuse_makes_connects_fail_then_recover() {
    let server = Server::start(&[]);
    let p = Proxy::start(server.addr).await;
    check(p.addr, Duration::from_secs(2)).await.unwrap();
    p.control.fire(&fault("refuse,at=0s,duration=1s"));
    assert_eq!(
        check(p.addr, Duration::from_secs(2)).await,
        Err(tonic::Code::Unavailable)
    );
    assert!(p.control.stats().refused >= 1);
    // Service comes back once the 1 s window is over.
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    while check(p.addr, Duration::from_secs(2)).await.is_err() {
        assert!(
            tokio::time::Instant::now() < end,
            "connects never recovered after the refuse window"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn latency_and_bandwidth_slow_every_exchange() {
    let server = Server::start(&[]);
    let p = Proxy::start(server.addr).await;
    p.control.set_toxics(&[fault("latency,latency=100ms,jitter=10ms")]);
    let start = Instant::now();
    check(p.addr, Duration::from_secs(5)).await.unwrap();
    // The call crosses the proxy at least once each way, each crossing delayed 100 ms ± 10 ms.
    assert!(start.elapsed() >= Duration::from_millis(180), "{:?}", start.elapsed());
    p.control.set_toxics(&[fault("bandwidth,bytes_per_sec=500")]);
    let before = p.control.stats();
    let start = Instant::now();
    check(p.addr, Duration::from_secs(10)).await.unwrap();
    let took = start.elapsed();
    let after = p.control.stats();
    let bytes = after.bytes_up + after.bytes_down - before.bytes_up - before.bytes_down;
    // Every chunk waits its transmission time at 500 B/s before it is passed on. The count may
    // include the closing frames sent as the channel drops (a GOAWAY is 17 bytes): allow 64.
    let floor = Duration::from_secs_f64(bytes.saturating_sub(64) as f64 / 500.0);
    assert!(
        bytes > 50 && took >= floor,
        "{took:?} for {bytes} bytes, floor {floor:?}"
    );
}

/// A plain TCP peer that accepts one connection and reports when it sees the client's FIN.
fn fin_watcher() -> (std::net::SocketAddr, std::sync::mpsc::Receiver<Instant>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 1024];
        while s.read(&mut buf).unwrap_or(0) > 0 {}
        tx.send(Instant::now()).unwrap();
    });
    (addr, rx)
}

#[tokio::test]
async fn slow_close_holds_the_fin() {
    let (addr, fin) = fin_watcher();
    let p = Proxy::start(addr).await;
    p.control.set_toxics(&[fault("slow_close,delay=600ms")]);
    let client = tokio::task::spawn_blocking(move || {
        let mut c = std::net::TcpStream::connect(p.addr).unwrap();
        c.write_all(b"hello").unwrap();
        wait_until(Duration::from_secs(5), "the bytes through the proxy", || {
            p.control.stats().bytes_up >= 5
        });
        let closed = Instant::now();
        drop(c);
        (closed, p)
    });
    let (closed, _p) = client.await.unwrap();
    let seen = tokio::task::spawn_blocking(move || fin.recv_timeout(Duration::from_secs(5)).unwrap())
        .await
        .unwrap();
    assert!(
        seen.duration_since(closed) >= Duration::from_millis(550),
        "FIN passed after {:?}",
        seen.duration_since(closed)
    );
}

#[tokio::test]
async fn limit_data_closes_after_n_bytes() {
    let server = Server::start(&[]);
    let p = Proxy::start(server.addr).await;
    p.control.set_toxics(&[fault("limit_data,bytes=40")]);
    assert!(
        check(p.addr, Duration::from_secs(2)).await.is_err(),
        "an HTTP/2 handshake needs more than 40 bytes"
    );
    assert!(p.control.stats().limit_data_closes >= 1);
    p.control.set_toxics(&[]);
    check(p.addr, Duration::from_secs(2)).await.unwrap();
}

#[test]
fn leaky_targets_fail_the_matching_library_scenarios() {
    let cases: [(&str, &str, &str); 3] = [
        ("abrupt-client-death", "--hold-closed-conns", "close_wait"),
        ("half-open", "", "residual_fds"),
        (
            "exhaustion-recovery",
            "--nofile 256 --stop-accepting-on-error",
            "error_rate",
        ),
    ];
    // One at a time: each run starts its own target, and the box has two cores.
    for (name, flags, finding) in cases {
        let spawn = format!("{FDSOAK} serve --port {{port}} {flags}");
        let r = run(&repo(&format!("scenarios/{name}.toml")), &["--spawn", &spawn]);
        assert_eq!(r.code, 1, "{name}: {}", r.context());
        let kinds: Vec<String> = r.summary().findings.iter().map(|f| f.kind.to_string()).collect();
        assert!(
            kinds.iter().any(|k| k == finding),
            "{name}: want {finding} in {kinds:?}"
        );
        if name == "exhaustion-recovery" {
            // It said so once, as it stopped accepting: the note tells the count and the time.
            assert!(
                r.stdout
                    .contains("○ the target wrote 'Too many open files' once, first at "),
                "{}",
                r.context()
            );
        }
        assert!(
            r.finding_kinds("driver").is_empty(),
            "{name}: the driver is not at fault: {kinds:?}"
        );
    }
}

#[test]
fn new_channel_leak_retries_are_flagged_on_the_driver_and_new_channel_retries_are_not() {
    let dir = TempDir::new("retry-leak");
    let text = std::fs::read_to_string(repo("scenarios/health-storm-fresh-channels.toml")).unwrap();
    let leaky = dir.write(
        "leak.toml",
        &text.replace("on_retry = \"new_channel\"", "on_retry = \"new_channel_leak\""),
    );
    let r = run(&leaky, &[]);
    assert_eq!(r.code, 1, "{}", r.context());
    assert!(
        r.finding_kinds("driver").contains(&"residual_fds".to_string()),
        "{}",
        r.context()
    );
    let w = &r.summary().workloads[0];
    assert!(w.retries > 20, "{w:?}");
    // The clean variant is run by the library test; here, its retry accounting.
    let clean = run(&repo("scenarios/health-storm-fresh-channels.toml"), &[]);
    assert_eq!(clean.code, 0, "{}", clean.context());
    let w = &clean.summary().workloads[0];
    let (attempts, retries, ok) = (w.attempts, w.retries, w.ok);
    assert_eq!(attempts, w.started + retries, "every attempt is counted");
    assert!(retries > 20 && w.retry_successes > 0 && ok > 900, "{w:?}");
}

#[test]
fn refused_connects_show_up_as_failed_attempts_not_silent_successes() {
    let r = run(&repo("scenarios/outage-retry-storm.toml"), &[]);
    assert_eq!(r.code, 0, "{}", r.context());
    let s = r.summary();
    let refused = s.proxy.as_ref().unwrap().refused;
    assert!(refused > 50, "the outage refused connections: {:?}", s.proxy);
    let outage = s.workloads.iter().find(|w| w.phase == "outage").unwrap().clone();
    let failed_attempts = outage.attempts - outage.ok;
    // per_call channels dial one connection per attempt, so every failed attempt met a refused
    // connection. A few attempts meet two: when a connection dies just after its handshake, tonic's
    // channel dials once more before the call fails (seen: 779 failed attempts, 787 refused; and
    // 779 against 818 with both cores busy with other runs).
    assert!(
        failed_attempts <= refused,
        "{failed_attempts} failed attempts, {refused} refused: {outage:?}"
    );
    assert!(
        refused as f64 <= failed_attempts as f64 * 1.10,
        "{failed_attempts} failed attempts, {refused} refused: {outage:?}"
    );
    assert!(outage.retries > 0 && outage.give_ups > 0, "{outage:?}");
    let events: Vec<&str> = s.fault_events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(events, ["refuse"]);
    let recovered = s.workloads.iter().find(|w| w.phase == "recovered").unwrap();
    assert_eq!(recovered.errors, 0, "service recovers after the window");
}
