//! One home for every default a scenario key has. The driver, the target's
//! lifecycle, the checkpoints and the report all ask here, through the
//! accessors below, and [`Scenario::resolved`] fills each default into a
//! copy of the scenario, so `summary.json`'s `scenario.resolved` says what
//! the run used. `DOCUMENTED` renders each default as `docs/scenarios.md`
//! shows it; a test holds the two equal.
//!
//! Keys whose absence is itself the setting (no retry policy, keepalive
//! off, `concurrency` when `rate` paces the workload) stay absent.

use super::{Fault, Scenario, TargetMode, Workload, WorkloadKind};
use std::time::Duration;

/// `deadline`: per call, or to connect and get the first message.
pub const DEADLINE: Duration = Duration::from_secs(1);
/// `rate`, when neither `rate` nor `concurrency` is given.
pub const RATE: f64 = 1.0;
/// `max_in_flight`, with `rate`.
pub const MAX_IN_FLIGHT: u64 = 1000;
/// `keepalive_timeout`, of a workload's or the built-in target's pings.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// `[target] ready_timeout`, for a target fdsoak starts…
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// …and for one it attaches to.
pub const READY_TIMEOUT_ATTACHED: Duration = Duration::from_secs(5);
/// `[[phases.faults]] probability`: every connection.
pub const PROBABILITY: f64 = 1.0;
/// `[sampler] checkpoint`: runs longer than this checkpoint by default…
pub const CHECKPOINT_FROM: Duration = Duration::from_secs(600);
/// …every this long.
pub const CHECKPOINT: Duration = Duration::from_secs(60);

/// Each default as the scenario reference's default column shows it, by key
/// (`table.key`, as `docs/scenarios.md` names the table of each).
pub const DOCUMENTED: &[(&str, &str)] = &[
    ("workloads.deadline", "`\"1s\"`"),
    ("workloads.max_in_flight", "1000"),
    ("workloads.keepalive_timeout", "`\"5s\"`"),
    ("target.keepalive_timeout", "`\"5s\"`"),
    ("target.ready_timeout", "`\"15s\"` (`\"5s\"` for address)"),
    ("sampler.interval", "`\"1s\"`"),
    ("sampler.checkpoint", "`\"1m\"` for runs over 10 minutes, else none"),
];

impl Workload {
    pub fn deadline(&self) -> Duration {
        self.deadline.unwrap_or(DEADLINE)
    }

    /// Keepalive pings on the workload's channels: (interval, timeout), when on.
    pub fn keepalive(&self) -> Option<(Duration, Duration)> {
        self.keepalive_interval
            .map(|i| (i, self.keepalive_timeout.unwrap_or(KEEPALIVE_TIMEOUT)))
    }

    pub fn rate(&self) -> f64 {
        self.rate.unwrap_or(RATE)
    }

    pub fn max_in_flight(&self) -> u64 {
        self.max_in_flight.unwrap_or(MAX_IN_FLIGHT)
    }

    /// The service name a health_check or watch workload asks about.
    pub fn service(&self) -> &str {
        self.service.as_deref().unwrap_or("")
    }

    /// This copy with every default filled in.
    fn resolved(&self, gate: f64) -> Workload {
        let mut w = self.clone();
        let calls = matches!(w.kind, WorkloadKind::HealthCheck | WorkloadKind::Rpc);
        w.deadline = Some(self.deadline());
        if calls && w.concurrency.is_none() {
            w.rate = Some(self.rate());
            w.max_in_flight = Some(self.max_in_flight());
        }
        if matches!(w.kind, WorkloadKind::HealthCheck | WorkloadKind::Watch) {
            w.service = Some(self.service().to_string());
        }
        if let Some((_, timeout)) = self.keepalive() {
            w.keepalive_timeout = Some(timeout);
        }
        w.max_error_rate = Some(self.max_error_rate.unwrap_or(gate));
        w
    }
}

impl Fault {
    /// The fraction of connections (or live connections, for events) hit.
    pub fn probability(&self) -> f64 {
        self.probability.unwrap_or(PROBABILITY)
    }
}

/// `[target] ready_timeout` for a target in `mode`, unless the scenario says.
pub fn ready_timeout(sc: &Scenario) -> Duration {
    sc.target.ready_timeout.unwrap_or(match sc.target.mode {
        TargetMode::Address => READY_TIMEOUT_ATTACHED,
        _ => READY_TIMEOUT,
    })
}

/// The checkpoint interval: the scenario's (or `--checkpoint`), else the default
/// for long runs; None: no checkpoints.
pub fn checkpoint(sc: &Scenario) -> Option<Duration> {
    let planned: Duration = sc.phases.iter().map(|p| p.duration).sum();
    sc.sampler
        .checkpoint
        .or((planned > CHECKPOINT_FROM).then_some(CHECKPOINT))
        .filter(|d| !d.is_zero())
}

impl Scenario {
    /// This scenario with every default filled in: what the run used.
    pub fn resolved(&self) -> Scenario {
        let mut sc = self.clone();
        sc.target.ready_timeout = Some(ready_timeout(self));
        if let Some((_, timeout)) = self.target.knobs.keepalive() {
            sc.target.knobs.keepalive_timeout = Some(timeout);
        }
        sc.sampler.checkpoint = Some(checkpoint(self).unwrap_or(Duration::ZERO));
        for p in &mut sc.phases {
            for f in &mut p.faults {
                f.probability = Some(f.probability());
            }
            for w in &mut p.workloads {
                *w = w.resolved(self.gates.max_error_rate);
            }
        }
        sc
    }
}
