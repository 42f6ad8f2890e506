//! Each gate's pass/fail test, written once. The report's evaluation
//! ([`super::findings::evaluate`]) and the abort decision
//! (`abort::decision`) both ask here, so a run is never stopped on a
//! test the report would not make. Each function answers "does this fail?".

use crate::scenario::Gates;

/// Growth large enough to count at all (`min_growth_fds`): below it, no growth gate fails.
pub(crate) fn significant(g: &Gates, growth_fds: f64) -> bool {
    growth_fds >= g.min_growth_fds
}

/// `max_growth_per_hour`: significant growth faster than the ceiling.
pub(crate) fn growing(g: &Gates, growth_fds: f64, per_hour: f64) -> bool {
    significant(g, growth_fds) && per_hour > g.max_growth_per_hour
}

/// `min_time_to_limit`: significant growth that reaches the limit sooner than the floor.
pub(crate) fn too_soon_to_limit(g: &Gates, growth_fds: f64, secs: Option<f64>) -> bool {
    significant(g, growth_fds) && secs.is_some_and(|s| s < g.min_time_to_limit.as_secs_f64())
}

/// `max_fd_usage`: a peak over the ceiling, as a fraction of the soft limit.
pub(crate) fn over_fd_usage(g: &Gates, usage: f64) -> bool {
    usage > g.max_fd_usage
}

/// `max_residual_fds`: more descriptors after the drain than the baseline allows.
pub(crate) fn residual(g: &Gates, residual_fds: i64) -> bool {
    residual_fds > g.max_residual_fds
}

/// `max_close_wait`: CLOSE_WAIT sockets over the baseline.
pub(crate) fn close_wait(g: &Gates, over_baseline: i64) -> bool {
    over_baseline > g.max_close_wait
}

/// `max_held_by_peer`: more descriptors held open by peers' leaks than allowed, when it is set.
pub(crate) fn held_too_many(g: &Gates, held: i64) -> bool {
    g.max_held_by_peer.is_some_and(|max| held > max)
}

/// The error-rate ceiling of a workload: its own `max_error_rate`, else the gate's.
pub(crate) fn error_ceiling(g: &Gates, own: Option<f64>) -> f64 {
    own.unwrap_or(g.max_error_rate)
}

/// `max_error_rate`: more errors than the ceiling allows in `calls`.
pub(crate) fn too_many_errors(errors: u64, calls: u64, ceiling: f64) -> bool {
    calls > 0 && errors as f64 > ceiling * calls as f64
}

/// `max_p99`: a p99 over the ceiling, when one is set.
pub(crate) fn slow_p99(g: &Gates, p99_us: u64) -> bool {
    g.max_p99.is_some_and(|max| p99_us > max.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_rate_on_the_ceiling_passes_and_none_fails_without_calls() {
        assert!(!too_many_errors(1, 100, 0.01));
        assert!(too_many_errors(2, 100, 0.01));
        assert!(!too_many_errors(5, 0, 0.0));
    }

    #[test]
    fn growth_below_min_growth_fails_no_growth_gate() {
        let g = Gates::default();
        let small = g.min_growth_fds - 1.0;
        assert!(!growing(&g, small, f64::MAX));
        assert!(!too_soon_to_limit(&g, small, Some(0.0)));
        assert!(too_soon_to_limit(&g, g.min_growth_fds, Some(0.0)));
    }
}
