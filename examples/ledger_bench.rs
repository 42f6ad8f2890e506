//! The kernel ledger's figures for `bench/run` (needs root):
//!
//!   ledger_bench frames [PORT] -- CMD ARGS…
//!       starts CMD watched by the ledger (sending it 20 Health/Checks with
//!       h2load on PORT when given), then prints the median frames per live
//!       descriptor the frame-pointer walk and the unwound sample recovered;
//!   ledger_bench fingerprint -- CMD ARGS…
//!       starts CMD (a process that prints "ready" once it holds its
//!       descriptors), then prints the median milliseconds of a fingerprint
//!       without origins and of one joined to the ledger's.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args.iter().position(|a| a == "--").expect("usage: see the file's head");
    let (mode, cmd) = (&args[..split], &args[split + 1..]);
    let ledger = std::sync::Arc::new(fdsoak::origin::kernel::Ledger::load().expect("loading the kernel ledger"));
    match mode.first().map(String::as_str) {
        Some("frames") => frames(&ledger, mode.get(1), cmd),
        Some("fingerprint") => fingerprint(ledger, cmd),
        _ => panic!("mode: frames or fingerprint"),
    }
}

fn frames(ledger: &fdsoak::origin::kernel::Ledger, port: Option<&String>, cmd: &[String]) {
    let mut child = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    if let Some(port) = port {
        let body = std::env::temp_dir().join("ledger-bench-check.grpc");
        std::fs::write(&body, [0u8; 5]).unwrap();
        let url = format!("http://127.0.0.1:{port}/grpc.health.v1.Health/Check");
        let body = body.to_str().unwrap();
        let grpc = ["-H", "content-type: application/grpc", "-H", "te: trailers"];
        Command::new("h2load")
            .args(["-n", "20", "-c", "1", "-d", body])
            .args(grpc)
            .arg(&url)
            .output()
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(1500));
    let pid = child.id() as i32;
    let (walked, unwound) = ledger.walk_lengths(pid, &live(pid));
    println!("{walked} {unwound}");
    let _ = child.kill();
    let _ = child.wait();
}

fn fingerprint(ledger: std::sync::Arc<fdsoak::origin::kernel::Ledger>, cmd: &[String]) {
    let mut child = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    // The samples of the descriptors it made are drained in the background first.
    std::thread::sleep(Duration::from_millis(500));
    let pid = child.id() as i32;
    let reader = fdsoak::origin::Reader {
        kernel: Some(ledger),
        ..Default::default()
    };
    let symbols = fdsoak::origin::native::Symbols::default();
    let load = |live: &[i32]| reader.read(pid, live, &symbols);
    let time = |with: bool| {
        let mut ms: Vec<f64> = (0..7)
            .map(|_| {
                let t = Instant::now();
                let loader = with.then_some(&load as fdsoak::sampler::fingerprint::TableLoader<'_>);
                fdsoak::sampler::fingerprint::fingerprint_with_origins(pid, None, loader).unwrap();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        ms[ms.len() / 2]
    };
    println!("{:.1} {:.1}", time(false), time(true));
    drop(child.stdin.take());
    let _ = child.wait();
}

fn live(pid: i32) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}
