//! Made-up analyses for the unit tests of the gates and of who holds what:
//! a process that leaked, with the groups that grew.

use super::groups::GroupChange;
use super::{ProcessAnalysis, Role};
use crate::domain::GroupKind;

/// A process that ended 412 FDs over its baseline of 20: 398 CLOSE_WAIT from its clients, 12 files.
pub(super) fn analysis(role: Role) -> ProcessAnalysis {
    ProcessAnalysis {
        role,
        pid: 7,
        samples: 100,
        baseline_fds: 20,
        final_fds: 432,
        residual_fds: 412,
        peak_fds: 432,
        baseline_sockets: 4,
        final_sockets: 414,
        close_wait_baseline: 0,
        close_wait_final: 398,
        close_wait_peak: 398,
        nofile_soft: Some(1024),
        nofile_hard: Some(1024),
        peak_usage: Some(432.0 / 1024.0),
        load_window_secs: 60.0,
        growth_per_hour: 412.0 * 60.0,
        growth_fds: 412.0,
        close_wait_growth_per_hour: 398.0 * 60.0,
        time_to_limit_secs: Some(92.0),
        final_threads: 3,
        final_rss_kb: 1000,
        tcp_change: vec![("CLOSE_WAIT".into(), 398), ("ESTABLISHED".into(), 12)],
        groups: vec![
            group(GroupKind::Tcp, "CLOSE_WAIT from clients of :50051", 398, false),
            group(GroupKind::File, "/tmp/cache.db", 12, true),
        ],
        fingerprints: 14,
        source: Default::default(),
        gaps: 0,
        held: Vec::new(),
    }
}

/// A group that grew by `change` from nothing.
pub(super) fn group(kind: GroupKind, what: &str, change: i64, steady: bool) -> GroupChange {
    GroupChange {
        kind,
        what: what.into(),
        baseline: 0,
        peak: change as u64,
        end: change as u64,
        change,
        steady,
        origins: Vec::new(),
    }
}
