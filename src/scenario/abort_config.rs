//! `abort` in `[gates]`: stop a run at the first tick where a gate is sure to
//! fail, instead of burning the night (k6's `abortOnFail`). `abort = true`
//! arms every gate that can be decided before the run ends; a list arms some.

use crate::vocab::Gate;
use serde::{Deserialize, Serialize};

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
