//! What the descriptor chart draws besides the series: each process's soft
//! limit (when it is near enough the data to be on the scale) and, for a
//! process whose growth gate failed, the projection toward that limit.
//!
//! The static SVG charts and the zoomable ones both draw from here.

use super::model::Summary;
use crate::analysis::findings::human_secs;
use crate::domain::{Gate, Role};
use crate::series::Timeline;

/// A horizontal line at a process's soft limit.
pub struct LimitLine {
    pub name: String,
    pub y: f64,
    /// Index into the chart palette: the process's own colour.
    pub color: usize,
}

/// A dashed line from the last sample toward the limit.
pub struct Projection {
    pub name: String,
    pub color: usize,
    pub from: (f64, f64),
    pub to: (f64, f64),
}

/// The limits and projections of the descriptor chart.
pub struct Marks {
    pub levels: Vec<LimitLine>,
    pub projections: Vec<Projection>,
    /// Limits left off the scale, said under the chart.
    pub notes: Vec<String>,
    /// The time axis's end: the run, or further where a projection reaches.
    pub x_max: f64,
}

/// Marks for the processes of `tl`, in its order (colour `i` is the i-th process).
pub fn marks(s: &Summary, tl: &Timeline, duration: f64) -> Marks {
    let mut m = Marks {
        levels: Vec::new(),
        projections: Vec::new(),
        notes: Vec::new(),
        x_max: duration,
    };
    let peak = tl.processes.values().flatten().map(|r| r.fds).max().unwrap_or(0) as f64;
    for (color, ((role, pid), rows)) in tl.processes.iter().enumerate() {
        if let Some(limit) = rows.last().and_then(|r| r.nofile_soft) {
            if (limit as f64) <= peak * 4.0 {
                m.levels.push(LimitLine {
                    name: format!("{role} soft limit {limit}"),
                    y: limit as f64,
                    color,
                });
            } else {
                m.notes.push(format!("{role}'s soft limit {limit} is off the scale"));
            }
        }
        let analysis = s.processes.iter().find(|p| p.role == *role && p.pid == *pid);
        let flagged = s
            .checks
            .iter()
            .any(|c| !c.passed && c.gate == Gate::MaxGrowthPerHour && c.subject == role.as_str());
        if let (Some(a), Some(last), true) = (analysis, rows.last(), flagged) {
            let per_sec = a.growth_per_hour / 3600.0;
            let ahead = a.time_to_limit_secs.unwrap_or(f64::INFINITY).min(duration * 0.25);
            let to = (last.t_secs + ahead, last.fds as f64 + per_sec * ahead);
            m.x_max = m.x_max.max(to.0);
            m.projections.push(Projection {
                name: format!(
                    "{role} projection: limit in {}",
                    a.time_to_limit_secs.map_or("never".into(), human_secs)
                ),
                color,
                from: (last.t_secs, last.fds as f64),
                to,
            });
        }
    }
    m
}

/// Whether the target's kinds and TCP states are known (not from a counts-only source).
pub fn target_detail(s: &Summary) -> bool {
    s.processes
        .iter()
        .find(|p| p.role == Role::Target)
        .is_none_or(|p| p.has_detail())
}
