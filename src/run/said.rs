//! What the processes fdsoak started said: their logs, written into the report
//! directory (`target.log`, `client.log`), and the report's part of them: their
//! last lines when those explain how the run ended (the process died, never
//! became ready, or the run failed), and their own complaints of descriptor
//! exhaustion, told beside what the sampler saw them hold then.

use crate::analysis::findings::Finding;
use crate::child::Tail;
use crate::domain::{FindingKind, Role};
use crate::report::model::{Exhaustion, ProcessOutput};
use std::path::Path;
use std::time::Instant;

/// Last lines a report keeps of a process whose end needs explaining.
pub(crate) const LAST_WORDS: usize = 40;

/// The output of each process fdsoak started, and when the run began.
pub(crate) struct Said {
    start: Instant,
    logs: Vec<(Role, Tail)>,
}

impl Said {
    /// The processes' outputs by role; a role without one (not started by fdsoak) is left out.
    pub(crate) fn new(start: Instant, logs: impl IntoIterator<Item = (Role, Option<Tail>)>) -> Said {
        let logs = logs.into_iter().filter_map(|(role, t)| Some((role, t?))).collect();
        Said { start, logs }
    }

    /// Writes each log into `dir`, atomically; a failed write is logged, not the run's error.
    /// The lines were redacted as they came.
    pub(crate) fn write_logs(&self, dir: &Path) {
        for (role, tail) in &self.logs {
            let path = dir.join(log_name(*role));
            if let Err(e) = crate::report::write_atomic(&path, tail.log(self.start).as_bytes()) {
                tracing::warn!("writing {}: {e:#}", path.display());
            }
        }
    }

    /// The report's part: each process's log, its last lines if `events` need them
    /// explained, and its complaints of exhaustion with what `held` says it held then
    /// (descriptors and limit, by role and seconds into the run).
    pub(crate) fn report(
        &self,
        events: &[Finding],
        held: impl Fn(Role, f64) -> (Option<u64>, Option<u64>),
    ) -> Vec<ProcessOutput> {
        self.logs
            .iter()
            .map(|(role, tail)| {
                let exhaustion = tail.complaints().map(|c| {
                    let first_at_secs = c.first.saturating_duration_since(self.start).as_secs_f64();
                    let (fds, limit) = held(*role, first_at_secs);
                    Exhaustion {
                        words: c.complaint.words().into(),
                        count: c.count,
                        first_at_secs,
                        fds,
                        limit,
                    }
                });
                ProcessOutput {
                    role: *role,
                    log: log_name(*role),
                    last_lines: match explains(*role, events) {
                        true => tail.last_lines(LAST_WORDS),
                        false => Vec::new(),
                    },
                    exhaustion,
                }
            })
            .collect()
    }
}

fn log_name(role: Role) -> String {
    format!("{role}.log")
}

/// Whether a process's last lines help explain how the run ended: it died, or the run failed.
fn explains(role: Role, events: &[Finding]) -> bool {
    events.iter().any(|f| match f.kind() {
        FindingKind::RunError => true,
        FindingKind::TargetDied => role == Role::Target,
        FindingKind::ClientExited => role == Role::Client,
        _ => false,
    })
}
