//! Live counters and latency histograms for each workload in each phase.
//!
//! Memory is fixed per workload: one HDR histogram (1 µs to 1 h, three
//! significant digits) and a handful of atomics. Nothing here grows with the
//! number of requests, which is what keeps an eight-hour soak flat.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::CODE_NAMES;

/// The status code of a failed call, as gRPC defines it: tonic reports a
/// broken connection (reset, closed, GOAWAY'd mid-call) as UNKNOWN or
/// CANCELLED with a transport error inside, where gRPC says UNAVAILABLE, the
/// retryable code. fdsoak never cancels a call with a status of its own.
pub fn code_of(status: &tonic::Status) -> tonic::Code {
    match status.code() {
        tonic::Code::Unknown | tonic::Code::Cancelled if std::error::Error::source(status).is_some() => {
            tonic::Code::Unavailable
        }
        code => code,
    }
}

/// Largest latency the histograms hold, in microseconds (one hour); longer values saturate.
const MAX_MICROS: u64 = 3_600_000_000;

/// A fresh latency histogram in microseconds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("static histogram bounds are valid")
}

/// Counters and latency for one workload in one phase.
pub struct WorkloadStats {
    pub phase: String,
    pub phase_index: usize,
    pub name: String,
    pub kind: &'static str,
    pub channel: &'static str,
    /// The workload's own error-rate gate, if any.
    pub max_error_rate: Option<f64>,
    /// Calls (or stream opens) the timetable asked for.
    pub scheduled: AtomicU64,
    /// Scheduled calls not started because max_in_flight was reached.
    pub skipped: AtomicU64,
    /// Calls started.
    pub started: AtomicU64,
    pub in_flight: AtomicU64,
    /// Watch messages received.
    pub messages: AtomicU64,
    /// Attempts made, first attempts included (equals `started` without a retry policy).
    pub attempts: AtomicU64,
    /// Attempts after the first.
    pub retries: AtomicU64,
    /// Calls that succeeded on a retry.
    pub retry_successes: AtomicU64,
    /// Calls that failed after retrying (attempts exhausted, or a code not retried after a retry).
    pub give_ups: AtomicU64,
    codes: [AtomicU64; 17],
    latency: Mutex<Latencies>,
    /// Open model: how late each call started after its scheduled time (µs).
    lag: Mutex<Histogram<u64>>,
    /// What the server said at the HTTP/2 level when attempts failed there.
    causes: Mutex<Causes>,
}

/// Distinct (code, cause) pairs kept per workload and phase: the first ones met.
pub const CAUSES_KEPT: usize = 8;

/// Failed attempts by status code and the server's HTTP/2 words, bounded.
type Causes = std::collections::BTreeMap<(i32, String), u64>;

/// The whole-phase histogram, and the one since the sampler's last tick.
struct Latencies {
    total: Histogram<u64>,
    interval: Histogram<u64>,
}

/// A point-in-time copy of one workload's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub scheduled: u64,
    pub skipped: u64,
    pub started: u64,
    pub in_flight: u64,
    pub ok: u64,
    pub errors: u64,
    pub messages: u64,
}

impl WorkloadStats {
    pub fn new(phase: &str, phase_index: usize, name: &str, kind: &'static str, channel: &'static str) -> Self {
        WorkloadStats {
            phase: phase.to_string(),
            phase_index,
            name: name.to_string(),
            kind,
            channel,
            max_error_rate: None,
            scheduled: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            started: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            retry_successes: AtomicU64::new(0),
            give_ups: AtomicU64::new(0),
            codes: Default::default(),
            latency: Mutex::new(Latencies {
                total: new_histogram(),
                interval: new_histogram(),
            }),
            lag: Mutex::new(new_histogram()),
            causes: Mutex::default(),
        }
    }

    /// Records that an attempt failed with `code` because the server said `cause`
    /// (a GOAWAY, a reset stream). Only failures come here, so the lock is off the calls' path.
    pub fn caused(&self, code: tonic::Code, cause: &str) {
        let mut c = crate::domain::lock(&self.causes);
        let key = (code as i32, cause.to_string());
        if let Some(n) = c.get_mut(&key) {
            *n += 1;
        } else if c.len() < CAUSES_KEPT {
            c.insert(key, 1);
        }
    }

    /// The failures' causes (code, cause, attempts), most frequent first.
    pub fn causes(&self) -> Vec<(&'static str, String, u64)> {
        let c = crate::domain::lock(&self.causes);
        let mut out: Vec<_> = c
            .iter()
            .map(|((code, cause), n)| (CODE_NAMES[(*code as usize).min(16)], cause.clone(), *n))
            .collect();
        out.sort_by_key(|c| std::cmp::Reverse(c.2));
        out
    }

    /// Records a finished call: its status code and its latency from the scheduled start.
    pub fn finish(&self, code: tonic::Code, latency: Duration) {
        let i = (code as usize).min(16);
        self.codes[i].fetch_add(1, Relaxed);
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_MICROS);
        let mut l = crate::domain::lock(&self.latency);
        l.total.saturating_record(micros);
        l.interval.saturating_record(micros);
    }

    /// Records how late a call on the timetable started: from its due time to its first poll.
    pub fn started_late(&self, lag: Duration) {
        let micros = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_MICROS);
        crate::domain::lock(&self.lag).saturating_record(micros);
    }

    /// A copy of the timetable-lag histogram (empty for the closed model and streams).
    pub fn lag_histogram(&self) -> Histogram<u64> {
        crate::domain::lock(&self.lag).clone()
    }

    /// Counts by status code name, leaving out codes never seen.
    pub fn code_counts(&self) -> Vec<(&'static str, u64)> {
        self.codes
            .iter()
            .enumerate()
            .map(|(i, c)| (CODE_NAMES[i], c.load(Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub fn counts(&self) -> Counts {
        let ok = self.codes[0].load(Relaxed);
        let all: u64 = self.codes.iter().map(|c| c.load(Relaxed)).sum();
        Counts {
            scheduled: self.scheduled.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            started: self.started.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            ok,
            errors: all - ok,
            messages: self.messages.load(Relaxed),
        }
    }

    /// A copy of the latency histogram.
    pub fn histogram(&self) -> Histogram<u64> {
        crate::domain::lock(&self.latency).total.clone()
    }

    /// Adds the latencies recorded since the last call into `into`, and starts a new interval.
    pub fn drain_interval(&self, into: &mut Histogram<u64>) {
        let mut l = crate::domain::lock(&self.latency);
        // Same bounds on both sides, so adding cannot fail.
        let _ = into.add(&l.interval);
        l.interval.reset();
    }
}

/// Every workload of the run, in phase order. Entries are added as phases start.
#[derive(Default)]
pub struct Registry {
    entries: Mutex<Vec<Arc<WorkloadStats>>>,
}

impl Registry {
    pub fn add(&self, stats: WorkloadStats) -> Arc<WorkloadStats> {
        let s = Arc::new(stats);
        crate::domain::lock(&self.entries).push(s.clone());
        s
    }

    pub fn all(&self) -> Vec<Arc<WorkloadStats>> {
        crate::domain::lock(&self.entries).clone()
    }

    /// Latencies of every workload since the previous call, in one histogram.
    pub fn drain_interval(&self, into: &mut Histogram<u64>) {
        into.reset();
        for s in crate::domain::lock(&self.entries).iter() {
            s.drain_interval(into);
        }
    }

    /// Counters summed over every workload so far (cumulative).
    pub fn totals(&self) -> Counts {
        let mut t = Counts::default();
        for s in crate::domain::lock(&self.entries).iter() {
            let c = s.counts();
            t.scheduled += c.scheduled;
            t.skipped += c.skipped;
            t.started += c.started;
            t.in_flight += c.in_flight;
            t.ok += c.ok;
            t.errors += c.errors;
            t.messages += c.messages;
        }
        t
    }
}

/// Streams `throughput.csv`: the registry's totals at every sampler tick, and
/// the latency of the calls that finished since the previous tick.
pub struct ThroughputCsv {
    registry: Arc<Registry>,
    out: crate::series::CsvStream,
    interval: Histogram<u64>,
    /// Also fed every row, for charts drawn during the run.
    tap: Option<crate::series::SharedDownsampler>,
}

impl ThroughputCsv {
    pub fn new(registry: Arc<Registry>, out: crate::series::CsvStream) -> Self {
        ThroughputCsv {
            registry,
            out,
            interval: new_histogram(),
            tap: None,
        }
    }

    /// Feeds every row written to `tap` as well.
    pub fn tapped(mut self, tap: crate::series::SharedDownsampler) -> Self {
        self.tap = Some(tap);
        self
    }
}

impl crate::domain::SampleSink for ThroughputCsv {
    fn tick(&mut self, tick: &crate::domain::Tick<'_>) -> anyhow::Result<()> {
        let c = self.registry.totals();
        self.registry.drain_interval(&mut self.interval);
        let h = &self.interval;
        let q = |q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q));
        let row = crate::series::ThroughputRow {
            t_secs: (tick.t_secs * 1000.0).round() / 1000.0,
            phase: tick.phase_name.to_string(),
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
        };
        self.out.write(&row)?;
        if let Some(tap) = &self.tap {
            crate::domain::lock(tap).throughput(&row);
        }
        self.out.flush()
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        self.out.flush()
    }
}
