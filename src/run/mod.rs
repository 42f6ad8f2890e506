//! `fdsoak run`: the order of things. Start up (the target, where its
//! descriptors are read, the rpc methods), drive the phases (set up, each
//! phase, end), stop the target, then finish (analyse and write the report).
//!
//! A run can end completed, interrupted (Ctrl-C), with the target dead, or
//! with the target unreachable; in every case a report is written and marked
//! with its verdict. Everything the run opened is closed before [`run`]
//! returns, so the harness itself does not leak.

pub(crate) mod checkpoint;
pub(crate) mod drive;
pub(crate) mod drive_setup;
pub(crate) mod ending;
pub(crate) mod heap_trim;
pub(crate) mod kernel_faults;
pub(crate) mod report_so_far;
pub(crate) mod run_state;
pub(crate) mod said;
pub(crate) mod startup;
pub(crate) mod watchdog;

use crate::domain::Role;
use crate::error::{Error, Result};
use crate::report::model::{Summary, Verdict};
use crate::scenario::Scenario;
use drive::Drive;
use drive_setup::DriveSetup;
use startup::{NotStarted, Started};
use std::future::Future;
use std::path::PathBuf;

/// A validated run configuration (built from `run`'s flags by `cmd::run::setup`, or directly by tests).
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub scenario: Scenario,
    /// Where the scenario came from, for the report.
    pub scenario_file: PathBuf,
    /// Report directory; when None, a new one under `reports_root`.
    pub out_dir: Option<PathBuf>,
    pub reports_root: PathBuf,
    /// The `fdsoak` executable, used to start the built-in target.
    pub fdsoak_exe: PathBuf,
    /// Show live progress (a status line on a terminal, log lines otherwise).
    pub progress: bool,
    /// This driver's share of a sharded run; the scenario is already divided.
    pub shard: Option<crate::scenario::Shard>,
    /// A wall-clock barrier: the phases begin then, so that drivers on several hosts line up.
    pub start_at: Option<std::time::SystemTime>,
    /// Phase lengths the command line changed (already applied to the scenario), for the report.
    pub overrides: Vec<crate::scenario::stretch::PhaseOverride>,
    /// The build this run tested (`--label`), for `fdsoak trend`.
    pub label: Option<String>,
    /// Where the commands fdsoak starts (`--spawn`, `--client`) run: `fdsoak bisect`'s
    /// worktree of the commit under test; `None` for fdsoak's own directory.
    pub workdir: Option<PathBuf>,
    /// Pass what the processes fdsoak starts write through to its stderr, as it comes
    /// (`--show-output`); it is kept in the report's logs either way.
    pub show_output: bool,
}

/// What a finished run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub verdict: Verdict,
    pub dir: PathBuf,
    pub summary: Summary,
}

/// What [`prepare`] checked and planned, before anything starts.
struct Prepared {
    transport: std::sync::Arc<crate::transport::Transport>,
    plan: crate::lifecycle::TargetPlan,
}

/// The checks and the target's plan: a mistake here is the user's (exit 2,
/// at the scenario's file, line and key) or the machine's (exit 3), and
/// nothing has been started or written yet.
fn prepare(cfg: &RunConfig) -> Result<Prepared> {
    let sc = &cfg.scenario;
    let at = |(key, message): (crate::scenario::KeyPath, String)| {
        Error::Scenario(crate::scenario::error_at(&cfg.scenario_file, &key, message))
    };
    // TLS files and metadata.
    let transport = crate::transport::Transport::load(sc).map_err(at)?;
    // Kernel faults need CAP_NET_ADMIN.
    kernel_faults::check_rights(sc).map_err(Error::run)?;
    let mut plan = crate::lifecycle::plan::plan(sc, &cfg.fdsoak_exe).map_err(Error::run)?;
    if let crate::lifecycle::TargetPlan::Spawn { dir, .. } = &mut plan {
        dir.clone_from(&cfg.workdir);
    }
    if let Some(problem) = kernel_faults::unix_problem(sc, plan.is_unix()) {
        return Err(at(problem));
    }
    Ok(Prepared {
        transport: std::sync::Arc::new(transport),
        plan,
    })
}

/// Runs a scenario and writes its report. Errors are returned only when no
/// report could be written at all (a mistake in the scenario found before
/// the load, origins that cannot be set up, or a report directory that
/// cannot be made); every other failure is a report with verdict `error`.
pub async fn run(cfg: RunConfig, interrupt: impl Future<Output = ()>) -> Result<RunOutcome> {
    let sc = &cfg.scenario;
    let Prepared { transport, mut plan } = prepare(&cfg)?;
    let mut report = startup::report_builder(&cfg, &plan);
    let agents = startup::agents(sc, &mut plan, &mut report).map_err(Error::run)?;
    // Made once nothing before it can fail, so a failed start leaves no empty directory.
    let dir =
        crate::report::build::create_dir(cfg.out_dir.as_deref(), &cfg.reports_root, &sc.name).map_err(Error::run)?;
    tokio::pin!(interrupt);

    // What the processes fdsoak starts write: kept redacted, and shown with --show-output.
    let keep = crate::child::Keep {
        redact: crate::child::Redactor::new(crate::transport::secret_values(sc)),
        show: cfg.show_output,
    };
    let target_output = keep.tail("target");
    let started = startup::start_up(&cfg, &plan, &transport, &target_output, &mut report, interrupt.as_mut()).await;
    let Started {
        target,
        dial,
        source,
        methods,
    } = match started {
        Ok(s) => s,
        Err(e) => return not_started(e, &plan, target_output, &report, dir),
    };
    if let Some(s) = &mut report.shard {
        s.phases_unix_ms = crate::domain::unix_ms_now();
    }
    follow_target(agents.as_ref(), &plan, target.pid, &mut report);

    let driven = async {
        let mut drive = Drive::set_up(DriveSetup {
            scenario: sc,
            methods: &methods,
            target: dial,
            source,
            server: target.server.clone(),
            start: report.start,
            checkpoints: checkpoint::interval(sc).map(|every| (every, report.clone())),
            dir: &dir,
            fdsoak: &cfg.fdsoak_exe,
            workdir: cfg.workdir.as_deref(),
            progress: cfg.progress,
            keep: &keep,
            agents: agents.as_ref().map(|a| (a, plan.started_by_fdsoak())),
            live: live_setup(&cfg, &report),
        })
        .await?;
        for i in 0..sc.phases.len() {
            drive.run_phase(i, interrupt.as_mut()).await;
            if drive.stopped() {
                break;
            }
        }
        drive.end().await
    }
    .await;
    let ran = Ran {
        report,
        agents,
        plan: &plan,
        target,
        driven,
        dir,
    };
    ran.wrap_up(&cfg).await
}

/// A run that never reached its first phase: a report of why (with what a
/// target that never became ready said), or, for the scenario's own
/// mistake, an error and no report directory.
fn not_started(
    e: NotStarted,
    plan: &crate::lifecycle::TargetPlan,
    target_output: crate::child::Tail,
    report: &crate::report::build::SummaryBuilder,
    dir: PathBuf,
) -> Result<RunOutcome> {
    match e {
        NotStarted::Finding(f) => {
            // A target that never became ready: what it said is the first thing to read.
            let owned = plan.started_by_fdsoak().then_some(target_output);
            let said = said::Said::new(report.start.into_std(), [(Role::Target, owned)]);
            said.write_logs(&dir);
            let mut measured = ending::one(f);
            measured.output = said.report(&measured.events, |_, _| (None, None));
            ending::finish(report, measured, dir)
        }
        NotStarted::Scenario(e) => {
            // Nothing was measured: leave no empty report directory behind (a non-empty one stays).
            let _ = std::fs::remove_dir(&dir);
            Err(Error::Scenario(e))
        }
    }
}

/// With origins on, once the target is up: the kernel ledger watches it (one
/// fdsoak started is watched from its first instruction already), an
/// attached Node process gets its note, and an attached JVM the agent.
fn follow_target(
    agents: Option<&crate::origin::Agents>,
    plan: &crate::lifecycle::TargetPlan,
    pid: i32,
    report: &mut crate::report::build::SummaryBuilder,
) {
    let Some(agents) = agents else { return };
    let attached = !plan.started_by_fdsoak();
    if let Some(ledger) = agents.kernel.as_ref() {
        if let Err(e) = ledger.watch(pid, attached) {
            tracing::warn!("origins: the kernel ledger cannot watch the target: {e}");
        }
        let attached_node = (attached && pid > 0)
            .then(|| crate::origin::perfmap::unnamed_javascript(pid as u32))
            .flatten();
        if let (Some(note), Some(origin)) = (attached_node, report.origin.as_mut()) {
            tracing::warn!("origins: {note}");
            origin.notes.push(note);
        }
    }
    if attached {
        startup::attach_running(agents, pid, report);
    }
}

/// A run whose phases are over, however they ended: what is left to stop and to write.
struct Ran<'a> {
    report: crate::report::build::SummaryBuilder,
    agents: Option<crate::origin::Agents>,
    plan: &'a crate::lifecycle::TargetPlan,
    target: crate::lifecycle::RunningTarget,
    driven: anyhow::Result<ending::Driven>,
    dir: PathBuf,
}

impl Ran<'_> {
    /// Stops the target, cleans up after the agents, writes the processes'
    /// logs, and finishes the report from what was measured.
    async fn wrap_up(self, cfg: &RunConfig) -> Result<RunOutcome> {
        let Ran {
            mut report,
            agents,
            plan,
            mut target,
            driven,
            dir,
        } = self;
        let ended = ending::TargetEnd {
            pid: target.pid,
            status: target.try_exit_status(),
        };
        let target_output = target.output();
        target.stop().await;
        let client = driven.as_ref().ok().and_then(|d| d.client.as_ref());
        // Both have exited: their last lines are read before the report keeps them.
        for tail in target_output.iter().chain(client.map(|c| &c.end.output)) {
            tail.drained(crate::child::LAST_LINES_WAIT).await;
        }
        if let Some(a) = &agents {
            let started_in = cfg
                .workdir
                .clone()
                .or_else(|| std::env::current_dir().ok())
                .unwrap_or_default();
            a.release_attached();
            if plan.started_by_fdsoak() {
                a.clean_up_after(ended.pid, &started_in);
            }
            if let Some(c) = client {
                a.clean_up_after(c.end.pid, &started_in);
            }
        }
        let client_output = client.map(|c| c.end.output.clone());
        let said = said::Said::new(
            report.start.into_std(),
            [(Role::Target, target_output), (Role::Client, client_output)],
        );
        said.write_logs(&dir);
        if let (Some(a), Ok(d)) = (&agents, &driven) {
            let client = d.client.as_ref().map_or(0, |c| c.end.pid);
            ending::note_silent_agents(&mut report, a, &[(Role::Target, ended.pid), (Role::Client, client)]);
            ending::note_kernel_losses(&mut report, a);
        }
        let measured = driven
            .and_then(|d| d.measured(&cfg.scenario, report.start.elapsed(), ended, &said))
            .map_err(Error::run)?;
        ending::finish(&report, measured, dir)
    }
}

/// The live endpoint's address and labels, when the run serves one.
fn live_setup(cfg: &RunConfig, report: &crate::report::build::SummaryBuilder) -> Option<drive_setup::LiveSetup> {
    let sc = &cfg.scenario;
    sc.export.metrics_addr.map(|addr| drive_setup::LiveSetup {
        spec: crate::live::LiveSpec {
            addr,
            labels: crate::live::RunLabels {
                scenario: sc.name.clone(),
                label: cfg.label.clone(),
                shard: cfg.shard.map(|s| s.to_string()),
            },
        },
        report: report.clone(),
    })
}
