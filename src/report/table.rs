//! The key-figures table of processes, shared by the markdown and HTML
//! exporters so both show the same columns, formatted the same way.

use crate::analysis::findings::human_secs;
use crate::analysis::ProcessAnalysis;

/// Column headers of the process table.
pub const PROCESS_HEADERS: [&str; 9] = [
    "process",
    "pid",
    "baseline",
    "final",
    "residual",
    "peak / limit",
    "growth per hour",
    "CLOSE_WAIT",
    "time to limit",
];

/// One process's cells, in the order of [`PROCESS_HEADERS`].
pub fn process_cells(p: &ProcessAnalysis) -> [String; 9] {
    [
        p.role.as_str().to_string(),
        p.pid.to_string(),
        p.baseline_fds.to_string(),
        p.final_fds.to_string(),
        format!("{:+}", p.residual_fds),
        format!(
            "{} / {}",
            p.peak_fds,
            p.nofile_soft.map_or("unlimited".into(), |l| l.to_string())
        ),
        format!("{:+.0}", p.growth_per_hour),
        p.close_wait_final.to_string(),
        p.time_to_limit_secs.map_or("—".into(), human_secs),
    ]
}
