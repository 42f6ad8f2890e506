//! The key-figures table of processes and the table of descriptor groups
//! that grew, shared by the markdown, HTML and terminal exporters so all
//! show the same columns, formatted the same way.

use crate::analysis::findings::human_secs;
use crate::analysis::ProcessAnalysis;

/// Column headers of the process table.
pub(crate) const PROCESS_HEADERS: [&str; 9] = [
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
pub(crate) fn process_cells(p: &ProcessAnalysis) -> [String; 9] {
    [
        p.role.as_str().to_string(),
        if p.pid == 0 { "—".into() } else { p.pid.to_string() },
        p.baseline_fds.to_string(),
        p.final_fds.to_string(),
        format!("{:+}", p.residual_fds),
        format!(
            "{} / {}",
            p.peak_fds,
            p.nofile_soft.map_or("unlimited".into(), |l| l.to_string())
        ),
        format!("{:+.0}", p.growth_per_hour),
        close_wait_cell(p),
        p.time_to_limit_secs.map_or("—".into(), human_secs),
    ]
}

/// The CLOSE_WAIT figure, or "unknown" when the source does not give TCP states.
pub(crate) fn close_wait_cell(p: &ProcessAnalysis) -> String {
    if p.has_detail() {
        p.close_wait_final.to_string()
    } else {
        "unknown".into()
    }
}

/// Sentences under the process table: where counts came from when not `/proc`,
/// what that leaves unknown, and the gaps in any series.
pub(crate) fn source_notes(s: &crate::report::model::Summary) -> Vec<String> {
    let mut notes = Vec::new();
    for p in &s.processes {
        if !p.has_detail() {
            let from = match (p.role, &s.target.fds_from) {
                (crate::domain::Role::Target, Some(url)) => format!(" ({url})"),
                _ => String::new(),
            };
            notes.push(format!(
                "{}: descriptor count and limit from its {} endpoint{from}; descriptor kinds, TCP states (CLOSE_WAIT) and groups are not available from that source, so they are unknown, not zero.",
                p.role, p.source
            ));
        }
        if p.gaps > 0 {
            notes.push(format!(
                "{}: {} of {} reads failed; those ticks are gaps in its series, not zeros.",
                p.role,
                p.gaps,
                p.gaps + p.samples
            ));
        }
    }
    notes
}

/// Column headers of the table of groups that grew.
pub(crate) const GROUP_HEADERS: [&str; 8] = [
    "process",
    "kind",
    "what",
    "baseline",
    "peak",
    "end",
    "change",
    "likely cause",
];

/// With `--origin`: for each group of [`group_rows`], in the same order, where its new
/// descriptors were opened (the top stack in a sentence), or None when no group has an origin.
pub(crate) fn group_origins(processes: &[ProcessAnalysis]) -> Option<Vec<&[crate::analysis::groups::Origin]>> {
    let all: Vec<&[crate::analysis::groups::Origin]> = processes
        .iter()
        .flat_map(|p| p.groups.iter().map(|g| g.origins.as_slice()))
        .collect();
    all.iter().any(|o| !o.is_empty()).then_some(all)
}

/// One row per group that grew, per process, in the order of [`GROUP_HEADERS`]; a
/// steady group (the significance rule) is marked in its change cell.
pub(crate) fn group_rows(processes: &[ProcessAnalysis]) -> Vec<[String; 8]> {
    processes
        .iter()
        .flat_map(|p| p.groups.iter().map(move |g| (p, g)))
        .map(|(p, g)| {
            [
                p.role.as_str().to_string(),
                g.kind.to_string(),
                g.what.clone(),
                g.baseline.to_string(),
                g.peak.to_string(),
                g.end.to_string(),
                format!("{:+}{}", g.change, if g.steady { " steady" } else { "" }),
                g.cause().unwrap_or("").to_string(),
            ]
        })
        .collect()
}
