//! Deciding, tick by tick, whether an armed gate (`[gates] abort`) is sure
//! to fail, so the run can stop early. It reads the same streaming trackers
//! the report is built from, so a run is never stopped on figures the
//! report would not show.
//!
//! - `max_fd_usage`: the peak only rises, so one tick over the ceiling is certain.
//! - `min_time_to_limit`: the projection must be under the threshold, with
//!   growth past `min_growth_fds`, after at least [`MIN_LOAD_SAMPLES`] load
//!   samples, on [`STREAK`] checks in a row: a pool opening at the start of
//!   the load is a step, not a trend, and never trips it.
//! - `max_error_rate`: the errors so far exceed the ceiling over every call
//!   the phase will have made, even if all the rest succeed (open model only).

use crate::analysis::findings::Finding;
use crate::analysis::{verdicts, Trackers};
use crate::domain::{Gate, Role};
use crate::scenario::Gates;

/// When a check is made: seconds into the run, the phase, and whether it counts as load.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Moment<'a> {
    pub t: f64,
    pub phase: &'a str,
    pub in_load: bool,
}

/// Load samples a process needs before its projection is trusted.
pub(crate) const MIN_LOAD_SAMPLES: u64 = 10;
/// Consecutive checks the projection must stay under the threshold.
pub(crate) const STREAK: u32 = 3;
/// Projections are checked at most this often (seconds): a Theil–Sen fit per process.
pub(crate) const CHECK_EVERY: f64 = 1.0;

/// One workload's counters so far in the current phase, for the error-rate check.
#[derive(Debug, Clone)]
pub(crate) struct PhaseCalls {
    pub workload: String,
    pub phase: String,
    pub errors: u64,
    pub finished: u64,
    /// Calls the phase will still schedule (rate × time left); None in the closed model.
    pub still_to_come: Option<u64>,
    pub max_error_rate: Option<f64>,
}

/// The abort decision's state: streaks per process, and when it last fitted.
#[derive(Debug)]
pub(crate) struct AbortCheck {
    gates: Gates,
    streaks: Vec<(Role, u32)>,
    last_fit: f64,
}

impl AbortCheck {
    pub(crate) fn new(gates: Gates) -> AbortCheck {
        AbortCheck {
            gates,
            streaks: Vec::new(),
            last_fit: f64::NEG_INFINITY,
        }
    }

    /// The finding to stop the run with, if an armed gate is now sure to fail.
    pub(crate) fn check(&mut self, now: Moment<'_>, trackers: &Trackers, calls: &[PhaseCalls]) -> Option<Finding> {
        let Moment { t, phase, in_load } = now;
        let g = &self.gates;
        let stop = |gate: Gate, subject: String, reason: String| {
            Some(Finding::Aborted {
                at_secs: t,
                phase: phase.to_string(),
                gate,
                subject,
                reason,
            })
        };
        if g.abort.arms(Gate::MaxFdUsage) {
            for tr in &trackers.0 {
                if let (Some(usage), Some(last)) = (tr.peak_usage(), tr.last()) {
                    if verdicts::over_fd_usage(g, usage) {
                        let limit = last.nofile_soft.unwrap_or_default();
                        let f = Finding::NearLimit {
                            role: tr.role,
                            peak: tr.peak_fds(),
                            limit,
                            usage,
                        };
                        return stop(Gate::MaxFdUsage, tr.role.to_string(), f.to_string());
                    }
                }
            }
        }
        if g.abort.arms(Gate::MaxErrorRate) {
            for c in calls {
                let max = verdicts::error_ceiling(g, c.max_error_rate);
                let Some(rest) = c.still_to_come else { continue };
                let all = c.finished.saturating_add(rest);
                if verdicts::too_many_errors(c.errors, all, max) {
                    let reason = format!(
                        "{} errors in {} calls of {}@{}: more than {:.2}% of all {} the phase will make",
                        c.errors,
                        c.finished,
                        c.workload,
                        c.phase,
                        max * 100.0,
                        all
                    );
                    return stop(Gate::MaxErrorRate, format!("{}@{}", c.workload, c.phase), reason);
                }
            }
        }
        let trusted = trackers.0.iter().any(|tr| tr.load_samples() >= MIN_LOAD_SAMPLES);
        if g.abort.arms(Gate::MinTimeToLimit) && in_load && trusted && t - self.last_fit >= CHECK_EVERY {
            self.last_fit = t;
            for tr in trackers.0.iter().filter(|tr| tr.load_samples() >= MIN_LOAD_SAMPLES) {
                let Some(a) = tr.finish() else { continue };
                let failing = verdicts::too_soon_to_limit(g, a.growth_fds, a.time_to_limit_secs);
                let at = match self.streaks.iter().position(|(r, _)| *r == tr.role) {
                    Some(i) => i,
                    None => {
                        self.streaks.push((tr.role, 0));
                        self.streaks.len() - 1
                    }
                };
                let streak = &mut self.streaks[at].1;
                *streak = if failing { *streak + 1 } else { 0 };
                if *streak >= STREAK {
                    let f = Finding::TimeToLimit {
                        role: tr.role,
                        secs: a.time_to_limit_secs.unwrap_or_default(),
                        limit: a.nofile_soft.unwrap_or_default(),
                        per_hour: a.growth_per_hour,
                    };
                    return stop(Gate::MinTimeToLimit, tr.role.to_string(), f.to_string());
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Tracker;
    use crate::domain::Reading;
    use crate::scenario::Abort;

    fn reading(total: u64) -> Reading {
        let mut r = Reading::default();
        r.fds.total = total;
        r.nofile_soft = Some(20_000);
        r
    }

    fn armed() -> Gates {
        Gates {
            abort: Abort::Every(true),
            ..Gates::default()
        }
    }

    /// Feeds `total(t)` every 250 ms of load from t = 2 s; returns when the check fired, if it did.
    fn first_abort(gates: Gates, secs: f64, total: impl Fn(f64) -> u64) -> Option<(f64, Finding)> {
        let mut trackers = Trackers(vec![Tracker::new(Role::Target, 1)]);
        let mut check = AbortCheck::new(gates);
        trackers.0[0].observe(0.0, 0, false, &reading(total(0.0)));
        let mut t = 2.0;
        while t <= secs {
            trackers.0[0].observe(t, 1, true, &reading(total(t)));
            if let Some(f) = check.check(
                Moment {
                    t,
                    phase: "load",
                    in_load: true,
                },
                &trackers,
                &[],
            ) {
                return Some((t, f));
            }
            t += 0.25;
        }
        None
    }

    #[test]
    fn a_steady_leak_stops_a_few_checks_after_the_projection_is_trusted() {
        // 20 FDs a second: the limit in under 17 minutes.
        let (t, f) = first_abort(armed(), 60.0, |t| 30 + (20.0 * t) as u64).unwrap();
        // 10 load samples take 2.5 s; then 3 checks a second apart: about 5 s into the load.
        assert!((4.0..=7.5).contains(&t), "{t}");
        assert!(
            matches!(
                &f,
                Finding::Aborted {
                    gate: Gate::MinTimeToLimit,
                    ..
                }
            ),
            "{f:?}"
        );
        // Not armed: never.
        assert!(first_abort(Gates::default(), 60.0, |t| 30 + (20.0 * t) as u64).is_none());
    }

    #[test]
    fn flat_noisy_and_stepped_counts_never_stop_a_run() {
        assert!(first_abort(armed(), 120.0, |_| 40).is_none());
        assert!(first_abort(armed(), 120.0, |t| 40 + (t * 7.0) as u64 % 3).is_none());
        // A pool of 30 opened at the start of the load, then flat.
        assert!(first_abort(armed(), 120.0, |t| if t < 2.5 { 40 } else { 70 }).is_none());
    }

    #[test]
    fn usage_over_the_ceiling_stops_at_once() {
        let (t, f) = first_abort(armed(), 60.0, |t| if t < 3.0 { 40 } else { 16_500 }).unwrap();
        assert_eq!(t, 3.0);
        assert!(matches!(
            f,
            Finding::Aborted {
                gate: Gate::MaxFdUsage,
                ..
            }
        ));
    }

    #[test]
    fn errors_past_recovery_stop_but_errors_that_can_still_be_diluted_do_not() {
        let trackers = Trackers::default();
        let calls = |errors, rest| PhaseCalls {
            workload: "w".into(),
            phase: "load".into(),
            errors,
            finished: 100,
            still_to_come: rest,
            max_error_rate: None,
        };
        let mut check = AbortCheck::new(armed());
        // 1% of the 1,100 calls the phase will make is 11.
        assert!(check
            .check(
                Moment {
                    t: 5.0,
                    phase: "load",
                    in_load: true
                },
                &trackers,
                &[calls(10, Some(1000))]
            )
            .is_none());
        assert!(check
            .check(
                Moment {
                    t: 5.0,
                    phase: "load",
                    in_load: true
                },
                &trackers,
                &[calls(50, None)]
            )
            .is_none());
        let f = check
            .check(
                Moment {
                    t: 5.0,
                    phase: "load",
                    in_load: true,
                },
                &trackers,
                &[calls(12, Some(1000))],
            )
            .unwrap();
        assert!(matches!(
            f,
            Finding::Aborted {
                gate: Gate::MaxErrorRate,
                ..
            }
        ));
    }

    #[test]
    fn only_gates_decidable_mid_run_can_be_armed() {
        assert!(Abort::Gates(vec!["max_fd_usage".into()]).problem().is_none());
        assert!(Abort::Gates(vec!["max_residual_fds".into()])
            .problem()
            .unwrap()
            .contains("cannot be decided"));
        assert!(Abort::Gates(vec!["nope".into()])
            .problem()
            .unwrap()
            .contains("is not a gate"));
        let some = Abort::Gates(vec!["max_fd_usage".into()]);
        assert!(some.arms(Gate::MaxFdUsage) && !some.arms(Gate::MinTimeToLimit));
        assert!(!Abort::Every(true).arms(Gate::MaxResidualFds));
    }
}
