//! The sentences a user reads first: each finding's `Display`, naming the
//! process, what grew and by how much, and a likely cause where the shape of
//! the growth is unmistakable.

use super::Finding;
use crate::analysis::groups::{mostly, GroupChange};
use std::fmt;

/// Formats seconds as a short human duration: `1m32s`, `3h05m`, `2d4h`.
pub fn human_secs(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "never".into();
    }
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

impl Finding {
    /// What a failed descriptor gate measured, without the process or what grew: the
    /// words a leak lists under itself (see `report::leaks`). Other findings: their sentence.
    pub fn gate_words(&self) -> String {
        match self {
            Finding::FdGrowth { a, .. } => {
                let sockets = a.final_sockets as i64 - a.baseline_sockets as i64;
                let states: Vec<String> = a.tcp_change.iter().take(3).map(|(st, d)| format!("{d:+} {st}")).collect();
                let states = if states.is_empty() {
                    String::new()
                } else {
                    format!("; TCP {}", states.join(", "))
                };
                // From a source that gives counts only, the kinds are unknown: say so, not zero.
                let detail = if a.has_detail() {
                    format!("({sockets:+} sockets, {} in CLOSE_WAIT{states})", a.close_wait_final)
                } else {
                    format!("(from its {} endpoint: kinds unknown)", a.source)
                };
                let mut out = format!(
                    "{:+} FDs {detail} over {}; growing {:.0} FDs/hour",
                    a.growth_fds.round() as i64,
                    human_secs(a.load_window_secs),
                    a.growth_per_hour,
                );
                if let (Some(limit), Some(t)) = (a.nofile_soft, a.time_to_limit_secs) {
                    out += &format!("; at this rate it reaches its limit {limit} in {}", human_secs(t));
                }
                out
            }
            Finding::Residual { residual, baseline, close_wait, .. } => format!(
                "{residual:+} FDs still open after the final phase (baseline {baseline}){}",
                if *close_wait > 0 { format!(", {close_wait:+} of them CLOSE_WAIT sockets") } else { String::new() },
            ),
            Finding::CloseWait { over_baseline, peak, .. } => format!(
                "{over_baseline:+} sockets left in CLOSE_WAIT (peak {peak}): peers closed, but the process never closed its end"
            ),
            Finding::GroupLeak { groups, .. } => format!(
                "{} group{} grew step by step through the load and stayed after the drain",
                groups.len(),
                if groups.len() == 1 { "" } else { "s" }
            ),
            Finding::NearLimit { peak, limit, usage, .. } => {
                format!("peaked at {peak} FDs, {:.0}% of its limit {limit}", usage * 100.0)
            }
            Finding::TimeToLimit { secs, limit, per_hour, .. } => {
                format!("growing {per_hour:.0} FDs/hour, it reaches its limit {limit} in {}", human_secs(*secs))
            }
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::FdGrowth { role, a } => {
                write!(f, "{}: {}{}", role.as_str(), self.gate_words(), mostly(&a.groups))
            }
            Finding::Residual { role, groups, .. } | Finding::CloseWait { role, groups, .. } => {
                write!(f, "{}: {}{}", role.as_str(), self.gate_words(), mostly(groups))
            }
            Finding::GroupLeak { role, groups } => {
                let list: Vec<String> = groups.iter().take(3).map(|g| g.to_string()).collect();
                write!(
                    f,
                    "{}: {} grew step by step through the load and stayed after the drain",
                    role.as_str(),
                    list.join(", ")
                )?;
                match groups.iter().find_map(GroupChange::cause) {
                    Some(c) => write!(f, ": likely {c}"),
                    None => Ok(()),
                }
            }
            Finding::NearLimit { role, .. } | Finding::TimeToLimit { role, .. } => {
                write!(f, "{}: {}", role.as_str(), self.gate_words())
            }
            Finding::ErrorRate { phase, workload, errors, finished, top } => write!(
                f,
                "{workload} in phase {phase}: {errors} of {finished} calls failed ({:.1}%), mostly {top}",
                100.0 * *errors as f64 / (*finished).max(1) as f64
            ),
            Finding::SlowP99 { phase, workload, p99_us, max_us } => write!(
                f,
                "{workload} in phase {phase}: p99 latency {:.1} ms is above the gate of {:.1} ms",
                *p99_us as f64 / 1000.0,
                *max_us as f64 / 1000.0
            ),
            Finding::TargetDied { pid, at_secs, phase, last_fds, limit, status } => {
                write!(f, "target (pid {pid}) died {} into the run, during phase {phase}", human_secs(*at_secs))?;
                if let Some(s) = status {
                    write!(f, " ({s})")?;
                }
                match (last_fds, limit) {
                    (Some(n), Some(l)) => write!(f, "; it last held {n} FDs of its limit {l}"),
                    (Some(n), None) => write!(f, "; it last held {n} FDs"),
                    _ => Ok(()),
                }
            }
            Finding::RunError { message } => f.write_str(message),
            Finding::ClientExited { pid, at_secs, phase, status } => write!(
                f,
                "client (pid {pid}) exited on its own {} into the run, during phase {phase} ({status}); its descriptors were watched until then",
                human_secs(*at_secs)
            ),
            Finding::Interrupted { at_secs, phase } => {
                write!(f, "run interrupted {} in, during phase {phase}; figures cover the run so far", human_secs(*at_secs))
            }
            Finding::Aborted { at_secs, phase, gate, reason, .. } => write!(
                f,
                "run aborted {} in, during phase {phase}: gate {gate} (abort armed) was sure to fail: {reason}. The run skipped to its drain; figures cover the run so far",
                human_secs(*at_secs)
            ),
            Finding::HeldByPeer { role, held, judged } => {
                let parts: Vec<String> = held.iter().map(held_sentence).collect();
                write!(f, "{role}: {}", parts.join("; "))?;
                if *judged {
                    f.write_str(" (more than max_held_by_peer allows)")
                } else {
                    write!(f, "; the {role}'s gates leave them out")
                }
            }
        }
    }
}

/// "+13 TCP sockets ESTABLISHED from clients of :44133 held open by the client (pid 812),
/// whose +13 leaked connections they are (ESTABLISHED to 127.0.0.1:44133 from an ephemeral port)".
fn held_sentence(h: &crate::analysis::held::Held) -> String {
    format!(
        "+{} TCP sockets {} held open by the {} (pid {}), whose {:+} leaked connections they are ({})",
        h.count, h.group, h.holder, h.holder_pid, h.holder_change, h.holder_group
    )
}
