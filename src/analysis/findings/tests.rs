//! Gates applied to made-up analyses: the sentences users read, and a clean process passing.
use super::*;
use crate::domain::GroupKind;

use crate::analysis::tests_support::{analysis, group};

/// A process whose count stayed within every count gate.
fn quiet(role: Role) -> ProcessAnalysis {
    let mut a = analysis(role);
    a.final_fds = 21;
    a.residual_fds = 1;
    a.final_sockets = 5;
    a.close_wait_final = 0;
    a.peak_usage = Some(0.02);
    a.growth_per_hour = 30.0;
    a.growth_fds = 0.5;
    a.time_to_limit_secs = Some(1e6);
    a.groups.clear();
    a
}

#[test]
fn a_leak_reads_in_plain_language() {
    let (checks, findings) = evaluate(&Gates::default(), &[analysis(Role::Target)], &[]);
    assert!(checks.iter().any(|c| c.gate == Gate::MaxGrowthPerHour && !c.passed));
    let text = findings[0].to_string();
    assert_eq!(
        text,
        "target: +412 FDs (+410 sockets, 398 in CLOSE_WAIT; TCP +398 CLOSE_WAIT, +12 ESTABLISHED) over 1m00s; \
         growing 24720 FDs/hour; at this rate it reaches its limit 1024 in 1m32s; \
         mostly +398 TCP sockets CLOSE_WAIT from clients of :50051, +12 × /tmp/cache.db: \
         likely accepted connections never closed after the peer left"
    );
    let kinds: Vec<_> = findings.iter().map(Finding::kind).collect();
    // The steady file group fails its gate too, but the count findings already name it.
    assert_eq!(
        kinds,
        [FindingKind::FdGrowth, FindingKind::ResidualFds, FindingKind::CloseWait]
    );
    let group_check = checks.iter().find(|c| c.gate == Gate::MinGroupGrowth).unwrap();
    assert!(!group_check.passed);
    assert!(
        group_check.message.as_deref().unwrap().contains("/tmp/cache.db"),
        "{group_check:?}"
    );
}

#[test]
fn a_small_steady_group_is_a_leak_below_every_count_gate() {
    let mut a = quiet(Role::Target);
    a.groups = vec![
        group(GroupKind::Tcp, "ESTABLISHED from clients of :50051", 4, false),
        group(GroupKind::File, "/var/log/app.log", 3, true),
    ];
    let (checks, findings) = evaluate(&Gates::default(), &[a.clone()], &[]);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(
        findings[0].to_string(),
        "target: +3 × /var/log/app.log grew step by step through the load and stayed after the drain: \
         likely a file opened per request"
    );
    let c = checks.iter().find(|c| c.gate == Gate::MinGroupGrowth).unwrap();
    assert_eq!((c.value, c.threshold, c.passed), (3.0, 2.0, false));
    // Below the threshold, or with the rule off, it passes.
    a.groups[1].change = 1;
    assert!(evaluate(&Gates::default(), &[a.clone()], &[]).1.is_empty());
    a.groups[1].change = 3;
    let off = Gates {
        min_group_growth: 0,
        ..Gates::default()
    };
    let (checks, findings) = evaluate(&off, &[a.clone()], &[]);
    assert!(findings.is_empty() && checks.iter().all(|c| c.gate != Gate::MinGroupGrowth));
    // A source with counts only is not judged by groups at all.
    a.fingerprints = 0;
    let (checks, _) = evaluate(&Gates::default(), &[a], &[]);
    assert!(checks.iter().all(|c| c.gate != Gate::MinGroupGrowth));
}

#[test]
fn a_flat_process_passes_every_gate() {
    let mut a = quiet(Role::Driver);
    // Churn that ended a little above the baseline is not steady.
    a.groups = vec![group(GroupKind::Tcp, "ESTABLISHED from clients of :50051", 4, false)];
    let w = WorkloadFigures {
        phase: "load".into(),
        workload: "hc".into(),
        finished: 1000,
        errors: 0,
        top_error: None,
        p99_us: 900,
        max_error_rate: None,
    };
    let (checks, findings) = evaluate(&Gates::default(), &[a], &[w]);
    assert!(findings.is_empty(), "{findings:?}");
    assert!(checks.iter().all(|c| c.passed));
}

#[test]
fn human_durations() {
    assert_eq!(human_secs(5.2), "5s");
    assert_eq!(human_secs(92.0), "1m32s");
    assert_eq!(human_secs(3.0 * 3600.0 + 300.0), "3h05m");
    assert_eq!(human_secs(f64::INFINITY), "never");
}
