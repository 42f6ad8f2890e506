//! Min/max traces: the series of the zoomable charts, in fixed-size state.
//!
//! Each series is cut into time buckets, and each bucket keeps the lowest and
//! the highest value it saw, in the order they came, so a one-tick spike
//! survives any amount of downsampling. A bucket is never narrower than the
//! sampling interval, so a short run keeps every sample; a 24-hour soak at
//! 1 Hz gets 2-second buckets for descriptors ([`FINE_BUCKETS`]), which is
//! still every sample when a reader zooms into one minute. Latency and
//! throughput use [`COARSE_BUCKETS`]. Memory depends on the planned length,
//! never on the number of rows, and is allocated up front.

use super::{SampleRow, ThroughputRow};
use crate::domain::{Role, TCP_STATES};
use std::collections::BTreeMap;

/// At most this many buckets for descriptor series: 2 s each over 24 hours.
pub const FINE_BUCKETS: usize = 43_200;
/// At most this many for latency and throughput: 10 s each over 24 hours.
pub const COARSE_BUCKETS: usize = 8_640;

/// Fixed-width buckets from t = 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    /// Bucket width in seconds.
    pub width: f64,
    /// Number of buckets; later times fall into the last.
    pub len: usize,
}

impl Grid {
    /// Buckets over `duration`, at most `max` of them and none narrower than `interval`.
    pub fn new(duration: f64, interval: f64, max: usize) -> Grid {
        let duration = duration.max(1e-3);
        let width = (duration / max as f64).max(interval).max(1e-3);
        let len = ((duration / width).ceil() as usize + 1).min(max + 1);
        Grid { width, len }
    }

    /// The bucket of time `t`.
    pub fn at(&self, t: f64) -> usize {
        ((t / self.width).floor().max(0.0) as usize).min(self.len - 1)
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    lo: f32,
    hi: f32,
    lo_first: bool,
}

const EMPTY: Slot = Slot {
    lo: f32::NAN,
    hi: f32::NAN,
    lo_first: true,
};

/// One series: per bucket, its lowest and highest value in time order.
#[derive(Debug, Clone)]
pub struct Trace {
    slots: Vec<Slot>,
}

impl Trace {
    /// Every slot is written here, so the memory is resident from the start.
    pub fn new(len: usize) -> Trace {
        Trace {
            slots: vec![EMPTY; len],
        }
    }

    pub fn add(&mut self, bucket: usize, v: f64) {
        let Some(s) = self.slots.get_mut(bucket) else { return };
        let v = v as f32;
        if s.lo.is_nan() {
            *s = Slot {
                lo: v,
                hi: v,
                lo_first: true,
            };
        } else if v < s.lo {
            s.lo = v;
            s.lo_first = false;
        } else if v > s.hi {
            s.hi = v;
            s.lo_first = true;
        }
    }

    /// The bucket's two extremes, the earlier first; `None` when it saw nothing.
    pub fn get(&self, bucket: usize) -> Option<(f64, f64)> {
        let s = self.slots.get(bucket)?;
        if s.lo.is_nan() {
            None
        } else if s.lo_first {
            Some((s.lo as f64, s.hi as f64))
        } else {
            Some((s.hi as f64, s.lo as f64))
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(|s| s.lo.is_nan())
    }
}

/// One process's descriptor traces.
#[derive(Debug, Clone)]
pub struct ProcTraces {
    pub total: Trace,
    /// The target's kinds, cumulative as the stacked chart draws them:
    /// sockets, + pipes, + files, + anon inodes (the total is the top).
    pub kinds: Vec<Trace>,
    /// The target's TCP states that were ever non-zero, by index into [`TCP_STATES`].
    pub states: BTreeMap<usize, Trace>,
}

/// Every zoomable series of a run.
#[derive(Debug, Clone)]
pub struct Traces {
    pub fine: Grid,
    pub coarse: Grid,
    pub procs: BTreeMap<(Role, i32), ProcTraces>,
    /// ok, errors and skipped calls per second.
    pub rates: [Trace; 3],
    /// p50, p90, p99 and max latency in ms.
    pub latency: [Trace; 4],
    prev: Option<(f64, u64, u64, u64)>,
}

impl Default for Traces {
    fn default() -> Traces {
        Traces::new(0.0, 1.0)
    }
}

impl Traces {
    pub fn new(duration: f64, interval: f64) -> Traces {
        let fine = Grid::new(duration, interval, FINE_BUCKETS);
        let coarse = Grid::new(duration, interval, COARSE_BUCKETS);
        let t = || Trace::new(coarse.len);
        Traces {
            fine,
            coarse,
            procs: BTreeMap::new(),
            rates: [t(), t(), t()],
            latency: [t(), t(), t(), t()],
            prev: None,
        }
    }

    pub fn sample(&mut self, row: &SampleRow) {
        let b = self.fine.at(row.t_secs);
        let len = self.fine.len;
        let detail = row.role == Role::Target;
        let p = self.procs.entry((row.role, row.pid)).or_insert_with(|| ProcTraces {
            total: Trace::new(len),
            kinds: if detail {
                (0..4).map(|_| Trace::new(len)).collect()
            } else {
                Vec::new()
            },
            states: BTreeMap::new(),
        });
        p.total.add(b, row.fds as f64);
        let mut sum = 0;
        for (trace, n) in p.kinds.iter_mut().zip([row.sockets, row.pipes, row.files, row.anon]) {
            sum += n;
            trace.add(b, sum as f64);
        }
        if detail {
            let tcp = row.tcp();
            for (i, (st, _, _)) in TCP_STATES.iter().enumerate() {
                let n = tcp.get(*st);
                if n == 0 && !p.states.contains_key(&i) {
                    continue;
                }
                let total = &p.total;
                let trace = p.states.entry(i).or_insert_with(|| {
                    // Until now the state was zero wherever the process was sampled.
                    let mut t = Trace::new(len);
                    for k in (0..b).filter(|k| total.get(*k).is_some()) {
                        t.add(k, 0.0);
                    }
                    t
                });
                trace.add(b, n as f64);
            }
        }
    }

    pub fn throughput(&mut self, row: &ThroughputRow) {
        let b = self.coarse.at(row.t_secs);
        if let Some((t, ok, errors, skipped)) = self.prev {
            let dt = row.t_secs - t;
            if dt > 1e-6 {
                for (trace, (now, before)) in
                    self.rates
                        .iter_mut()
                        .zip([(row.ok, ok), (row.errors, errors), (row.skipped, skipped)])
                {
                    trace.add(b, now.saturating_sub(before) as f64 / dt);
                }
            }
        }
        self.prev = Some((row.t_secs, row.ok, row.errors, row.skipped));
        for (trace, us) in self
            .latency
            .iter_mut()
            .zip([row.p50_us, row.p90_us, row.p99_us, row.max_us])
        {
            if let Some(us) = us {
                trace.add(b, us as f64 / 1000.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_keeps_its_extremes_in_time_order() {
        let mut t = Trace::new(2);
        for v in [5.0, 9.0, 1.0, 4.0] {
            t.add(0, v);
        }
        assert_eq!(t.get(0), Some((9.0, 1.0)), "the high came before the low");
        for v in [3.0, 1.0, 7.0] {
            t.add(1, v);
        }
        assert_eq!(t.get(1), Some((1.0, 7.0)));
        assert_eq!(t.get(2), None);
    }

    #[test]
    fn buckets_are_never_narrower_than_the_interval_and_never_more_than_the_cap() {
        let short = Grid::new(30.0, 1.0, FINE_BUCKETS);
        assert_eq!((short.width, short.len), (1.0, 31));
        let day = Grid::new(86_400.0, 1.0, FINE_BUCKETS);
        assert_eq!(day.width, 2.0);
        assert!(day.len <= FINE_BUCKETS + 1);
        assert_eq!(day.at(1e9), day.len - 1);
        assert_eq!(day.at(-1.0), 0);
    }

    #[test]
    fn a_state_first_seen_late_reads_zero_before() {
        let mut tr = Traces::new(10.0, 1.0);
        let mut row = SampleRow {
            role: Role::Target,
            pid: 1,
            fds: 10,
            ..SampleRow::default()
        };
        for t in 0..5 {
            row.t_secs = t as f64;
            row.tcp_close_wait = if t >= 3 { 4 } else { 0 };
            tr.sample(&row);
        }
        let p = &tr.procs[&(Role::Target, 1)];
        assert_eq!(p.states.len(), 1);
        let cw = &p.states[&7];
        assert_eq!(cw.get(0), Some((0.0, 0.0)));
        assert_eq!(cw.get(3), Some((4.0, 4.0)));
    }
}
