//! One home for every default a scenario key has: the workloads', the
//! target's, the sampler's, a retry policy's and the gates'. The driver, the
//! target's lifecycle, the checkpoints and the report all ask here, through
//! the accessors below (serde's defaults too), and [`Scenario::resolved`]
//! fills each default into a copy of the scenario, so `summary.json`'s
//! `scenario.resolved` says what the run used. [`documented`] renders each
//! value as `docs/scenarios.md` shows it, so the page is the only other
//! copy, and a test holds the two equal.
//!
//! Keys whose absence is itself the setting (no retry policy, keepalive
//! off, `concurrency` when `rate` paces the workload) stay absent.

use super::{Abort, Fault, Gates, Load, OriginSpec, Pacing, Scenario, TargetMode, Workload};
use std::time::Duration;

/// `deadline`: per call, or to connect and get the first message.
pub const DEADLINE: Duration = Duration::from_secs(1);
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

/// `[target.fds] timeout`: the longest one scrape may take, and never more than the sampler interval.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// `[origin]`: off; when on, both sources.
pub const ORIGIN: OriginSpec = OriginSpec {
    enabled: false,
    agents: true,
    kernel: true,
};

/// `[sampler] interval`.
pub const SAMPLER_INTERVAL: Duration = Duration::from_secs(1);

/// `[phases.workloads.retry] initial_backoff`.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// `max_backoff`.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// `backoff_multiplier`.
pub const BACKOFF_MULTIPLIER: f64 = 2.0;
/// `jitter`.
pub const JITTER: f64 = 0.2;
/// `retryable`, by name.
pub const RETRYABLE: &[&str] = &["UNAVAILABLE"];

/// `[gates]`, every key.
pub const GATES: Gates = Gates {
    max_residual_fds: 5,
    max_growth_per_hour: 360.0,
    min_growth_fds: 10.0,
    max_close_wait: 5,
    min_group_growth: 2,
    max_fd_usage: 0.8,
    min_time_to_limit: Duration::from_secs(24 * 3600),
    max_error_rate: 0.01,
    max_p99: None,
    max_held_by_peer: None,
    abort: Abort::Every(false),
};

/// Serde's defaults, for the keys whose type has none of its own.
pub(super) mod serde_default {
    use std::time::Duration;

    pub(in crate::scenario) fn sampler_interval() -> Duration {
        super::SAMPLER_INTERVAL
    }
    pub(in crate::scenario) fn initial_backoff() -> Duration {
        super::INITIAL_BACKOFF
    }
    pub(in crate::scenario) fn max_backoff() -> Duration {
        super::MAX_BACKOFF
    }
    pub(in crate::scenario) fn backoff_multiplier() -> f64 {
        super::BACKOFF_MULTIPLIER
    }
    pub(in crate::scenario) fn jitter() -> f64 {
        super::JITTER
    }
    pub(in crate::scenario) fn retryable() -> Vec<String> {
        super::RETRYABLE.iter().map(|s| s.to_string()).collect()
    }
    pub(in crate::scenario) fn open_metric() -> String {
        crate::scenario::OPEN_FDS_METRIC.into()
    }
    pub(in crate::scenario) fn max_metric() -> String {
        crate::scenario::MAX_FDS_METRIC.into()
    }
    pub(in crate::scenario) fn origin_agents() -> bool {
        super::ORIGIN.agents
    }
    pub(in crate::scenario) fn origin_kernel() -> bool {
        super::ORIGIN.kernel
    }
}

/// A duration as the reference shows it: `"24h"` for whole hours, else humantime's `"1s"`, `"100ms"`.
fn shown(d: Duration) -> String {
    let text = match d.as_secs() {
        s if s >= 3600 && s % 3600 == 0 && d.subsec_nanos() == 0 => format!("{}h", s / 3600),
        _ => humantime::format_duration(d).to_string(),
    };
    format!("`\"{text}\"`")
}

/// Each default as the scenario reference's default column shows it, by key:
/// `table.key`, where the table is `docs/scenarios.md`'s name for it
/// (`workloads`, `target`, `sampler`, `retry`, `gates`).
pub fn documented() -> Vec<(&'static str, String)> {
    let g = GATES;
    let none = |v: Option<i64>| v.map_or("none".to_string(), |v| v.to_string());
    vec![
        ("workloads.deadline", shown(DEADLINE)),
        ("workloads.max_in_flight", MAX_IN_FLIGHT.to_string()),
        ("workloads.keepalive_timeout", shown(KEEPALIVE_TIMEOUT)),
        ("target.keepalive_timeout", shown(KEEPALIVE_TIMEOUT)),
        (
            "target.ready_timeout",
            format!(
                "{} ({} for address)",
                shown(READY_TIMEOUT),
                shown(READY_TIMEOUT_ATTACHED)
            ),
        ),
        ("sampler.interval", shown(SAMPLER_INTERVAL)),
        (
            "sampler.checkpoint",
            format!(
                "{} for runs over {} minutes, else none",
                shown(CHECKPOINT),
                CHECKPOINT_FROM.as_secs() / 60
            ),
        ),
        ("retry.initial_backoff", shown(INITIAL_BACKOFF)),
        ("retry.max_backoff", shown(MAX_BACKOFF)),
        ("retry.backoff_multiplier", format!("{BACKOFF_MULTIPLIER:?}")),
        ("retry.jitter", format!("{JITTER:?}")),
        ("retry.retryable", format!("`{RETRYABLE:?}`")),
        ("gates.max_residual_fds", g.max_residual_fds.to_string()),
        ("gates.max_growth_per_hour", g.max_growth_per_hour.to_string()),
        ("gates.min_growth_fds", g.min_growth_fds.to_string()),
        ("gates.max_close_wait", g.max_close_wait.to_string()),
        ("gates.min_group_growth", g.min_group_growth.to_string()),
        ("gates.max_fd_usage", g.max_fd_usage.to_string()),
        ("gates.min_time_to_limit", shown(g.min_time_to_limit)),
        ("gates.max_error_rate", g.max_error_rate.to_string()),
        ("gates.max_p99", g.max_p99.map_or("none".into(), shown)),
        ("gates.max_held_by_peer", none(g.max_held_by_peer)),
        ("gates.abort", format!("`{}`", g.abort == Abort::Every(true))),
    ]
}

impl Workload {
    pub fn deadline(&self) -> Duration {
        self.deadline.unwrap_or(DEADLINE)
    }

    /// Keepalive pings on the workload's channels: (interval, timeout), when on.
    pub fn keepalive(&self) -> Option<(Duration, Duration)> {
        self.keepalive_interval
            .map(|i| (i, self.keepalive_timeout.unwrap_or(KEEPALIVE_TIMEOUT)))
    }

    /// This copy with every default filled in.
    fn resolved(&self, gate: f64) -> Workload {
        let mut w = self.clone();
        w.deadline = Some(self.deadline());
        if let Some((_, timeout)) = self.keepalive() {
            w.keepalive_timeout = Some(timeout);
        }
        w.max_error_rate = Some(self.max_error_rate.unwrap_or(gate));
        match &mut w.load {
            Load::HealthCheck(h) => {
                h.service = Some(service(&h.service).to_string());
                h.calls.pacing = h.calls.pacing.resolved();
            }
            Load::Watch(v) => v.service = Some(service(&v.service).to_string()),
            Load::Rpc(r) => r.calls.pacing = r.calls.pacing.resolved(),
        }
        w
    }
}

/// The service name a health_check or watch workload asks about: by default "", the whole server.
pub fn service(key: &Option<String>) -> &str {
    key.as_deref().unwrap_or("")
}

/// `max_in_flight`, of a workload paced by `rate`.
pub fn max_in_flight(key: Option<u64>) -> u64 {
    key.unwrap_or(MAX_IN_FLIGHT)
}

impl Pacing {
    fn resolved(self) -> Pacing {
        match self {
            Pacing::Rate { rate, max_in_flight: m } => Pacing::Rate {
                rate,
                max_in_flight: Some(max_in_flight(m)),
            },
            closed => closed,
        }
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
