//! `fdsoak probe PID`: one process, sampled `repeat` times, with the time of one sample. No runtime.

use crate::domain::Reading;
use crate::domain::TcpState;
use crate::error::{Error, Exit, Result};
use crate::sampler::probe;
use anyhow::Context;
use clap::Args;
use std::time::{Duration, Instant};

/// Sample one process once (or repeatedly, timing it) and print what the sampler sees.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The process to read.
    pub pid: i32,
    /// Only count descriptors (one directory listing), without kinds or TCP states.
    #[arg(long)]
    pub count_only: bool,
    /// Take this many samples and report the median and minimum time of one.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Also group the descriptors by what they point at (file paths, TCP peers and
    /// states, unix paths, anon inode kinds): a quick lsof that groups.
    #[arg(long)]
    pub fingerprint: bool,
}

pub fn execute(p: ProbeArgs) -> Result<Exit> {
    if let Some(why) = crate::lifecycle::find::unreadable(p.pid) {
        return Err(Error::run(anyhow::anyhow!(why)));
    }
    let mut times: Vec<Duration> = Vec::with_capacity(p.repeat as usize);
    let mut last = Reading::default();
    for _ in 0..p.repeat.max(1) {
        let start = Instant::now();
        last = if p.count_only {
            let mut r = Reading::default();
            r.fds.total = probe::count_fds(p.pid).context("probing").map_err(Error::run)?;
            r
        } else {
            probe::probe(p.pid).context("probing").map_err(Error::run)?
        };
        times.push(start.elapsed());
    }
    times.sort();
    let median_us = times.get(times.len() / 2).copied().unwrap_or_default().as_secs_f64() * 1e6;
    let min_us = times.first().copied().unwrap_or_default().as_secs_f64() * 1e6;
    let (pid, r) = (p.pid, last);
    use crate::sampler::fingerprint::{fingerprint, largest_first};
    // Timed like the sample, so the two costs can be compared.
    let mut fp_times: Vec<Duration> = Vec::new();
    let mut fp = None;
    for _ in 0..if p.fingerprint { p.repeat.max(1) } else { 0 } {
        let start = Instant::now();
        fp = Some(fingerprint(pid, None).context("fingerprinting").map_err(Error::run)?);
        fp_times.push(start.elapsed());
    }
    fp_times.sort();
    let fp_median_us = fp_times.get(fp_times.len() / 2).map(|d| d.as_secs_f64() * 1e6);
    let groups: Option<Vec<serde_json::Value>> = fp.as_ref().map(|fp| {
        largest_first(fp)
            .into_iter()
            .map(|(k, n)| serde_json::json!({"kind": k.kind, "what": k.what, "count": n}))
            .collect()
    });
    if p.json {
        let v = serde_json::json!({
            "pid": pid, "count_only": p.count_only, "repeat": p.repeat, "median_us": median_us, "min_us": min_us,
            "fds": r.fds, "tcp": r.tcp, "nofile_soft": r.nofile_soft, "threads": r.threads, "rss_kb": r.rss_kb,
            "fingerprint": groups, "fingerprint_median_us": fp_median_us,
        });
        println!("{v}");
        return Ok(Exit::Pass);
    }
    let f = r.fds;
    println!(
        "pid {pid}: {} FDs ({} sockets, {} pipes, {} files, {} anon, {} other)",
        f.total, f.socket, f.pipe, f.file, f.anon, f.other
    );
    if !p.count_only {
        let t = |s| r.tcp.get(s);
        println!(
            "  TCP: {} ESTABLISHED, {} CLOSE_WAIT, {} LISTEN, {} TIME_WAIT, {} FIN_WAIT1/2; limit {}",
            t(TcpState::Established),
            t(TcpState::CloseWait),
            t(TcpState::Listen),
            t(TcpState::TimeWait),
            t(TcpState::FinWait1) + t(TcpState::FinWait2),
            r.nofile_soft.map_or("unlimited".into(), |l| l.to_string())
        );
    }
    println!(
        "  one sample: median {median_us:.0} µs, min {min_us:.0} µs over {}",
        p.repeat
    );
    if let Some(us) = fp_median_us {
        println!("  one fingerprint: median {us:.0} µs");
    }
    for (k, n) in fp.as_ref().map(largest_first).unwrap_or_default() {
        println!("{n:>7}  {:<6}  {}", k.kind, k.what);
    }
    Ok(Exit::Pass)
}
