//! The load driver: runs one phase's workloads side by side until the phase
//! ends or the run is stopped.
//!
//! Each workload kind lives in its own file with the same shape,
//! `run(spec, channel_source, stats, until, stop)`. Pacing (`rate`) and
//! channel policy (`channel`) are separate pieces that the kinds compose.

pub(crate) mod channel;
pub(crate) mod clock;
pub(crate) mod health_check;
pub(crate) mod rate;
pub(crate) mod retry;
pub(crate) mod rpc;
pub(crate) mod watch;

use crate::metrics::{Registry, WorkloadStats};
use crate::scenario::{defaults, Calls, HealthCheck, Load, Phase, Watch};
use crate::transport::Dial;
use channel::{ChannelSource, LeakBin};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// `fdsoak run --workers`: the driver's runtime threads. One thread makes
/// calls with no cross-thread wake-ups, the cheapest per call measured here
/// (bench/run); the sampler and the checkpoint writer have threads of their own.
pub(crate) const DEFAULT_WORKERS: usize = 1;

/// One phase's load: its workloads, where they dial, and where they count.
pub(crate) struct PhaseWork<'a> {
    pub phase: &'a Phase,
    /// The phase's index in the scenario.
    pub index: usize,
    pub dial: &'a Dial,
    pub registry: &'a Registry,
    /// Every rpc workload's method, by phase and workload index.
    pub methods: &'a crate::rpc::Methods,
    /// Where per_call_leak parks the channels it never closes.
    pub leak_bin: &'a LeakBin,
    /// Cancelled to end the phase early.
    pub stop: &'a CancellationToken,
}

/// Runs every workload of the phase against its dial for the phase's duration.
pub(crate) async fn run_phase(work: PhaseWork<'_>) -> anyhow::Result<()> {
    let PhaseWork {
        phase,
        index: phase_index,
        dial,
        registry,
        methods,
        leak_bin,
        stop,
    } = work;
    let until = Instant::now() + phase.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, w) in phase.workloads.iter().enumerate() {
        let source = ChannelSource::new(dial, w.channel, w.deadline(), w.keepalive(), leak_bin.clone())?;
        let mut stats = WorkloadStats::new(
            &phase.name,
            phase_index,
            &w.label(i),
            w.kind().as_str(),
            w.channel.as_str(),
        );
        stats.max_error_rate = w.max_error_rate;
        let stats = registry.add(stats);
        let stop = stop.child_token();
        match &w.load {
            Load::HealthCheck(h) => {
                tasks.spawn(health_check::run(
                    health_check_spec(w.deadline(), h),
                    source,
                    stats,
                    until,
                    stop,
                ));
            }
            Load::Watch(v) => {
                tasks.spawn(watch::run(watch_spec(w.deadline(), v), source, stats, until, stop));
            }
            Load::Rpc(r) => {
                let method = methods
                    .get(phase_index, i)
                    .ok_or_else(|| anyhow::anyhow!("rpc workload {} has no method prepared", w.label(i)))?;
                let spec = rpc::Spec {
                    pace: rate::Pace::of(&r.calls.pacing),
                    deadline: w.deadline(),
                    retry: retry_policy(&r.calls),
                    stream_duration: r.stream_duration,
                    max_messages: r.max_messages,
                    send_interval: r.send_interval,
                    hangup: r.hangup.unwrap_or_default(),
                    parked: Default::default(),
                    method,
                };
                tasks.spawn(rpc::run(spec, source, stats, until, stop));
            }
        }
    }
    // An idle phase, or one whose workloads finished early, still lasts its full duration.
    tokio::select! {
        _ = tokio::time::sleep_until(until) => {}
        _ = stop.cancelled() => {}
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

fn health_check_spec(deadline: std::time::Duration, h: &HealthCheck) -> health_check::Spec {
    health_check::Spec {
        pace: rate::Pace::of(&h.calls.pacing),
        deadline,
        service: defaults::service(&h.service).to_string(),
        retry: retry_policy(&h.calls),
    }
}

fn watch_spec(deadline: std::time::Duration, v: &Watch) -> watch::Spec {
    watch::Spec {
        streams: v.streams,
        reopen_every: v.reopen_every,
        deadline,
        service: defaults::service(&v.service).to_string(),
    }
}

fn retry_policy(calls: &Calls) -> Option<retry::Policy> {
    calls.retry.as_ref().map(retry::Policy::from_spec)
}

/// A failed call's code as [`crate::metrics::code_of`] gives it, noting in `stats` what the
/// server said at the HTTP/2 level when the status's message names it (a GOAWAY, a reset).
pub(crate) fn failed(stats: &WorkloadStats, status: &tonic::Status) -> tonic::Code {
    let code = crate::metrics::code_of(status);
    if let Some(cause) = crate::transport::heard::Cause::in_message(status.message()) {
        stats.caused(code, cause);
    }
    code
}
