//! The `[gates]` table: the thresholds that decide pass or fail, and
//! `abort`, which gates stop a run at the first tick where they are sure to
//! fail, instead of burning the night (k6's `abortOnFail`): `abort = true`
//! arms every gate that can be decided before the run ends; a list arms
//! some. Their defaults are in [`super::defaults::GATES`], with every other
//! default.

use crate::domain::Gate;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The `[gates]` table: thresholds that decide pass or fail.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Gates {
    /// FDs above the baseline allowed at the end of the run.
    pub max_residual_fds: i64,
    /// Robust FD growth rate allowed during the load phases, per hour.
    pub max_growth_per_hour: f64,
    /// Growth below this many FDs over the load window is treated as noise.
    pub min_growth_fds: f64,
    /// CLOSE_WAIT sockets above the baseline allowed at the end of the run.
    pub max_close_wait: i64,
    /// A descriptor group (same path, same socket peer and state…) that grows step by step
    /// through the load and stays after the drain is a leak from this many up; 0 turns it off.
    pub min_group_growth: u64,
    /// Peak FDs as a fraction of the soft RLIMIT_NOFILE.
    pub max_fd_usage: f64,
    /// Fail when growth projects the soft limit sooner than this.
    #[serde(with = "super::duration")]
    #[schemars(with = "String")]
    pub min_time_to_limit: Duration,
    /// Failed calls as a fraction of finished calls, per workload and phase.
    pub max_error_rate: f64,
    /// Optional p99 latency ceiling, per workload and phase.
    #[serde(with = "super::duration::option")]
    #[schemars(with = "Option<String>")]
    pub max_p99: Option<Duration>,
    /// Descriptors a process may hold only because a peer's leaked connections keep their
    /// other ends open (the server ends of a client's leak). Unset: they are the peer's
    /// leak, left out of this process's gates and told as a note; set: judged here too.
    pub max_held_by_peer: Option<i64>,
    /// Stop the run, drain and report at the first tick where an armed gate is sure to fail:
    /// `true` arms min_time_to_limit, max_fd_usage and max_error_rate; a list arms some.
    pub abort: Abort,
}

impl Default for Gates {
    fn default() -> Self {
        super::defaults::GATES
    }
}

/// The gates that can be certain to fail mid-run: a projection to the limit
/// with significant growth, a peak over the usage ceiling, and an error rate
/// that the rest of the phase cannot bring back under its ceiling.
pub const ABORTABLE: [Gate; 3] = [Gate::MinTimeToLimit, Gate::MaxFdUsage, Gate::MaxErrorRate];

/// `abort = true`, `abort = false` or `abort = ["min_time_to_limit", …]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Abort {
    Every(bool),
    Gates(Vec<String>),
}

impl Default for Abort {
    fn default() -> Self {
        Abort::Every(false)
    }
}

impl Abort {
    /// Whether a failure of `gate` stops the run.
    pub fn arms(&self, gate: Gate) -> bool {
        match self {
            Abort::Every(on) => *on && ABORTABLE.contains(&gate),
            Abort::Gates(names) => names.iter().any(|n| n == gate.as_str()),
        }
    }

    /// Whether any gate is armed.
    pub fn any(&self) -> bool {
        ABORTABLE.iter().any(|g| self.arms(*g))
    }

    /// A listed name that is not a gate which can abort, with why.
    pub fn problem(&self) -> Option<String> {
        let Abort::Gates(names) = self else { return None };
        let can: Vec<&str> = ABORTABLE.iter().map(|g| g.as_str()).collect();
        names.iter().find(|n| !can.contains(&n.as_str())).map(|n| {
            let why = if Gate::ALL.iter().any(|g| g.as_str() == n) {
                "cannot be decided before the run ends"
            } else {
                "is not a gate"
            };
            format!("{n:?} {why}; abort takes true, false or a list of {}", can.join(", "))
        })
    }
}
