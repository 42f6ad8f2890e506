//! `fdsoak run`: the order of things. Start the target, drive the phases,
//! end (stop the target, close what the run opened), then finish (analyse and
//! write the report).
//!
//! A run can end completed, interrupted (Ctrl-C), with the target dead, or
//! with the target unreachable; in every case a report is written and marked
//! with its verdict. Everything the run opened is closed before [`run`]
//! returns, so the harness itself does not leak.

pub mod abort;
pub mod checkpoint;
pub mod phases;
pub mod trim;

use crate::analysis::findings::Finding;
use crate::report::build::{workload_report, Measured, SummaryBuilder};
use crate::report::model::{Summary, TargetInfo, Verdict};
use crate::scenario::Scenario;
use crate::target;
use crate::vocab::Role;
use anyhow::Context;
use std::future::Future;
use std::path::{Path, PathBuf};

/// A validated run configuration (built by `cli`, or directly by tests).
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
}

/// What a finished run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub verdict: Verdict,
    pub dir: PathBuf,
    pub summary: Summary,
}

/// Runs a scenario and writes its report. Errors are returned only when no
/// report could be written at all (for example, the report directory cannot
/// be created); every other failure is a report with verdict `error`.
pub async fn run(cfg: RunConfig, interrupt: impl Future<Output = ()>) -> anyhow::Result<RunOutcome> {
    let sc = &cfg.scenario;
    // TLS files and metadata: a mistake is the user's, before anything starts (exit 2).
    let transport = crate::transport::Transport::load(sc)
        .map_err(|(key, message)| anyhow::Error::new(crate::scenario::error_at(&cfg.scenario_file, &key, message)))?;
    let transport = std::sync::Arc::new(transport);
    let dir = crate::report::build::create_dir(cfg.out_dir.as_deref(), &cfg.reports_root, &sc.name)?;
    let plan = target::plan::plan(sc, &cfg.fdsoak_exe)?;
    let planned = TargetInfo {
        mode: plan.mode().into(),
        description: plan.describe(),
        address: None,
        pid: None,
        fds_from: sc.target.fds.as_ref().map(|f| f.prometheus.to_string()),
    };
    let mut report = SummaryBuilder::new(sc.clone(), &cfg.scenario_file, planned);
    report.overrides = cfg.overrides.clone();
    report.label = cfg.label.clone();
    report.shard = cfg.shard.map(|s| crate::report::model::ShardInfo {
        index: s.index,
        count: s.count,
        start_at: cfg.start_at.map(|t| humantime::format_rfc3339_millis(t).to_string()),
        phases_unix_ms: 0,
    });
    tokio::pin!(interrupt);

    // Start the target.
    let started = tokio::select! {
        t = target::start(&plan, (sc.target.ready, target::plan::ready_timeout(sc), &transport)) => t,
        _ = &mut interrupt => {
            let at_secs = report.start.elapsed().as_secs_f64();
            return finish(&report, event(Finding::Interrupted { at_secs, phase: "startup".into() }), dir);
        }
    };
    let mut target = match started {
        Ok(t) => t,
        Err(e) => return finish(&report, event(Finding::RunError { message: e.to_string() }), dir),
    };
    tracing::info!(
        "target {} ready (pid {}): {}",
        target.addr,
        target.pid,
        target.description
    );
    report.target.description = target.description.clone();
    report.target.address = Some(target.addr.to_string());
    report.target.pid = (target.pid != 0).then_some(target.pid);

    // Where the target's descriptors are read: its /proc, or an endpoint that must answer now (exit 3 if not).
    let source = match fd_source(sc, target.pid).await {
        Ok(s) => s,
        Err(message) => {
            target.stop().await;
            return finish(&report, event(Finding::RunError { message }), dir);
        }
    };

    // The rpc workloads' methods, some perhaps from the target's reflection: a mistake is the user's (exit 2).
    let methods = match crate::rpc::prepare(sc, &cfg.scenario_file, (target.addr, &transport)).await {
        Ok(m) => m,
        Err(e) => {
            target.stop().await;
            // Nothing was measured: leave no empty report directory behind (a non-empty one stays).
            let _ = std::fs::remove_dir(&dir);
            return Err(anyhow::Error::new(e));
        }
    };

    // `ready = "rpc"`: the connection is up; now the first rpc method must answer.
    if let (crate::scenario::ReadyCheck::Rpc, Some(m)) = (sc.target.ready, methods.first()) {
        let timeout = target::plan::ready_timeout(sc);
        if let Err(message) = crate::driver::rpc::wait_answer((target.addr, &transport), &m, timeout).await {
            target.stop().await;
            return finish(
                &report,
                event(Finding::RunError {
                    message: format!("target not ready: {message}"),
                }),
                dir,
            );
        }
    }

    // Wait for the barrier, so that every driver's phases begin together.
    if let Some(at) = cfg.start_at {
        let wait = at.duration_since(std::time::SystemTime::now()).unwrap_or_default();
        tracing::info!(
            "waiting {wait:?} for --start-at {}",
            humantime::format_rfc3339_millis(at)
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut interrupt => {
                target.stop().await;
                let at_secs = report.start.elapsed().as_secs_f64();
                return finish(&report, event(Finding::Interrupted { at_secs, phase: "startup".into() }), dir);
            }
        }
    }
    if let Some(s) = &mut report.shard {
        s.phases_unix_ms = crate::vocab::unix_ms_now();
    }

    // Drive the phases.
    let checkpoints = checkpoint::interval(sc).map(|every| (every, report.clone()));
    let driven = phases::drive(
        (sc, &methods, &transport),
        (report.start, checkpoints),
        (target.addr, source, target.server.clone()),
        &dir,
        &cfg.fdsoak_exe,
        cfg.progress,
        interrupt.as_mut(),
    )
    .await;

    // End: stop the target, then close what the driver leaked on purpose.
    let exit_status = target.try_exit_status();
    let pid = target.pid;
    target.stop().await;
    let driven = driven?;
    driven.leak_bin.lock().map(|mut b| b.clear()).ok();

    // Finish: what was measured, and how the run ended.
    let trackers = driven
        .trackers
        .lock()
        .map_err(|_| anyhow::anyhow!("analysis poisoned"))?;
    let last = trackers.get(Role::Target).and_then(|t| t.last());
    let mut events = driven
        .end
        .findings(sc, driven.phase, report.start.elapsed(), (pid, last, exit_status));
    let client = driven.client.map(|c| c.report(sc, &mut events));
    let measured = Measured {
        events,
        processes: trackers.finish(),
        workloads: driven
            .registry
            .all()
            .iter()
            .map(|s| workload_report(s, &driven.phases))
            .collect(),
        phases: driven.phases,
        fault_events: driven.fault_events,
        proxy: driven.proxy,
        client,
    };
    finish(&report, measured, dir)
}

/// The target's descriptor source: `[target.fds]` if set, after one scrape that
/// answered within the ready timeout; its `/proc` otherwise.
async fn fd_source(sc: &Scenario, pid: i32) -> Result<crate::sampler::Source, String> {
    use crate::sampler::{prometheus::Scraper, Source};
    let Some(spec) = &sc.target.fds else {
        return Ok(Source::Proc(pid));
    };
    let url = &spec.prometheus;
    let metrics = (spec.open_metric.as_str(), spec.max_metric.as_str());
    let scraper = Scraper::new(
        spec.prometheus.expose(),
        metrics,
        spec.scrape_timeout(sc.sampler.interval),
    )
    .map_err(|e| format!("{url}: {e:#}"))?;
    let within = target::plan::ready_timeout(sc);
    match scraper.first(within).await {
        Ok(r) => {
            tracing::info!("target FDs from {url}: {} open", r.fds.total);
            Ok(Source::Prometheus(std::sync::Arc::new(scraper)))
        }
        Err(e) => Err(format!(
            "the target's FD source {url} did not answer within {within:?}: {e}"
        )),
    }
}

fn event(f: Finding) -> Measured {
    Measured {
        events: vec![f],
        ..Measured::default()
    }
}

/// Builds the summary and writes every report file.
fn finish(report: &SummaryBuilder, measured: Measured, dir: PathBuf) -> anyhow::Result<RunOutcome> {
    let summary = report.build(measured);
    write_report(&summary, &dir)?;
    Ok(RunOutcome {
        verdict: summary.verdict,
        dir,
        summary,
    })
}

fn write_report(summary: &Summary, dir: &Path) -> anyhow::Result<()> {
    crate::report::write_all(summary, dir).with_context(|| format!("writing the report in {}", dir.display()))
}
