//! Server behaviours of the built-in target that a scenario schedules like
//! faults: a service's status flips to NOT_SERVING or SERVICE_UNKNOWN and
//! back, Check answers stall while connections stay up, Watch streams end
//! with an error. They trigger a client's retry and reconnect paths.
//!
//! The control path is the target's standard input: `fdsoak serve
//! --control-stdin` reads one JSON fault per line (the scenario's own
//! `[[phases.faults]]` entry), which fdsoak writes as the schedule fires.
//! No port, no extra service: only the process that started the target can
//! steer it.

use crate::proto::health::health_check_response::ServingStatus;
use crate::scenario::{Fault, FaultKind};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

/// What the behaviours have changed, read by Check and Watch.
#[derive(Debug)]
pub(crate) struct State {
    /// Status overrides by service name, each until an instant (None: for good).
    overrides: Mutex<HashMap<String, (ServingStatus, Option<Instant>)>>,
    stall_until: Mutex<Option<Instant>>,
    /// Bumped when an override starts or ends, so Watch streams send the new status.
    pub changes: watch::Sender<u64>,
    /// Bumped to end every Watch stream with an error.
    pub end_watches: watch::Sender<u64>,
}

impl Default for State {
    fn default() -> Self {
        State {
            overrides: Mutex::default(),
            stall_until: Mutex::default(),
            changes: watch::channel(0).0,
            end_watches: watch::channel(0).0,
        }
    }
}

impl State {
    /// The overridden status of `service` now, if any.
    pub(crate) fn status(&self, service: &str) -> Option<ServingStatus> {
        let overrides = crate::domain::lock(&self.overrides);
        let (status, until) = overrides.get(service)?;
        until.is_none_or(|u| Instant::now() < u).then_some(*status)
    }

    /// When a stall in force ends.
    pub(crate) fn stalled_until(&self) -> Option<Instant> {
        let until = (*crate::domain::lock(&self.stall_until))?;
        (Instant::now() < until).then_some(until)
    }

    /// Applies one behaviour now.
    pub(crate) fn apply(self: &std::sync::Arc<Self>, f: &Fault) {
        let until = f.duration.map(|d| Instant::now() + d);
        match f.kind {
            FaultKind::NotServing | FaultKind::ServiceUnknown => {
                let status = if f.kind == FaultKind::NotServing {
                    ServingStatus::NotServing
                } else {
                    ServingStatus::ServiceUnknown
                };
                let service = f.service.clone().unwrap_or_default();
                crate::domain::lock(&self.overrides).insert(service, (status, until));
                self.changes.send_modify(|n| *n += 1);
                if let Some(until) = until {
                    // Watchers learn of the end too.
                    let state = self.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep_until(until).await;
                        state.changes.send_modify(|n| *n += 1);
                    });
                }
            }
            FaultKind::Stall => *crate::domain::lock(&self.stall_until) = until,
            FaultKind::EndWatch => self.end_watches.send_modify(|n| *n += 1),
            _ => tracing::warn!("{} is not a server behaviour", f.kind.as_str()),
        }
        tracing::info!("server behaviour: {}", f.kind.as_str());
    }
}

/// Reads behaviours from standard input, one JSON fault per line, until it closes.
pub(crate) async fn read_stdin(state: std::sync::Arc<State>) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match serde_json::from_str::<Fault>(&line) {
            Ok(f) => state.apply(&f),
            Err(e) => tracing::warn!("control: ignoring {line:?}: {e}"),
        }
    }
}
