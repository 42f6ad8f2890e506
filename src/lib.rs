//! fdsoak finds connection and file-descriptor leaks in gRPC services before
//! production does.
//!
//! It replays scripted scenarios of gRPC health checks against a target
//! server while sampling the target's (and its own) open descriptors from
//! `/proc`, and flags growth toward RLIMIT_NOFILE. The binary is a thin shell
//! over [`execute`]; tests drive [`run::run`] in-process.

pub mod analysis;
pub mod cli;
pub mod compare;
pub mod driver;
pub mod fault;
pub mod merge;
pub mod metrics;
pub mod progress;
pub mod report;
pub mod run;
pub mod sampler;
pub mod scenario;
pub mod target;

/// Code generated from `proto/` by `build.rs`.
pub mod proto {
    /// grpc.health.v1.
    pub mod health {
        tonic::include_proto!("grpc.health.v1");
    }
    /// fdsoak.demo.v1, the Chatbot demo service.
    pub mod demo {
        tonic::include_proto!("fdsoak.demo.v1");
    }
}

use cli::Action;
use std::io::Write;

/// Exit code for usage and scenario errors.
pub const EXIT_USAGE: i32 = 2;
/// Exit code for run errors (target unreachable or died, I/O).
pub const EXIT_RUN_ERROR: i32 = 3;

/// Resolves when the user asks us to stop (Ctrl-C or SIGTERM).
pub async fn interrupted() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Runs a parsed command line and returns the process exit code.
pub fn execute(cli: cli::Cli) -> i32 {
    let action = match cli.into_action() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return EXIT_RUN_ERROR;
        }
    };
    match action {
        Action::Validate(files) => validate(&files),
        Action::Compare {
            base,
            candidate,
            format,
            tolerances,
        } => {
            let rendered = compare::compare_paths(&base, &candidate, &tolerances)
                .and_then(|c| Ok((c.render(format)?, c.regressed)));
            match rendered {
                Ok((text, regressed)) => {
                    print!("{text}");
                    i32::from(regressed)
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    EXIT_USAGE
                }
            }
        }
        Action::Probe {
            pid,
            count_only,
            repeat,
            json,
        } => probe(pid, count_only, repeat, json),
        Action::Proxy {
            listen,
            upstream,
            faults,
        } => runtime.block_on(proxy(listen, upstream, faults)),
        Action::Report(dir) => {
            let done = report::json::read(&dir.join("summary.json")).and_then(|s| report::write_all(&s, &dir));
            match done {
                Ok(()) => {
                    println!("{}: report files written", dir.display());
                    0
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    EXIT_USAGE
                }
            }
        }
        Action::Merge { reports, out } => match merge::merge(&reports, &out) {
            Ok(s) => {
                print!("{}", report::terminal::render(&s, &out));
                0
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                EXIT_USAGE
            }
        },
        Action::Serve { addr, knobs, nofile } => runtime.block_on(async move {
            if let Some(n) = nofile {
                if let Err(e) = target::serve::set_nofile(n) {
                    eprintln!("error: cannot set RLIMIT_NOFILE to {n}: {e}");
                    return EXIT_RUN_ERROR;
                }
            }
            let listener = match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: cannot bind {addr}: {e}");
                    return EXIT_RUN_ERROR;
                }
            };
            let bound = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
            println!("fdsoak serve listening on {bound}");
            let _ = std::io::stdout().flush();
            match target::serve::serve(listener, knobs, interrupted()).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    EXIT_RUN_ERROR
                }
            }
        }),
        Action::Run { mut config, quiet } => runtime.block_on(async move {
            config.progress = !quiet;
            match run::run(*config, interrupted()).await {
                Ok(outcome) => {
                    let text = report::terminal::render(&outcome.summary, &outcome.dir);
                    if quiet {
                        // The verdict and the findings: everything before the first blank line.
                        text.lines().take_while(|l| !l.is_empty()).for_each(|l| println!("{l}"));
                    } else {
                        print!("{text}");
                    }
                    outcome.verdict.exit_code()
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    EXIT_RUN_ERROR
                }
            }
        }),
    }
}

fn validate(files: &[std::path::PathBuf]) -> i32 {
    let mut code = 0;
    for f in files {
        match scenario::load(f) {
            Ok(s) => println!("{}: ok ({}, {} phases)", f.display(), s.name, s.phases.len()),
            Err(e) => {
                eprintln!("error: {e}");
                code = EXIT_USAGE;
            }
        }
    }
    code
}

/// `fdsoak probe`: one process, sampled `repeat` times, with the time of one sample.
fn probe(pid: i32, count_only: bool, repeat: u32, json: bool) -> i32 {
    use sampler::probe;
    let mut times = Vec::with_capacity(repeat as usize);
    let mut last = None;
    for _ in 0..repeat {
        let start = std::time::Instant::now();
        let result = if count_only {
            probe::count_fds(pid).map(|n| {
                let mut r = probe::Reading::default();
                r.fds.total = n;
                r
            })
        } else {
            probe::probe(pid)
        };
        times.push(start.elapsed());
        match result {
            Ok(r) => last = Some(r),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_RUN_ERROR;
            }
        }
    }
    times.sort();
    let median_us = times[times.len() / 2].as_secs_f64() * 1e6;
    let min_us = times[0].as_secs_f64() * 1e6;
    let r = last.unwrap_or_default();
    if json {
        let v = serde_json::json!({
            "pid": pid, "count_only": count_only, "repeat": repeat, "median_us": median_us, "min_us": min_us,
            "fds": r.fds, "tcp": r.tcp, "nofile_soft": r.nofile_soft, "threads": r.threads, "rss_kb": r.rss_kb,
        });
        println!("{v}");
    } else {
        let f = r.fds;
        println!(
            "pid {pid}: {} FDs ({} sockets, {} pipes, {} files, {} anon, {} other)",
            f.total, f.socket, f.pipe, f.file, f.anon, f.other
        );
        if !count_only {
            let t = r.tcp;
            println!(
                "  TCP: {} ESTABLISHED, {} CLOSE_WAIT, {} LISTEN, {} TIME_WAIT, {} FIN_WAIT1/2; limit {}",
                t.established,
                t.close_wait,
                t.listen,
                t.time_wait,
                t.fin_wait1 + t.fin_wait2,
                r.nofile_soft.map_or("unlimited".into(), |l| l.to_string())
            );
        }
        println!("  one sample: median {median_us:.0} µs, min {min_us:.0} µs over {repeat}");
    }
    0
}

/// `fdsoak proxy`: the fault proxy alone, its faults as one endless phase, until Ctrl-C.
async fn proxy(listen: std::net::SocketAddr, upstream: std::net::SocketAddr, faults: Vec<scenario::Fault>) -> i32 {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot bind {listen}: {e}");
            return EXIT_RUN_ERROR;
        }
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    println!("fdsoak proxy listening on {addr}");
    let _ = std::io::stdout().flush();
    let control = std::sync::Arc::new(fault::Control::default());
    control.set_toxics(&faults);
    let stop = tokio_util::sync::CancellationToken::new();
    let start = tokio::time::Instant::now();
    let forever = start + std::time::Duration::from_secs(100 * 365 * 86_400);
    let schedule = tokio::spawn(fault::schedule::run(
        control.clone(),
        faults,
        "proxy".into(),
        start,
        forever,
        stop.child_token(),
    ));
    let proxy = tokio::spawn(fault::proxy::run(listener, upstream, control.clone(), stop.clone()));
    interrupted().await;
    stop.cancel();
    let _ = tokio::join!(schedule, proxy);
    let s = control.stats();
    eprintln!(
        "fdsoak proxy: {} connections, {} refused, {} reset, {} closed, {} blackholed, {} events",
        s.accepted,
        s.refused,
        s.reset,
        s.closed,
        s.blackholed,
        control.events().len()
    );
    0
}
