//! Bringing a run up to its first phase: start or find the target and wait
//! until it is ready, choose where its descriptors are read, resolve the rpc
//! workloads' methods (perhaps through the target's reflection), wait for the
//! `ready = "rpc"` answer, and wait for the `--start-at` barrier.
//!
//! A target that started is stopped here if the run cannot go on, so what
//! leaves is either a ready target or the reason there is none.

use crate::analysis::findings::Finding;
use crate::lifecycle::{self, Ready, RunningTarget, TargetPlan};
use crate::report::build::SummaryBuilder;
use crate::report::model::TargetInfo;
use crate::rpc::Methods;
use crate::sampler::Source;
use crate::scenario::{ReadyCheck, Scenario, ScenarioError};
use crate::transport::Dial;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A target ready for the load.
pub(crate) struct Started {
    pub target: RunningTarget,
    pub dial: Dial,
    pub source: Source,
    pub methods: Methods,
}

/// Why the run stops before its first phase.
pub(crate) enum NotStarted {
    /// Reported: the user interrupted, or the target could not be brought up or read.
    Finding(Finding),
    /// The scenario's mistake, found against the target (an rpc method): exit 2, no report.
    Scenario(ScenarioError),
}

/// Starts the target and everything the first phase needs, noting in `report` what was found.
pub(crate) async fn start_up(
    cfg: &super::RunConfig,
    plan: &TargetPlan,
    transport: &Arc<crate::transport::Transport>,
    output: &crate::child::Tail,
    report: &mut SummaryBuilder,
    mut interrupt: Pin<&mut impl Future<Output = ()>>,
) -> Result<Started, NotStarted> {
    let sc = &cfg.scenario;
    let interrupted = |report: &SummaryBuilder| {
        NotStarted::Finding(Finding::Interrupted {
            at_secs: report.start.elapsed().as_secs_f64(),
            phase: "startup".into(),
        })
    };
    let run_error = |message: String| NotStarted::Finding(Finding::RunError { message });
    let ready = Ready {
        check: sc.target.ready,
        timeout: lifecycle::plan::ready_timeout(sc),
    };
    let target = tokio::select! {
        t = lifecycle::start(plan, ready, transport, output) => t.map_err(|e| run_error(e.to_string()))?,
        _ = &mut interrupt => return Err(interrupted(report)),
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
    let dial = Dial::new(target.addr.clone(), transport.clone());
    let ready = async {
        // Where the target's descriptors are read: its /proc, or an endpoint that must answer now (exit 3 if not).
        let source = fd_source(sc, target.pid).await.map_err(run_error)?;
        // The rpc workloads' methods, some perhaps from the target's reflection.
        let methods = crate::rpc::load_methods(sc, &cfg.scenario_file, &dial)
            .await
            .map_err(|e| match e {
                crate::rpc::MethodsError::Scenario(e) => NotStarted::Scenario(e),
                crate::rpc::MethodsError::Target(m) => run_error(m),
            })?;
        // `ready = "rpc"`: the connection is up; now the first rpc method must answer.
        if let (ReadyCheck::Rpc, Some(m)) = (sc.target.ready, methods.first()) {
            crate::driver::rpc::wait_answer(&dial, &m, ready.timeout)
                .await
                .map_err(|m| run_error(format!("target not ready: {m}")))?;
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
                _ = &mut interrupt => return Err(interrupted(report)),
            }
        }
        Ok((source, methods))
    };
    match ready.await {
        Ok((source, methods)) => Ok(Started {
            target,
            dial,
            source,
            methods,
        }),
        Err(e) => {
            target.stop().await;
            Err(e)
        }
    }
}

/// The report as far as the plan tells: the scenario, the target's mode, the shard and the label.
pub(crate) fn report_builder(cfg: &super::RunConfig, plan: &TargetPlan) -> SummaryBuilder {
    let sc = &cfg.scenario;
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
    report
}

/// The note for an attached target without the kernel ledger, unless the agent is
/// loaded into it after all ([`attach_running`]).
const NO_AGENT_ATTACHED: &str = "the target was attached (--target), so it carries no agent: without the kernel ledger, origins need a process fdsoak starts (the built-in target, --spawn, --client) or a running JVM";

/// Loads the agent into an attached target whose runtime lets fdsoak in (a JVM), and
/// says in the report's origins what came of it.
pub(crate) fn attach_running(agents: &crate::origin::Agents, pid: i32, report: &mut SummaryBuilder) {
    let Some(origin) = report.origin.as_mut() else { return };
    match agents.attach_running(pid.max(0) as u32) {
        Ok(false) => {}
        Ok(true) => {
            origin.notes.retain(|n| n != NO_AGENT_ATTACHED);
            origin.agents.push(crate::domain::Role::Target);
        }
        Err(note) => {
            tracing::warn!("origins: {note}");
            origin.notes.push(note);
        }
    }
}

/// With origins on: the agents written out, given to a target fdsoak starts (through
/// `plan`) and later to the client; the kernel ledger loaded, when fdsoak may; and the
/// report's notes on what origins cannot cover.
pub(crate) fn agents(
    sc: &Scenario,
    plan: &mut TargetPlan,
    report: &mut SummaryBuilder,
) -> anyhow::Result<Option<crate::origin::Agents>> {
    use crate::domain::Role;
    if !sc.origin.enabled {
        return Ok(None);
    }
    let mut agents = crate::origin::Agents::install(sc.origin.agents)?;
    let mut origin = crate::report::model::OriginReport::default();
    let kernel = match sc.origin.kernel {
        true => agents.load_kernel(),
        false => Err("turned off ([origin] kernel = false)".into()),
    };
    if let (Err(why), true) = (&kernel, sc.origin.kernel) {
        origin.notes.push(format!(
            "origins from the kernel are off: {why}; the agents name origins in Python and glibc programs fdsoak starts"
        ));
    }
    if plan.started_by_fdsoak() && sc.origin.agents {
        plan.add_env(agents.env());
        origin.agents.push(Role::Target);
    } else if kernel.is_err() && !plan.started_by_fdsoak() {
        origin.notes.push(NO_AGENT_ATTACHED.into());
    }
    if sc.client.is_some() && sc.origin.agents {
        origin.agents.push(Role::Client);
    }
    if kernel.is_ok() {
        origin.kernel.push(Role::Target);
        if sc.client.is_some() {
            origin.kernel.push(Role::Client);
        }
    }
    for note in &origin.notes {
        tracing::warn!("origins: {note}");
    }
    report.origin = Some(origin);
    Ok(Some(agents))
}

/// The target's descriptor source: `[target.fds]` if set, after one scrape that
/// answered within the ready timeout; its `/proc` otherwise.
async fn fd_source(sc: &Scenario, pid: i32) -> Result<Source, String> {
    use crate::sampler::prometheus::{MetricNames, Scraper};
    let Some(spec) = &sc.target.fds else {
        return Ok(Source::Proc(pid));
    };
    let url = &spec.prometheus;
    let names = MetricNames {
        open: &spec.open_metric,
        max: &spec.max_metric,
    };
    let scraper = Scraper::new(
        spec.prometheus.expose(),
        names,
        spec.scrape_timeout(sc.sampler.interval),
    )
    .map_err(|e| format!("{url}: {e:#}"))?;
    let within = lifecycle::plan::ready_timeout(sc);
    match scraper.first(within).await {
        Ok(r) => {
            tracing::info!("target FDs from {url}: {} open", r.fds.total);
            Ok(Source::Prometheus(Arc::new(scraper)))
        }
        Err(e) => Err(format!(
            "the target's FD source {url} did not answer within {within:?}: {e}"
        )),
    }
}
