//! How a run ended, and what it measured: the run-level findings for each
//! way out ([`End`]), the client under test once stopped ([`ClientRun`]),
//! and everything driving the phases produced ([`Driven`]), turned into the
//! report's [`Measured`] once the target is stopped; then the report is
//! built and written ([`finish`]).

use super::RunOutcome;
use crate::analysis::findings::Finding;
use crate::analysis::Trackers;
use crate::domain::Role;
use crate::driver::channel::LeakBin;
use crate::error::{Error, Result};
use crate::fault::{FaultEvent, ProxyStats};
use crate::metrics::Registry;
use crate::report::build::{workload_report, Measured, SummaryBuilder};
use crate::report::model::{ClientReport, PhaseInfo, Summary};
use crate::scenario::Scenario;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How the phases ended.
pub(crate) enum End {
    Completed,
    Interrupted,
    /// The target was found gone `at_secs` into the run, during phase `phase`.
    TargetDied {
        at_secs: f64,
        phase: usize,
    },
    Failed(anyhow::Error),
    /// An armed gate was sure to fail; this finding says which.
    Aborted(Box<Finding>),
}

/// The target as the run left it, for a finding about its death.
pub(crate) struct TargetEnd {
    pub pid: i32,
    /// Its exit status, if fdsoak started it and it exited.
    pub status: Option<String>,
}

impl End {
    /// The run-level findings for this ending: none for a completed run.
    fn findings(
        self,
        sc: &Scenario,
        phase: usize,
        elapsed: std::time::Duration,
        target: TargetEnd,
        last: Option<&crate::domain::Reading>,
    ) -> Vec<Finding> {
        let phase_name = |i: usize| sc.phases.get(i).map_or(String::new(), |p| p.name.clone());
        match self {
            End::Completed => vec![],
            End::Aborted(f) => vec![*f],
            End::Interrupted => vec![Finding::Interrupted {
                at_secs: elapsed.as_secs_f64(),
                phase: phase_name(phase),
            }],
            End::Failed(e) => vec![Finding::RunError {
                message: format!("{e:#}"),
            }],
            End::TargetDied { at_secs, phase } => vec![Finding::TargetDied {
                pid: target.pid,
                at_secs,
                phase: phase_name(phase),
                last_fds: last.map(|r| r.fds.total),
                limit: last.and_then(|r| r.nofile_soft),
                status: target.status,
            }],
        }
    }
}

/// The client under test, once stopped.
pub(crate) struct ClientRun {
    pub end: crate::client::ClientEnd,
    /// When the sampler first found it gone, if it exited on its own: (seconds in, phase).
    pub gone_at: Option<(f64, usize)>,
}

impl ClientRun {
    /// The client's part of the report; a client that exited unexpectedly adds a finding to `events`.
    fn report(self, sc: &Scenario, events: &mut Vec<Finding>) -> ClientReport {
        let expect_exit = sc.client.as_ref().is_some_and(|c| c.expect_exit);
        if let (Some(status), false) = (&self.end.exited_early, expect_exit) {
            let (at_secs, phase) = self.gone_at.unwrap_or_default();
            events.push(Finding::ClientExited {
                pid: self.end.pid,
                at_secs,
                phase: sc.phases.get(phase).map_or(String::new(), |p| p.name.clone()),
                status: status.clone(),
            });
        }
        ClientReport {
            command: self.end.command,
            pid: self.end.pid,
            expect_exit,
            exited_early: self.end.exited_early,
            output_tail: self.end.output_tail,
        }
    }
}

/// What driving the phases measured.
pub(crate) struct Driven {
    pub end: End,
    pub client: Option<ClientRun>,
    /// The phase running when it ended.
    pub phase: usize,
    pub phases: Vec<PhaseInfo>,
    pub registry: Arc<Registry>,
    pub trackers: Arc<Mutex<Trackers>>,
    pub fault_events: Vec<FaultEvent>,
    pub proxy: Option<ProxyStats>,
    /// Channels leaked on purpose by per_call_leak; close them once the target's FDs are read.
    pub leak_bin: LeakBin,
    /// The watched processes' connections at the end, before any was stopped.
    pub connections: crate::domain::Connections,
}

impl Driven {
    /// Closes what the driver leaked on purpose, then gathers the report's figures
    /// and the findings of how the run ended.
    /// What the processes fdsoak started said (`said`) is told beside what they held.
    pub(crate) fn measured(
        self,
        sc: &Scenario,
        elapsed: std::time::Duration,
        target: TargetEnd,
        said: &super::said::Said,
    ) -> anyhow::Result<Measured> {
        crate::domain::lock(&self.leak_bin).clear();
        let trackers = crate::domain::lock(&self.trackers);
        let last = trackers.get(Role::Target).and_then(|t| t.last());
        let mut events = self.end.findings(sc, self.phase, elapsed, target, last);
        let client = self.client.map(|c| c.report(sc, &mut events));
        let output = said.report(&events, |role, t| {
            trackers.get(role).map_or((None, None), |tr| tr.held_at(t))
        });
        let mut processes = trackers.finish();
        crate::analysis::held::attribute(&mut processes, &self.connections);
        Ok(Measured {
            events,
            processes,
            workloads: self
                .registry
                .all()
                .iter()
                .map(|s| workload_report(s, &self.phases))
                .collect(),
            phases: self.phases,
            fault_events: self.fault_events,
            proxy: self.proxy,
            client,
            output,
        })
    }
}

pub(crate) fn one(f: Finding) -> Measured {
    Measured {
        events: vec![f],
        ..Measured::default()
    }
}

/// Notes each process that carried an agent but published no table: a program the
/// agents do not reach (static, or Go), or one that never got to it; and each JVM
/// whose agent could not record its Java frames.
pub(crate) fn note_silent_agents(report: &mut SummaryBuilder, agents: &crate::origin::Agents, pids: &[(Role, i32)]) {
    let Some(origin) = &mut report.origin else { return };
    for (role, pid) in pids {
        let carried = origin.agents.contains(role);
        let published = agents.published.contains(*pid);
        if carried && *pid != 0 && !published {
            origin.notes.push(format!(
                "the {role} (pid {pid}) published no origin table: the agents reach Python programs and programs dynamically linked against glibc, not static ones or Go (which makes raw system calls)"
            ));
        }
        if let Some(why) = agents.published.unnamed_java(*pid) {
            origin.notes.push(format!(
                "the {role} (pid {pid}) is a JVM whose Java frames fdsoak cannot name: {why}; its origins stop at the JDK's C (handleOpen, Net.socket0)"
            ));
        }
    }
}

/// Notes the events the kernel ledger lost (its maps full), if any, and what its
/// channel ledger could not follow.
pub(crate) fn note_kernel_losses(report: &mut SummaryBuilder, agents: &crate::origin::Agents) {
    let (Some(origin), Some(ledger)) = (&mut report.origin, &agents.kernel) else {
        return;
    };
    origin.notes.extend(ledger.notes());
    let lost = ledger.lost();
    if lost > 0 {
        origin.kernel_lost = lost;
        origin.notes.push(format!(
            "the kernel ledger lost {lost} events (its fixed-size maps were full): descriptors made then may have no origin"
        ));
    }
}

/// Builds the summary and writes every report file.
pub(crate) fn finish(report: &SummaryBuilder, measured: Measured, dir: PathBuf) -> Result<RunOutcome> {
    let summary = report.build(measured);
    write_report(&summary, &dir).map_err(Error::run)?;
    Ok(RunOutcome {
        verdict: summary.verdict,
        dir,
        summary,
    })
}

fn write_report(summary: &Summary, dir: &Path) -> anyhow::Result<()> {
    crate::report::write_all(summary, dir).with_context(|| format!("writing the report in {}", dir.display()))
}
