//! Fires a phase's event faults on time: once `at` a moment into the phase,
//! or `every` so often until the phase ends. Each firing is recorded. The
//! proxy's faults and the kernel's (`via = "kernel"`) are scheduled alike,
//! each by its own [`Injector`]. A toxic that its injector keeps up itself
//! (the kernel's `loss`) is refreshed through the phase, so connections
//! opened during it are covered too, and recorded once it covers one.

use super::{FaultEvent, Injector};
use crate::scenario::Fault;
use std::sync::Arc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often a kept toxic is pointed at the connections there are now.
const KEEP_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Runs the event faults of one phase until `until` or `stop`.
pub(crate) async fn run(
    control: Arc<dyn Injector>,
    faults: Vec<Fault>,
    phase: String,
    run_start: Instant,
    until: Instant,
    stop: CancellationToken,
) {
    let phase_start = Instant::now();
    let mut timers = tokio::task::JoinSet::new();
    let kept = faults.iter().filter(|f| f.is_kernel() && !f.kind.is_event());
    for (slot, fault) in kept.cloned().enumerate() {
        let window = Window {
            phase: phase.clone(),
            run_start,
            until,
            stop: stop.clone(),
        };
        timers.spawn(keep(control.clone(), fault, slot, window));
    }
    for fault in faults.into_iter().filter(|f| f.kind.is_event()) {
        let (control, phase, stop) = (control.clone(), phase.clone(), stop.clone());
        timers.spawn(async move {
            let mut next = phase_start + fault.at.or(fault.every).unwrap_or_default();
            while next < until {
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => {}
                    _ = stop.cancelled() => return,
                }
                let connections = control.fire(&fault);
                let detail = match (fault.kind, fault.duration) {
                    (crate::scenario::FaultKind::Refuse, Some(d)) => {
                        format!("refusing for {}", humantime::format_duration(d))
                    }
                    (crate::scenario::FaultKind::Blackhole, d) if fault.is_kernel() => {
                        let d = d.map_or("until the phase ends".into(), |d| {
                            format!("for {}", humantime::format_duration(d))
                        });
                        format!("{d}, {}", kernel_detail(&fault))
                    }
                    (crate::scenario::FaultKind::Blackhole, Some(d)) => {
                        format!("for {}", humantime::format_duration(d))
                    }
                    (crate::scenario::FaultKind::Blackhole, None) => "for good".into(),
                    (crate::scenario::FaultKind::Goaway, grace) => {
                        let code = fault.h2_error().name();
                        let debug = fault
                            .debug_data
                            .as_deref()
                            .map(|d| format!(" {d:?}"))
                            .unwrap_or_default();
                        let close = grace.map(|g| format!(", closed after {}", humantime::format_duration(g)));
                        format!("{code}{debug}{}", close.unwrap_or_default())
                    }
                    (k, d) if k.is_server() => {
                        let service = fault.service.as_deref().map(|s| format!("service {s:?} "));
                        let d = d.map_or("for good".to_string(), |d| {
                            format!("for {}", humantime::format_duration(d))
                        });
                        match k {
                            crate::scenario::FaultKind::EndWatch => "every Watch stream".into(),
                            _ => format!("{}{d}", service.unwrap_or_default()),
                        }
                    }
                    _ if fault.is_kernel() => kernel_detail(&fault),
                    _ => String::new(),
                };
                control.record(FaultEvent {
                    t_secs: (run_start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
                    phase: phase.clone(),
                    kind: fault.kind.as_str().into(),
                    connections,
                    detail,
                });
                match fault.every {
                    Some(every) if fault.at.is_none() => next += every,
                    _ => break,
                }
            }
        });
    }
    while timers.join_next().await.is_some() {}
}

/// What a kernel fault acted on, in words: "the target's outbound connections to :7001".
fn kernel_detail(fault: &Fault) -> String {
    use crate::scenario::Direction;
    let role = fault.role.unwrap_or_default();
    let which = match fault.direction.unwrap_or_default() {
        Direction::Outbound => "outbound ",
        Direction::Inbound => "inbound ",
        Direction::Both => "",
    };
    let peer = fault.peer.as_deref().map(|p| format!(" with {p}")).unwrap_or_default();
    format!("via the kernel: the {role}'s {which}connections{peer}")
}

/// The phase a kept toxic lives in: its name, the run's start (for event times), its end.
struct Window {
    phase: String,
    run_start: Instant,
    until: Instant,
    stop: CancellationToken,
}

/// Keeps toxic `fault`, the `slot`th of its phase, pointed at the connections there are now
/// until the phase ends; records it once it first covers a connection.
async fn keep(control: Arc<dyn Injector>, fault: Fault, slot: usize, w: Window) {
    let mut tick = tokio::time::interval(KEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut recorded = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::time::sleep_until(w.until) => return,
            _ = w.stop.cancelled() => return,
        }
        let (c, f) = (control.clone(), fault.clone());
        let covered = tokio::task::spawn_blocking(move || c.keep(&f, slot)).await.unwrap_or(0);
        if covered > 0 && !recorded {
            recorded = true;
            control.record(FaultEvent {
                t_secs: (w.run_start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
                phase: w.phase.clone(),
                kind: fault.kind.as_str().into(),
                connections: covered,
                detail: format!(
                    "{}% of packets, until the phase ends, {}",
                    (fault.fraction.unwrap_or_default() * 10_000.0).round() / 100.0,
                    kernel_detail(&fault)
                ),
            });
        }
    }
}
