//! The sampler: every interval, reads each watched process from `/proc` and
//! emits one [`Tick`] to its consumers ([`SampleSink`]s): the CSV writers,
//! the live progress, the analysis trackers and the target watchdog. It
//! writes nothing and decides nothing itself.
//!
//! It runs on its own thread, with a runtime of its own, so a slow `/proc`
//! read (tens of milliseconds at 10,000 sockets) or a slow sink never holds
//! up a worker that the driver's timetable needs. The orchestrator tells it when a phase ends, so
//! the baseline and the residual are read exactly at phase boundaries rather
//! than at the last tick before them. Nothing is kept in memory per sample.
//!
//! A process is read from its `/proc` ([`probe`]), or, when fdsoak cannot
//! see it, from a [`prometheus`] endpoint that gives its count and limit only.
//! A read that fails is a gap (no reading that tick), never a zero.
//!
//! On a few ticks it also takes a [`fingerprint`] of a process (its
//! descriptors grouped by what they point at) and hangs it on that tick's
//! sample: at every phase end, at timed moments through the load phases, and
//! when a process reaches a new peak (at most every [`PEAK_FINGERPRINT_GAP`]).

pub mod fast;
pub mod fingerprint;
pub mod links;
pub(crate) mod peers;
pub mod probe;
pub mod prometheus;

use crate::domain::{FdSource, Role, Sample, SampleSink, Tick};
use anyhow::Context;
use probe::ProbeError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use crate::domain::InodeSet;

/// Everything the sampler needs, fixed for the run.
pub struct SamplerSetup {
    pub interval: Duration,
    pub start: Instant,
    pub phase_names: Vec<String>,
    /// Per phase: whether it counts toward the growth rate.
    pub load_window: Vec<bool>,
    pub current_phase: Arc<AtomicUsize>,
    pub watched: Vec<(Role, Source)>,
    /// Sockets of fdsoak's that are not the driver's (the fault proxy's).
    pub exclude: InodeSet,
    /// How often to fingerprint each process during the load phases; None: only at phase ends and peaks.
    pub fingerprint_every: Option<Duration>,
    /// The roles whose origins are read (a process with an agent, or one the kernel
    /// ledger watches), and what reads them.
    pub origins: Vec<(Role, crate::origin::Reader)>,
}

/// Where one watched process is read from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Its `/proc`, by PID.
    Proc(i32),
    /// A Prometheus endpoint: the count and the limit only.
    Prometheus(Arc<prometheus::Scraper>),
}

impl Source {
    /// The PID, or 0 for a source without one.
    pub fn pid(&self) -> i32 {
        match self {
            Source::Proc(pid) => *pid,
            Source::Prometheus(_) => 0,
        }
    }

    pub fn kind(&self) -> FdSource {
        match self {
            Source::Proc(_) => FdSource::Proc,
            Source::Prometheus(_) => FdSource::Prometheus,
        }
    }
}

/// Fingerprints taken through the load phases, besides phase ends and peaks.
pub const LOAD_FINGERPRINTS: u32 = 12;

/// The interval between timed fingerprints for load phases lasting `load` in all: [`LOAD_FINGERPRINTS`]
/// through them, never more often than every sample or every second.
pub fn fingerprint_every(load: Duration, interval: Duration) -> Option<Duration> {
    let every = (load / LOAD_FINGERPRINTS).max(interval).max(Duration::from_secs(1));
    (every < load).then_some(every)
}

/// Peak fingerprints are at least this far apart, so a fast leak is not fingerprinted every tick.
pub const PEAK_FINGERPRINT_GAP: f64 = 2.0;

/// When each process was last fingerprinted, and why.
#[derive(Debug, Default, Clone, Copy)]
struct Schedule {
    next_fingerprint: f64,
    /// The highest descriptor count a fingerprint was taken at.
    peak_total: u64,
    last_peak_at: Option<f64>,
}

impl Schedule {
    /// Whether to fingerprint a process holding `total` descriptors now.
    fn due(&self, t: f64, total: u64, mark: bool, timed: bool) -> bool {
        let margin = (self.peak_total / 20).max(2);
        let peak =
            total > self.peak_total + margin && self.last_peak_at.is_none_or(|at| t - at >= PEAK_FINGERPRINT_GAP);
        mark || (timed && t >= self.next_fingerprint) || peak
    }

    fn taken(&mut self, t: f64, total: u64, every: Option<Duration>, in_load: bool) {
        if total > self.peak_total {
            self.peak_total = total;
            self.last_peak_at = Some(t);
        }
        if let (Some(every), true) = (every, in_load && t >= self.next_fingerprint) {
            self.next_fingerprint = t + every.as_secs_f64();
        }
    }
}

enum Cmd {
    /// Take a sample now, attributed to this phase, and acknowledge.
    Mark(usize, oneshot::Sender<()>),
    Stop,
}

/// A running sampler thread.
pub struct Sampler {
    tx: mpsc::Sender<Cmd>,
    done: oneshot::Receiver<anyhow::Result<u64>>,
}

impl Sampler {
    /// Starts sampling at once, feeding every tick to `sinks` in order.
    pub fn start(setup: SamplerSetup, sinks: Vec<Box<dyn SampleSink>>) -> Sampler {
        let state = State {
            samples: setup
                .watched
                .iter()
                .map(|(role, source)| Sample {
                    role: *role,
                    pid: source.pid(),
                    source: source.kind(),
                    reading: None,
                    gone: false,
                    fingerprint: None,
                    origins: None,
                })
                .collect(),
            schedules: vec![Schedule::default(); setup.watched.len()],
            setup,
            sinks,
            ticks: 0,
        };
        let (tx, rx) = mpsc::channel(4);
        let (done_tx, done) = oneshot::channel();
        // Off the driver's runtime. It ends when stopped, or when the Sampler is dropped.
        // If the thread cannot start, `done` is dropped and `stop` says so.
        let _ = std::thread::Builder::new()
            .name("fdsoak-sampler".into())
            .spawn(move || {
                yield_to_the_driver();
                let result = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt.block_on(state.run(rx)),
                    Err(e) => Err(anyhow::anyhow!("cannot start the sampler's runtime: {e}")),
                };
                let _ = done_tx.send(result);
            });
        Sampler { tx, done }
    }

    /// Samples now, as the last reading of `phase`; returns once every sink has it.
    pub async fn mark_phase_end(&self, phase: usize) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Mark(phase, tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Takes a final sample, finishes every sink and returns the number of ticks.
    pub async fn stop(self) -> anyhow::Result<u64> {
        let _ = self.tx.send(Cmd::Stop).await;
        self.done.await.context("the sampler thread ended without a result")?
    }
}

/// Lowers this thread's scheduling priority (nice 10, this thread only), so
/// that when the cores are busy the kernel runs the driver's calls before a
/// long sample: the sample is late, its timestamp says when it was read, and
/// no call misses its time. Best effort: a refusal leaves the priority as it was.
fn yield_to_the_driver() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on our own thread id changes only this thread's nice value.
    unsafe {
        let _ = libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
    }
}

struct State {
    setup: SamplerSetup,
    sinks: Vec<Box<dyn SampleSink>>,
    samples: Vec<Sample>,
    schedules: Vec<Schedule>,
    ticks: u64,
}

thread_local! {
    /// Symbolizes native origins on the sampler's thread (it is not `Send`); what it
    /// read of each binary is kept while the thread, and so the run, lasts.
    static SYMBOLS: crate::origin::native::Symbols = Default::default();
}

impl State {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) -> anyhow::Result<u64> {
        let mut ticker = tokio::time::interval(self.setup.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let phase = self.setup.current_phase.load(Ordering::Relaxed);
                    self.sample(phase, false).await?;
                }
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Mark(phase, ack)) => {
                        self.sample(phase, true).await?;
                        let _ = ack.send(());
                    }
                    Some(Cmd::Stop) | None => {
                        let phase = self.setup.current_phase.load(Ordering::Relaxed);
                        self.sample(phase, false).await?;
                        break;
                    }
                }
            }
        }
        for sink in &mut self.sinks {
            sink.finish()?;
        }
        Ok(self.ticks)
    }

    async fn sample(&mut self, phase: usize, mark: bool) -> anyhow::Result<()> {
        let t_secs = self.setup.start.elapsed().as_secs_f64();
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let exclude = crate::domain::lock(&self.setup.exclude).clone();
        let in_load = self.setup.load_window.get(phase).copied().unwrap_or(false);
        let every = self.setup.fingerprint_every;
        for ((s, when), (_, source)) in self
            .samples
            .iter_mut()
            .zip(&mut self.schedules)
            .zip(&self.setup.watched)
        {
            s.fingerprint = None;
            s.origins = None;
            if let Source::Prometheus(scraper) = source {
                s.reading = match scraper.read().await {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::debug!("scraping {} failed: {e}", s.role);
                        None
                    }
                };
                continue;
            }
            let skip = (s.role == Role::Driver).then_some(&exclude);
            (s.reading, s.gone) = match probe::probe_excluding(s.pid, skip) {
                Ok(r) => (Some(r), false),
                Err(ProbeError::Gone(_)) => (None, true),
                Err(e) => {
                    tracing::warn!("sampling {} failed: {e}", s.role);
                    (None, false)
                }
            };
            let Some(total) = s.reading.as_ref().map(|r| r.fds.total) else {
                continue;
            };
            if when.due(t_secs, total, mark, in_load && every.is_some()) {
                let agent = self.setup.origins.iter().find(|(r, _)| *r == s.role);
                let pid = s.pid;
                let load = agent
                    .map(|(_, reader)| move |live: &[i32]| SYMBOLS.with(|symbols| reader.read(pid, live, symbols)));
                let load = load.as_ref().map(|l| l as fingerprint::TableLoader<'_>);
                match fingerprint::fingerprint_with_origins(s.pid, skip, load) {
                    Ok((fp, origins)) => {
                        s.fingerprint = Some(fp);
                        s.origins = origins;
                        when.taken(t_secs, total, every, in_load);
                    }
                    Err(e) => tracing::debug!("fingerprinting {} failed: {e}", s.role),
                }
            }
        }
        let tick = Tick {
            t_secs,
            unix_ms,
            phase,
            phase_name: self.setup.phase_names.get(phase).map_or("", String::as_str),
            in_load_window: in_load,
            samples: &self.samples,
        };
        for sink in &mut self.sinks {
            sink.tick(&tick)?;
        }
        self.ticks += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timed_fingerprints_spread_through_the_load_but_not_denser_than_samples_or_seconds() {
        let s = Duration::from_secs;
        assert_eq!(fingerprint_every(s(60), Duration::from_millis(250)), Some(s(5)));
        assert_eq!(fingerprint_every(s(6), Duration::from_millis(250)), Some(s(1)));
        assert_eq!(fingerprint_every(s(60), s(10)), Some(s(10)));
        assert_eq!(fingerprint_every(s(1), Duration::from_millis(100)), None);
    }

    #[test]
    fn a_fast_leak_is_fingerprinted_at_new_peaks_at_most_every_gap() {
        let mut s = Schedule::default();
        let mut taken = Vec::new();
        // 100 FDs a second for 10 s, sampled every 100 ms, outside the load window.
        for i in 0..100 {
            let (t, total) = (i as f64 / 10.0, 20 + 10 * i as u64);
            if s.due(t, total, false, false) {
                s.taken(t, total, None, false);
                taken.push(t);
            }
        }
        assert_eq!(taken, [0.0, 2.0, 4.0, 6.0, 8.0]);
        // A flat count is never fingerprinted for a peak; a phase end always is.
        assert!(!s.due(20.0, s.peak_total, false, false));
        assert!(s.due(20.0, 1, true, false));
    }

    #[test]
    fn timed_fingerprints_come_every_interval_during_load() {
        let mut s = Schedule::default();
        let every = Some(Duration::from_secs(5));
        let mut taken = Vec::new();
        for i in 0..60 {
            let t = i as f64;
            if s.due(t, 10, false, true) {
                s.taken(t, 10, every, true);
                taken.push(t);
            }
        }
        assert_eq!(taken.len(), 12, "{taken:?}");
        assert!(taken.windows(2).all(|w| w[1] - w[0] == 5.0), "{taken:?}");
    }
}
