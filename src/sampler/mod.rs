//! The sampler: every interval, reads each watched process from `/proc`,
//! streams a row per process to `samples.csv` and a throughput row to
//! `throughput.csv`, and feeds the analysis trackers.
//!
//! It runs as its own task. The orchestrator tells it when a phase ends, so
//! the baseline and the residual are read exactly at phase boundaries rather
//! than at the last tick before them. Nothing is kept in memory per sample.

pub mod fast;
pub mod probe;

use crate::analysis::{Role, Tracker};
use crate::metrics::Registry;
use anyhow::Context;
use probe::{ProbeError, Reading};
use serde::Serialize;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Socket inodes to leave out of the driver's counts (the fault proxy's).
pub type InodeSet = Arc<std::sync::Mutex<std::collections::HashSet<u64>>>;

/// One row of `samples.csv`: one process at one instant. Flat on purpose.
#[derive(Debug, Serialize)]
pub struct SampleRow<'a> {
    pub t_secs: f64,
    pub unix_ms: u128,
    pub phase: &'a str,
    pub role: &'static str,
    pub pid: i32,
    pub fds: u64,
    pub sockets: u64,
    pub pipes: u64,
    pub files: u64,
    pub anon: u64,
    pub other: u64,
    pub tcp_established: u64,
    pub tcp_syn_sent: u64,
    pub tcp_syn_recv: u64,
    pub tcp_fin_wait1: u64,
    pub tcp_fin_wait2: u64,
    pub tcp_time_wait: u64,
    pub tcp_close: u64,
    pub tcp_close_wait: u64,
    pub tcp_last_ack: u64,
    pub tcp_listen: u64,
    pub tcp_closing: u64,
    pub nofile_soft: Option<u64>,
    pub nofile_hard: Option<u64>,
    pub threads: u64,
    pub rss_kb: u64,
}

/// One row of `throughput.csv`: the driver's cumulative counters at a tick.
#[derive(Debug, Serialize)]
pub struct ThroughputRow<'a> {
    pub t_secs: f64,
    pub phase: &'a str,
    pub scheduled: u64,
    pub started: u64,
    pub ok: u64,
    pub errors: u64,
    pub skipped: u64,
    pub in_flight: u64,
    pub messages: u64,
    /// Latency percentiles of the calls that finished since the previous row, in µs (empty if none).
    pub p50_us: Option<u64>,
    pub p90_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub max_us: Option<u64>,
}

/// Everything the sampler needs, fixed for the run.
pub struct SamplerSetup {
    pub interval: Duration,
    pub start: Instant,
    pub phase_names: Vec<String>,
    pub load_window: Vec<bool>,
    pub current_phase: Arc<AtomicUsize>,
    pub watched: Vec<(Role, i32)>,
    pub registry: Arc<Registry>,
    /// Cancelled by the sampler when the target process is found gone.
    pub target_gone: CancellationToken,
    /// The latest target figures, for the progress display.
    pub live: Arc<crate::progress::Live>,
    /// Sockets of fdsoak's that are not the driver's (the fault proxy's).
    pub exclude: InodeSet,
}

/// What the sampler hands back when stopped.
pub struct SamplerOutput {
    pub trackers: Vec<Tracker>,
    pub rows: u64,
    /// Seconds into the run when the target was first found gone, and the phase then.
    pub target_died: Option<(f64, usize)>,
}

enum Cmd {
    /// Take a sample now, attributed to this phase, and acknowledge.
    Mark(usize, oneshot::Sender<()>),
    Stop,
}

/// A running sampler task.
pub struct Sampler {
    tx: mpsc::Sender<Cmd>,
    task: tokio::task::JoinHandle<anyhow::Result<SamplerOutput>>,
}

impl Sampler {
    /// Opens the CSV files in `dir` and starts sampling at once.
    pub fn start(setup: SamplerSetup, dir: &Path) -> anyhow::Result<Sampler> {
        let open = |name: &str| -> anyhow::Result<csv::Writer<BufWriter<File>>> {
            let path = dir.join(name);
            let f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            Ok(csv::Writer::from_writer(BufWriter::new(f)))
        };
        let state = State {
            trackers: setup.watched.iter().map(|(r, p)| Tracker::new(*r, *p)).collect(),
            samples: open("samples.csv")?,
            throughput: open("throughput.csv")?,
            rows: 0,
            target_died: None,
            interval: crate::metrics::new_histogram(),
            setup,
        };
        let (tx, rx) = mpsc::channel(4);
        let task = tokio::spawn(state.run(rx));
        Ok(Sampler { tx, task })
    }

    /// Samples now, as the last reading of `phase`; returns once it is written.
    pub async fn mark_phase_end(&self, phase: usize) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Mark(phase, tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Takes a final sample, flushes the files and returns the trackers.
    pub async fn stop(self) -> anyhow::Result<SamplerOutput> {
        let _ = self.tx.send(Cmd::Stop).await;
        self.task.await.context("sampler task panicked")?
    }
}

struct State {
    setup: SamplerSetup,
    trackers: Vec<Tracker>,
    samples: csv::Writer<BufWriter<File>>,
    throughput: csv::Writer<BufWriter<File>>,
    rows: u64,
    target_died: Option<(f64, usize)>,
    interval: hdrhistogram::Histogram<u64>,
}

impl State {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) -> anyhow::Result<SamplerOutput> {
        let mut ticker = tokio::time::interval(self.setup.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let phase = self.setup.current_phase.load(Ordering::Relaxed);
                    self.sample(phase)?;
                }
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Mark(phase, ack)) => {
                        self.sample(phase)?;
                        let _ = ack.send(());
                    }
                    Some(Cmd::Stop) | None => {
                        let phase = self.setup.current_phase.load(Ordering::Relaxed);
                        self.sample(phase)?;
                        break;
                    }
                }
            }
        }
        self.samples.flush()?;
        self.throughput.flush()?;
        Ok(SamplerOutput {
            trackers: self.trackers,
            rows: self.rows,
            target_died: self.target_died,
        })
    }

    fn sample(&mut self, phase: usize) -> anyhow::Result<()> {
        let t = self.setup.start.elapsed().as_secs_f64();
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let phase_name = self.setup.phase_names.get(phase).map_or("", String::as_str);
        let in_load = self.setup.load_window.get(phase).copied().unwrap_or(false);
        for tracker in &mut self.trackers {
            let exclude = (tracker.role == Role::Driver).then(|| self.setup.exclude.lock().unwrap().clone());
            match probe::probe_excluding(tracker.pid, exclude.as_ref()) {
                Ok(r) => {
                    if tracker.role == Role::Target {
                        self.setup.live.target_fds.store(r.fds.total, Ordering::Relaxed);
                        self.setup
                            .live
                            .target_limit
                            .store(r.nofile_soft.unwrap_or(0), Ordering::Relaxed);
                    }
                    self.samples.serialize(row(t, unix_ms, phase_name, tracker, &r))?;
                    self.rows += 1;
                    tracker.observe(t, phase, in_load, &r);
                }
                Err(ProbeError::Gone(_)) if tracker.role == Role::Target => {
                    if self.target_died.is_none() {
                        self.target_died = Some((t, phase));
                        self.setup.target_gone.cancel();
                    }
                }
                Err(e) => tracing::warn!("sampling {} failed: {e}", tracker.role.as_str()),
            }
        }
        let c = self.setup.registry.totals();
        self.setup.registry.drain_interval(&mut self.interval);
        let h = &self.interval;
        let q = |q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q));
        self.throughput.serialize(ThroughputRow {
            t_secs: (t * 1000.0).round() / 1000.0,
            phase: phase_name,
            scheduled: c.scheduled,
            started: c.started,
            ok: c.ok,
            errors: c.errors,
            skipped: c.skipped,
            in_flight: c.in_flight,
            messages: c.messages,
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            max_us: q(1.0),
        })?;
        // Flushed every tick, so a tail -f, or a crash, sees every sample so far.
        self.samples.flush()?;
        self.throughput.flush()?;
        Ok(())
    }
}

fn row<'a>(t: f64, unix_ms: u128, phase: &'a str, tracker: &Tracker, r: &Reading) -> SampleRow<'a> {
    SampleRow {
        t_secs: (t * 1000.0).round() / 1000.0,
        unix_ms,
        phase,
        role: tracker.role.as_str(),
        pid: tracker.pid,
        fds: r.fds.total,
        sockets: r.fds.socket,
        pipes: r.fds.pipe,
        files: r.fds.file,
        anon: r.fds.anon,
        other: r.fds.other,
        tcp_established: r.tcp.established,
        tcp_syn_sent: r.tcp.syn_sent,
        tcp_syn_recv: r.tcp.syn_recv,
        tcp_fin_wait1: r.tcp.fin_wait1,
        tcp_fin_wait2: r.tcp.fin_wait2,
        tcp_time_wait: r.tcp.time_wait,
        tcp_close: r.tcp.close,
        tcp_close_wait: r.tcp.close_wait,
        tcp_last_ack: r.tcp.last_ack,
        tcp_listen: r.tcp.listen,
        tcp_closing: r.tcp.closing,
        nofile_soft: r.nofile_soft,
        nofile_hard: r.nofile_hard,
        threads: r.threads,
        rss_kb: r.rss_kb,
    }
}
