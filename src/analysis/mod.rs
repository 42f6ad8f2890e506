//! Turns the stream of samples into per-process figures: baseline, residual,
//! robust growth rate, projected time to the soft limit, peak usage and
//! CLOSE_WAIT growth.
//!
//! A [`Tracker`] is fed one reading at a time and keeps only fixed-size state
//! (see [`series`]), so analysis memory does not grow with run length.
//! [`findings`] then applies the scenario's gates to what the trackers saw.

pub mod findings;
pub mod groups;
pub(crate) mod held;
pub(crate) mod series;
pub(crate) mod verdicts;

#[cfg(test)]
mod tests_support;

use crate::domain::Role;
use crate::domain::{FdSource, Fingerprint, GroupOrigins, Reading, SampleSink, Tick};
use groups::{GroupChange, GroupTracker};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use series::Series;

/// Streaming state for one watched process.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub role: Role,
    pub pid: i32,
    source: FdSource,
    samples: u64,
    load_samples: u64,
    gaps: u64,
    first: Option<Reading>,
    baseline: Option<Reading>,
    last: Option<(f64, Reading)>,
    peak_fds: u64,
    peak_usage: Option<f64>,
    peak_close_wait: u64,
    load_start: Option<f64>,
    load_end: f64,
    fds: Series,
    close_wait: Series,
    groups: GroupTracker,
}

/// What the analysis concluded about one process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessAnalysis {
    pub role: Role,
    pub pid: i32,
    pub samples: u64,
    pub baseline_fds: u64,
    pub final_fds: u64,
    /// Final minus baseline.
    pub residual_fds: i64,
    pub peak_fds: u64,
    pub baseline_sockets: u64,
    pub final_sockets: u64,
    pub close_wait_baseline: u64,
    pub close_wait_final: u64,
    pub close_wait_peak: u64,
    pub nofile_soft: Option<u64>,
    pub nofile_hard: Option<u64>,
    /// Peak FDs over the soft limit, when there is one.
    pub peak_usage: Option<f64>,
    /// Length of the window the growth rate was measured over.
    pub load_window_secs: f64,
    /// Robust (Theil–Sen) FD growth during load, per hour.
    pub growth_per_hour: f64,
    /// growth_per_hour applied to the load window: the growth the trend explains.
    pub growth_fds: f64,
    pub close_wait_growth_per_hour: f64,
    /// At the measured growth, seconds from the last sample until the soft limit (predict_linear).
    pub time_to_limit_secs: Option<f64>,
    pub final_threads: u64,
    pub final_rss_kb: u64,
    /// TCP sockets by state, final minus baseline, for the states that changed (largest first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp_change: Vec<(String, i64)>,
    /// Descriptor groups that grew, end of run minus end of baseline, largest first (from fingerprints).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupChange>,
    /// How many fingerprints were taken of the process (none for a source that gives counts only).
    #[serde(default)]
    pub fingerprints: u64,
    /// Where the readings came from. Only `proc` gives descriptor kinds, TCP states and groups;
    /// from `prometheus` those figures are unknown, not zero.
    #[serde(default)]
    pub source: FdSource,
    /// Ticks at which the process could not be read (a failed scrape): gaps in its series.
    #[serde(default)]
    pub gaps: u64,
    /// Its grown groups whose sockets are the other ends of a peer's leaked connections:
    /// held open by that peer, and left out of this process's gates ([`held`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<held::Held>,
}

impl ProcessAnalysis {
    /// Whether the kinds, TCP states and groups were measured (they are unknown otherwise).
    pub fn has_detail(&self) -> bool {
        self.source.has_detail()
    }
}

impl Tracker {
    pub fn new(role: Role, pid: i32) -> Self {
        Tracker::with_source(role, pid, FdSource::Proc)
    }

    /// A tracker for a process read from `source`.
    pub fn with_source(role: Role, pid: i32, source: FdSource) -> Self {
        Tracker {
            role,
            pid,
            source,
            samples: 0,
            load_samples: 0,
            gaps: 0,
            first: None,
            baseline: None,
            last: None,
            peak_fds: 0,
            peak_usage: None,
            peak_close_wait: 0,
            load_start: None,
            load_end: 0.0,
            fds: Series::default(),
            close_wait: Series::default(),
            groups: GroupTracker::default(),
        }
    }

    /// Feeds one reading taken `t` seconds into the run, during phase `phase`.
    /// `in_load_window` says whether the phase counts for the growth rate.
    pub fn observe(&mut self, t: f64, phase: usize, in_load_window: bool, r: &Reading) {
        self.samples += 1;
        if self.first.is_none() {
            self.first = Some(r.clone());
        }
        if phase == 0 {
            self.baseline = Some(r.clone());
        }
        self.peak_fds = self.peak_fds.max(r.fds.total);
        self.peak_close_wait = self.peak_close_wait.max(r.tcp.close_wait());
        if let Some(soft) = r.nofile_soft.filter(|s| *s > 0) {
            let u = r.fds.total as f64 / soft as f64;
            self.peak_usage = Some(self.peak_usage.map_or(u, |p: f64| p.max(u)));
        }
        if in_load_window {
            self.load_samples += 1;
            self.load_start.get_or_insert(t);
            self.load_end = t;
            self.fds.push(t, r.fds.total as f64);
            self.close_wait.push(t, r.tcp.close_wait() as f64);
        }
        self.last = Some((t, r.clone()));
    }

    /// Feeds one fingerprint, taken with the reading last observed, and its origins if any.
    pub fn observe_fingerprint(
        &mut self,
        phase: usize,
        in_load_window: bool,
        fp: &Fingerprint,
        origins: Option<&GroupOrigins>,
    ) {
        let total = self.last().map_or(0, |r| r.fds.total);
        self.groups.observe(phase, in_load_window, total, fp);
        if let Some(o) = origins {
            self.groups.observe_origins(phase, o);
        }
    }

    /// Readings taken in the load window so far.
    pub fn load_samples(&self) -> u64 {
        self.load_samples
    }

    /// The highest usage of the soft limit so far.
    pub fn peak_usage(&self) -> Option<f64> {
        self.peak_usage
    }

    /// The most descriptors seen so far.
    pub fn peak_fds(&self) -> u64 {
        self.peak_fds
    }

    /// The most recent reading, if any.
    /// The descriptors it held about `t` seconds into the run (the nearest point of its
    /// load-window series, or its last reading from then on), and its soft limit.
    pub fn held_at(&self, t: f64) -> (Option<u64>, Option<u64>) {
        let Some((last_t, last)) = &self.last else {
            return (None, None);
        };
        let nearest = self
            .fds
            .points()
            .into_iter()
            .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
            .filter(|_| t < *last_t)
            .map(|(_, v)| v.round() as u64);
        (nearest.or(Some(last.fds.total)), last.nofile_soft)
    }

    pub fn last(&self) -> Option<&Reading> {
        self.last.as_ref().map(|(_, r)| r)
    }

    /// Summarises what was seen. None if no sample was ever taken.
    pub fn finish(&self) -> Option<ProcessAnalysis> {
        let (_, last) = self.last.as_ref()?;
        let base = self.baseline.as_ref().or(self.first.as_ref())?;
        let window = self.load_start.map_or(0.0, |s| self.load_end - s);
        let per_sec = self.fds.slope().unwrap_or(0.0);
        let cw_per_sec = self.close_wait.slope().unwrap_or(0.0);
        let time_to_limit_secs = match last.nofile_soft {
            Some(soft) if per_sec > 0.0 => Some((soft.saturating_sub(last.fds.total)) as f64 / per_sec),
            _ => None,
        };
        Some(ProcessAnalysis {
            role: self.role,
            pid: self.pid,
            samples: self.samples,
            baseline_fds: base.fds.total,
            final_fds: last.fds.total,
            residual_fds: last.fds.total as i64 - base.fds.total as i64,
            peak_fds: self.peak_fds,
            baseline_sockets: base.fds.socket,
            final_sockets: last.fds.socket,
            close_wait_baseline: base.tcp.close_wait(),
            close_wait_final: last.tcp.close_wait(),
            close_wait_peak: self.peak_close_wait,
            nofile_soft: last.nofile_soft,
            nofile_hard: last.nofile_hard,
            peak_usage: self.peak_usage,
            load_window_secs: window,
            growth_per_hour: per_sec * 3600.0,
            growth_fds: per_sec * window,
            close_wait_growth_per_hour: cw_per_sec * 3600.0,
            time_to_limit_secs,
            final_threads: last.threads,
            final_rss_kb: last.rss_kb,
            tcp_change: tcp_change(&base.tcp, &last.tcp),
            groups: self.groups.changes(),
            fingerprints: self.groups.taken(),
            source: self.source,
            gaps: self.gaps,
            held: Vec::new(),
        })
    }
}

/// Final minus baseline per TCP state, the states that changed, largest change first.
fn tcp_change(base: &crate::domain::TcpStates, last: &crate::domain::TcpStates) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = base
        .iter()
        .zip(last.iter())
        .map(|((st, b), (_, l))| (st.name().to_string(), l as i64 - b as i64))
        .filter(|(_, d)| *d != 0)
        .collect();
    v.sort_by_key(|(_, d)| std::cmp::Reverse(d.abs()));
    v
}

/// The analysis as a consumer of the sampler: one tracker per watched process.
#[derive(Debug, Default)]
pub struct Trackers(pub Vec<Tracker>);

impl Trackers {
    /// The tracker of a role, if that role is watched.
    pub fn get(&self, role: Role) -> Option<&Tracker> {
        self.0.iter().find(|t| t.role == role)
    }

    /// What each tracker concluded, for the processes that were sampled at least once.
    pub fn finish(&self) -> Vec<ProcessAnalysis> {
        self.0.iter().filter_map(Tracker::finish).collect()
    }
}

impl SampleSink for Trackers {
    fn tick(&mut self, tick: &Tick<'_>) -> anyhow::Result<()> {
        for s in tick.samples {
            let at = match self.0.iter().position(|t| t.role == s.role && t.pid == s.pid) {
                Some(i) => i,
                None => {
                    self.0.push(Tracker::with_source(s.role, s.pid, s.source));
                    self.0.len() - 1
                }
            };
            let t = &mut self.0[at];
            let Some(r) = &s.reading else {
                // A process that could not be read (and is not gone) leaves a gap, not a zero.
                t.gaps += u64::from(!s.gone);
                continue;
            };
            t.observe(tick.t_secs, tick.phase, tick.in_load_window, r);
            if let Some(fp) = &s.fingerprint {
                t.observe_fingerprint(tick.phase, tick.in_load_window, fp, s.origins.as_ref());
            }
        }
        Ok(())
    }
}

/// Which phases count toward the growth rate: those with load after the
/// baseline phase; if the scenario has none, every phase with load; failing
/// that, every phase.
pub fn load_window(has_load: &[bool]) -> Vec<bool> {
    let after_first: Vec<bool> = has_load.iter().enumerate().map(|(i, l)| i > 0 && *l).collect();
    if after_first.iter().any(|x| *x) {
        after_first
    } else if has_load.iter().any(|x| *x) {
        has_load.to_vec()
    } else {
        vec![true; has_load.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(total: u64, close_wait: u64) -> Reading {
        let mut r = Reading::default();
        r.fds.total = total;
        r.fds.socket = total / 2;
        r.tcp.set(crate::domain::TcpState::CloseWait, close_wait);
        r.nofile_soft = Some(1024);
        r
    }

    #[test]
    fn growth_residual_and_projection() {
        let mut t = Tracker::new(Role::Target, 1);
        t.observe(0.0, 0, false, &reading(20, 0));
        // 60 s of load growing 2 FDs/s, all of it CLOSE_WAIT.
        for i in 0..=60 {
            t.observe(1.0 + i as f64, 1, true, &reading(20 + 2 * i, 2 * i));
        }
        t.observe(70.0, 2, false, &reading(140, 120));
        let a = t.finish().unwrap();
        assert_eq!((a.baseline_fds, a.final_fds, a.residual_fds), (20, 140, 120));
        assert!((a.growth_per_hour - 7200.0).abs() < 1e-6);
        assert!((a.growth_fds - 120.0).abs() < 1e-6);
        assert!((a.close_wait_growth_per_hour - 7200.0).abs() < 1e-6);
        // (1024 - 140) / 2 per second
        assert!((a.time_to_limit_secs.unwrap() - 442.0).abs() < 1e-6);
        assert!((a.peak_usage.unwrap() - 140.0 / 1024.0).abs() < 1e-9);
    }

    #[test]
    fn flat_process_has_no_projection() {
        let mut t = Tracker::new(Role::Driver, 1);
        for i in 0..50 {
            t.observe(i as f64, usize::from(i > 10), i > 10, &reading(30 + (i % 3), 0));
        }
        let a = t.finish().unwrap();
        assert_eq!(a.growth_per_hour, 0.0);
        assert_eq!(a.time_to_limit_secs, None);
    }

    #[test]
    fn load_window_skips_the_baseline_phase() {
        assert_eq!(load_window(&[true, true, false]), [false, true, false]);
        assert_eq!(load_window(&[true, false]), [true, false]);
        assert_eq!(load_window(&[false, false]), [true, true]);
    }
}
