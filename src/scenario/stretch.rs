//! Stretching a scenario for a soak without editing it: `--duration
//! NAME=DUR` sets named phases, and `--soak DUR` scales every load phase so
//! that the run lasts about DUR, keeping the baseline (the first phase) and
//! the idle phases (the drain) as written. Each change is kept as a
//! [`PhaseOverride`] for the report.

use super::duration::MAX_DURATION;
use super::Scenario;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One phase whose length the command line changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PhaseOverride {
    pub phase: String,
    /// As the scenario wrote it, and as it ran.
    pub written_secs: f64,
    pub run_secs: f64,
    /// `--duration` or `--soak`.
    pub by: String,
}

/// Which phases `--soak` scales: those after the first that carry load (a client counts as load).
fn scaled(sc: &Scenario) -> Vec<bool> {
    sc.phases
        .iter()
        .enumerate()
        .map(|(i, p)| i > 0 && (!p.workloads.is_empty() || sc.client.is_some()))
        .collect()
}

/// Applies `--duration NAME=DUR` settings; an unknown phase name or a bad duration is the message.
pub(crate) fn set_durations(sc: &mut Scenario, settings: &[String]) -> Result<Vec<PhaseOverride>, String> {
    let mut done = Vec::new();
    for s in settings {
        let (name, dur) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not PHASE=DURATION (such as load=8h)"))?;
        let d = super::duration::parse(dur.trim()).map_err(|e| format!("{s:?}: {e}"))?;
        if d.is_zero() {
            return Err(format!("{s:?}: a phase must last more than 0"));
        }
        let names: Vec<String> = sc.phases.iter().map(|p| p.name.clone()).collect();
        let phase = sc.phases.iter_mut().find(|p| p.name == name.trim()).ok_or_else(|| {
            format!(
                "no phase named {:?}; the scenario's phases are {}",
                name.trim(),
                names.join(", ")
            )
        })?;
        done.push(PhaseOverride {
            phase: phase.name.clone(),
            written_secs: phase.duration.as_secs_f64(),
            run_secs: d.as_secs_f64(),
            by: "--duration".into(),
        });
        phase.duration = d;
    }
    Ok(done)
}

/// Scales the load phases so the whole run lasts about `total`.
pub(crate) fn soak(sc: &mut Scenario, total: Duration) -> Result<Vec<PhaseOverride>, String> {
    let scaled = scaled(sc);
    let (kept, load): (Duration, Duration) =
        sc.phases
            .iter()
            .zip(&scaled)
            .fold((Duration::ZERO, Duration::ZERO), |(k, l), (p, s)| {
                if *s {
                    (k, l + p.duration)
                } else {
                    (k + p.duration, l)
                }
            });
    if load.is_zero() {
        return Err("the scenario has no load phase after its baseline to stretch".into());
    }
    if total > MAX_DURATION {
        return Err(format!("at most {} days", super::duration::MAX_DAYS));
    }
    let room = total.checked_sub(kept).filter(|r| !r.is_zero()).ok_or_else(|| {
        format!(
            "{} leaves no time for load: the baseline and idle phases kept as written already take {}",
            humantime::format_duration(total),
            humantime::format_duration(kept)
        )
    })?;
    let factor = room.as_secs_f64() / load.as_secs_f64();
    let mut done = Vec::new();
    for (p, s) in sc.phases.iter_mut().zip(scaled) {
        if !s {
            continue;
        }
        // Whole milliseconds, never below one.
        let d = Duration::from_millis(((p.duration.as_secs_f64() * factor * 1000.0).round() as u64).max(1));
        done.push(PhaseOverride {
            phase: p.name.clone(),
            written_secs: p.duration.as_secs_f64(),
            run_secs: d.as_secs_f64(),
            by: "--soak".into(),
        });
        p.duration = d;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc() -> Scenario {
        let text = "name = \"s\"\n[[phases]]\nname = \"baseline\"\nduration = \"30s\"\n  [[phases.workloads]]\n  kind = \"health_check\"\n  rate = 1\n[[phases]]\nname = \"load\"\nduration = \"2m\"\n  [[phases.workloads]]\n  kind = \"health_check\"\n  rate = 1\n[[phases]]\nname = \"burst\"\nduration = \"1m\"\n  [[phases.workloads]]\n  kind = \"health_check\"\n  rate = 1\n[[phases]]\nname = \"drain\"\nduration = \"30s\"\n";
        super::super::parse(std::path::Path::new("s.toml"), text).unwrap()
    }

    #[test]
    fn soak_scales_load_phases_and_keeps_baseline_and_drain() {
        let mut s = sc();
        let o = soak(&mut s, Duration::from_secs(8 * 3600)).unwrap();
        let secs: Vec<u64> = s.phases.iter().map(|p| p.duration.as_secs()).collect();
        assert_eq!(secs[0], 30);
        assert_eq!(secs[3], 30);
        assert_eq!(secs.iter().sum::<u64>(), 8 * 3600);
        assert_eq!(secs[1], 2 * secs[2], "proportions kept: {secs:?}");
        assert_eq!(o.len(), 2);
        assert!(soak(&mut sc(), Duration::from_secs(60))
            .unwrap_err()
            .contains("no time for load"));
    }

    #[test]
    fn durations_by_name_and_clear_errors() {
        let mut s = sc();
        let o = set_durations(&mut s, &["load=8h".into(), "drain = 5m".into()]).unwrap();
        assert_eq!(s.phases[1].duration, Duration::from_secs(8 * 3600));
        assert_eq!(s.phases[3].duration, Duration::from_secs(300));
        assert_eq!((o[0].written_secs, o[0].run_secs), (120.0, 28800.0));
        let e = set_durations(&mut sc(), &["lod=8h".into()]).unwrap_err();
        assert!(
            e.contains("no phase named \"lod\"") && e.contains("baseline, load, burst, drain"),
            "{e}"
        );
        assert!(set_durations(&mut sc(), &["load".into()]).is_err());
        assert!(set_durations(&mut sc(), &["load=soon".into()]).is_err());
        assert!(set_durations(&mut sc(), &["load=0s".into()]).is_err());
    }
}
