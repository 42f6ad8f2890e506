//! `fdsoak run`: scenario → target → load and sampling → analysis → report.
//!
//! The orchestrator owns the order of things and the ways a run can end:
//! completed, interrupted (Ctrl-C), target died, or target unreachable. In
//! every case a report is written and marked with its verdict. Everything
//! the run opened (the target, channels, the sampler's files) is closed
//! before [`run`] returns, so the harness itself does not leak.

use crate::analysis::findings::{evaluate, Finding, WorkloadFigures};
use crate::analysis::{load_window, Role};
use crate::driver::{self, channel::LeakBin};
use crate::fault;
use crate::metrics::{Registry, WorkloadStats};
use crate::report::model::*;
use crate::sampler::{Sampler, SamplerSetup};
use crate::scenario::{Scenario, TargetMode};
use crate::target::{self, TargetPlan};
use anyhow::Context;
use base64::Engine;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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
}

/// What a finished run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub verdict: Verdict,
    pub dir: PathBuf,
    pub summary: Summary,
}

/// How the load phases ended.
enum End {
    Completed,
    Interrupted,
    TargetDied,
}

/// Runs a scenario and writes its report. Errors are returned only when no
/// report could be written at all (for example, the report directory cannot
/// be created); every other failure is a report with verdict `error`.
pub async fn run(cfg: RunConfig, interrupt: impl Future<Output = ()>) -> anyhow::Result<RunOutcome> {
    let dir = report_dir(&cfg)?;
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let start = Instant::now();
    let sc = &cfg.scenario;
    let plan = target_plan(sc, &cfg.fdsoak_exe)?;
    let ready_timeout = sc.target.ready_timeout.unwrap_or(match sc.target.mode {
        TargetMode::Address => Duration::from_secs(5),
        _ => Duration::from_secs(15),
    });
    let mut base = SummaryBuilder {
        cfg: &cfg,
        started_at,
        start,
        target: target_info(sc, &plan, None),
    };
    tokio::pin!(interrupt);

    let target = tokio::select! {
        t = target::start(&plan, ready_timeout) => t,
        _ = &mut interrupt => {
            let f = Finding::Interrupted { at_secs: start.elapsed().as_secs_f64(), phase: "startup".into() };
            return base.finish_early(Verdict::Interrupted, f, dir);
        }
    };
    let mut target = match target {
        Ok(t) => t,
        Err(e) => return base.finish_early(Verdict::Error, Finding::RunError { message: e.to_string() }, dir),
    };
    base.target = target_info(
        sc,
        &plan,
        Some((&target.addr.to_string(), target.pid, &target.description)),
    );
    tracing::info!(
        "target {} ready (pid {}): {}",
        target.addr,
        target.pid,
        target.description
    );

    let registry = Arc::new(Registry::default());
    let current_phase = Arc::new(AtomicUsize::new(0));
    let target_gone = CancellationToken::new();
    let has_load: Vec<bool> = sc.phases.iter().map(|p| !p.workloads.is_empty()).collect();
    let live = Arc::new(crate::progress::Live::default());
    let proxy_sockets = crate::sampler::InodeSet::default();
    let sampler = Sampler::start(
        SamplerSetup {
            interval: sc.sampler.interval,
            start,
            phase_names: sc.phases.iter().map(|p| p.name.clone()).collect(),
            load_window: load_window(&has_load),
            current_phase: current_phase.clone(),
            watched: vec![(Role::Target, target.pid), (Role::Driver, std::process::id() as i32)],
            registry: registry.clone(),
            target_gone: target_gone.clone(),
            live: live.clone(),
            exclude: proxy_sockets.clone(),
        },
        &dir,
    )?;
    let progress_stop = CancellationToken::new();
    // Stops the display on every way out of this function, early returns included.
    let _progress_guard = progress_stop.clone().drop_guard();
    let progress = cfg.progress.then(|| {
        crate::progress::spawn(
            crate::progress::Plan {
                phases: sc.phases.iter().map(|p| (p.name.clone(), p.duration)).collect(),
                current: current_phase.clone(),
                registry: registry.clone(),
                live,
                start,
            },
            progress_stop.clone(),
        )
    });

    let leak_bin = LeakBin::default();
    let stop = CancellationToken::new();
    // With faults anywhere in the scenario, every channel goes through the proxy for the whole run.
    let proxy = if sc.phases.iter().any(|p| !p.faults.is_empty()) {
        Some(FaultProxy::start(target.addr, proxy_sockets).await?)
    } else {
        None
    };
    let drive_addr = proxy.as_ref().map_or(target.addr, |p| p.addr);
    let mut phases = Vec::new();
    let mut end = End::Completed;
    for (i, phase) in sc.phases.iter().enumerate() {
        current_phase.store(i, Ordering::Relaxed);
        let phase_start = start.elapsed().as_secs_f64();
        tracing::info!(
            "phase {} ({} of {}): {:?}",
            phase.name,
            i + 1,
            sc.phases.len(),
            phase.duration
        );
        let faults = proxy.as_ref().map(|p| {
            p.control.set_toxics(&phase.faults);
            let until = Instant::now() + phase.duration;
            tokio::spawn(fault::schedule::run(
                p.control.clone(),
                phase.faults.clone(),
                phase.name.clone(),
                start,
                until,
                stop.child_token(),
            ))
        });
        let work = driver::run_phase(phase, i, drive_addr, &registry, &leak_bin, &stop);
        tokio::pin!(work);
        let result = tokio::select! {
            r = &mut work => Some(r),
            _ = &mut interrupt => { end = End::Interrupted; None }
            _ = target_gone.cancelled() => { end = End::TargetDied; None }
        };
        let result = match result {
            Some(r) => r,
            None => {
                stop.cancel();
                work.await
            }
        };
        if let Some(task) = faults {
            let _ = task.await;
        }
        if let Some(p) = &proxy {
            p.control.set_toxics(&[]);
        }
        sampler.mark_phase_end(i).await;
        phases.push(PhaseInfo {
            name: phase.name.clone(),
            start_secs: phase_start,
            end_secs: start.elapsed().as_secs_f64(),
            idle: phase.workloads.is_empty(),
        });
        if let Err(e) = result {
            stop.cancel();
            let _ = sampler.stop().await;
            if let Some(p) = proxy {
                p.stop().await;
            }
            target.stop().await;
            return base.finish_early(
                Verdict::Error,
                Finding::RunError {
                    message: format!("{e:#}"),
                },
                dir,
            );
        }
        if !matches!(end, End::Completed) {
            break;
        }
    }

    progress_stop.cancel();
    if let Some(p) = progress {
        let _ = p.await;
    }
    let sampled = sampler.stop().await?;
    let (fault_events, proxy_stats) = match proxy {
        Some(p) => p.stop().await,
        None => (Vec::new(), None),
    };
    let exit_status = target.try_exit_status();
    let owned = target.is_owned();
    target.stop().await;
    // Channels leaked on purpose by per_call_leak are closed only now.
    leak_bin.lock().unwrap().clear();

    let processes: Vec<_> = sampled.trackers.iter().filter_map(|t| t.finish()).collect();
    let workloads: Vec<WorkloadReport> = registry.all().iter().map(|s| workload_report(s, &phases)).collect();
    let figures: Vec<WorkloadFigures> = workloads.iter().map(WorkloadFigures::from).collect();
    let (checks, mut findings) = evaluate(&sc.gates, &processes, &figures);
    let mut verdict = if checks.iter().all(|c| c.passed) {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    let at = start.elapsed().as_secs_f64();
    let phase_name = |i: usize| sc.phases.get(i).map_or(String::new(), |p| p.name.clone());
    match end {
        End::Completed => {}
        End::Interrupted => {
            verdict = Verdict::Interrupted;
            let phase = phase_name(current_phase.load(Ordering::Relaxed));
            findings.insert(0, Finding::Interrupted { at_secs: at, phase });
        }
        End::TargetDied => {
            verdict = Verdict::Error;
            let (died_at, phase) = sampled
                .target_died
                .unwrap_or((at, current_phase.load(Ordering::Relaxed)));
            let last = sampled
                .trackers
                .iter()
                .find(|t| t.role == Role::Target)
                .and_then(|t| t.last().cloned());
            findings.insert(
                0,
                Finding::TargetDied {
                    pid: target_pid(&base.target),
                    at_secs: died_at,
                    phase: phase_name(phase),
                    last_fds: last.as_ref().map(|r| r.fds.total),
                    limit: last.and_then(|r| r.nofile_soft),
                    status: if owned { exit_status } else { None },
                },
            );
        }
    }
    let mut summary = base.build(verdict, findings, checks, processes, phases, workloads);
    summary.fault_events = fault_events;
    summary.proxy = proxy_stats;
    write_report(&summary, &dir)?;
    Ok(RunOutcome { verdict, dir, summary })
}

/// The in-process fault proxy, when the scenario has faults.
struct FaultProxy {
    addr: std::net::SocketAddr,
    control: Arc<fault::Control>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// Stops the proxy even if the run is abandoned without calling `stop`.
    _stop_on_drop: tokio_util::sync::DropGuard,
}

impl FaultProxy {
    async fn start(upstream: std::net::SocketAddr, sockets: crate::sampler::InodeSet) -> anyhow::Result<FaultProxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the fault proxy")?;
        let addr = listener.local_addr()?;
        let control = Arc::new(fault::Control::with_inodes(sockets));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(fault::proxy::run(listener, upstream, control.clone(), shutdown.clone()));
        tracing::info!("fault proxy {addr} → {upstream}");
        let _stop_on_drop = shutdown.clone().drop_guard();
        Ok(FaultProxy {
            addr,
            control,
            shutdown,
            task,
            _stop_on_drop,
        })
    }

    /// Closes every proxied connection and returns what happened.
    async fn stop(self) -> (Vec<fault::FaultEvent>, Option<fault::ProxyStats>) {
        self.shutdown.cancel();
        let _ = self.task.await;
        (self.control.events(), Some(self.control.stats()))
    }
}

fn target_pid(t: &TargetInfo) -> i32 {
    t.pid.unwrap_or_default()
}

/// Everything needed to assemble a [`Summary`], whichever way the run ends.
struct SummaryBuilder<'a> {
    cfg: &'a RunConfig,
    started_at: String,
    start: Instant,
    target: TargetInfo,
}

impl SummaryBuilder<'_> {
    fn build(
        &self,
        verdict: Verdict,
        findings: Vec<Finding>,
        checks: Vec<crate::analysis::findings::Check>,
        processes: Vec<crate::analysis::ProcessAnalysis>,
        phases: Vec<PhaseInfo>,
        workloads: Vec<WorkloadReport>,
    ) -> Summary {
        let sc = &self.cfg.scenario;
        let mut files = BTreeMap::new();
        for (k, v) in [
            ("summary", "summary.json"),
            ("latency", "latency.csv"),
            ("samples", "samples.csv"),
            ("throughput", "throughput.csv"),
        ] {
            files.insert(k.to_string(), v.to_string());
        }
        Summary {
            schema_version: SCHEMA_VERSION,
            verdict,
            findings: findings.iter().map(FindingRecord::from).collect(),
            tool: Tool {
                name: "fdsoak".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            scenario: ScenarioInfo {
                name: sc.name.clone(),
                description: sc.description.clone(),
                file: self.cfg.scenario_file.display().to_string(),
                resolved: sc.clone(),
            },
            target: self.target.clone(),
            started_at: self.started_at.clone(),
            duration_secs: self.start.elapsed().as_secs_f64(),
            sampler_interval_secs: sc.sampler.interval.as_secs_f64(),
            checks,
            processes,
            phases,
            workloads,
            files,
            merged_from: Vec::new(),
            fault_events: Vec::new(),
            proxy: None,
        }
    }

    /// A report for a run that ended before any load ran.
    fn finish_early(&self, verdict: Verdict, finding: Finding, dir: PathBuf) -> anyhow::Result<RunOutcome> {
        let summary = self.build(verdict, vec![finding], vec![], vec![], vec![], vec![]);
        write_report(&summary, &dir)?;
        Ok(RunOutcome { verdict, dir, summary })
    }
}

fn write_report(summary: &Summary, dir: &Path) -> anyhow::Result<()> {
    crate::report::write_all(summary, dir).with_context(|| format!("writing the report in {}", dir.display()))
}

fn target_plan(sc: &Scenario, exe: &Path) -> anyhow::Result<TargetPlan> {
    let t = &sc.target;
    Ok(match t.mode {
        TargetMode::Builtin => {
            let mut args = Vec::new();
            if let Some(n) = t.leak_fd_every {
                args.extend(["--leak-fd-every".to_string(), n.to_string()]);
            }
            if let Some(n) = t.leak_channel_every {
                args.extend(["--leak-channel-every".to_string(), n.to_string()]);
            }
            if t.hold_closed_conns == Some(true) {
                args.push("--hold-closed-conns".into());
            }
            if t.stop_accepting_on_error == Some(true) {
                args.push("--stop-accepting-on-error".into());
            }
            for (flag, d) in [
                ("--max-connection-age", t.max_connection_age),
                ("--max-connection-age-grace", t.max_connection_age_grace),
                ("--keepalive-interval", t.keepalive_interval),
                ("--keepalive-timeout", t.keepalive_timeout),
            ] {
                if let Some(d) = d {
                    args.extend([flag.to_string(), humantime::format_duration(d).to_string()]);
                }
            }
            TargetPlan::Builtin {
                exe: exe.to_path_buf(),
                args,
                nofile: t.nofile,
            }
        }
        TargetMode::Spawn => TargetPlan::Spawn {
            command: t.command.clone().unwrap_or_default(),
            nofile: t.nofile,
        },
        TargetMode::Address => TargetPlan::Address {
            addr: target::parse_address(t.address.as_deref().unwrap_or_default())?,
            pid: t.pid,
        },
    })
}

fn target_info(sc: &Scenario, plan: &TargetPlan, ready: Option<(&str, i32, &str)>) -> TargetInfo {
    let mode = match sc.target.mode {
        TargetMode::Builtin => "builtin",
        TargetMode::Spawn => "spawn",
        TargetMode::Address => "address",
    };
    let description = match (ready, plan) {
        (Some((_, _, d)), _) => d.to_string(),
        (None, TargetPlan::Spawn { command, .. }) => format!("spawn: {command}"),
        (None, TargetPlan::Address { addr, .. }) => format!("address {addr}"),
        (None, TargetPlan::Builtin { args, .. }) => format!("builtin: fdsoak serve {}", args.join(" ")),
    };
    TargetInfo {
        mode: mode.into(),
        description,
        address: ready.map(|(a, _, _)| a.to_string()),
        pid: ready.map(|(_, p, _)| p),
    }
}

/// `--out`, or a new `reports/<scenario>-<UTC time>` that does not exist yet.
fn report_dir(cfg: &RunConfig) -> anyhow::Result<PathBuf> {
    let dir = match &cfg.out_dir {
        Some(d) => d.clone(),
        None => {
            let stamp: String = humantime::format_rfc3339_seconds(SystemTime::now())
                .to_string()
                .chars()
                .filter(|c| *c != '-' && *c != ':')
                .collect();
            let name: String = cfg
                .scenario
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            let base = cfg.reports_root.join(format!("{name}-{stamp}"));
            let mut dir = base.clone();
            let mut n = 2;
            while dir.exists() {
                dir = PathBuf::from(format!("{}-{n}", base.display()));
                n += 1;
            }
            dir
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating report directory {}", dir.display()))?;
    Ok(dir)
}

fn workload_report(s: &WorkloadStats, phases: &[PhaseInfo]) -> WorkloadReport {
    let c = s.counts();
    let h = s.histogram();
    let secs = phases.get(s.phase_index).map_or(0.0, |p| p.end_secs - p.start_secs);
    let latency = Latency::of(&h);
    let mut encoded = Vec::new();
    // V2 serialization into a Vec cannot fail for a valid histogram.
    use hdrhistogram::serialization::Serializer;
    let _ = hdrhistogram::serialization::V2Serializer::new().serialize(&h, &mut encoded);
    WorkloadReport {
        phase: s.phase.clone(),
        name: s.name.clone(),
        kind: s.kind.into(),
        channel: s.channel.into(),
        scheduled: c.scheduled,
        started: c.started,
        skipped: c.skipped,
        ok: c.ok,
        errors: c.errors,
        messages: c.messages,
        attempts: s.attempts.load(std::sync::atomic::Ordering::Relaxed),
        retries: s.retries.load(std::sync::atomic::Ordering::Relaxed),
        retry_successes: s.retry_successes.load(std::sync::atomic::Ordering::Relaxed),
        give_ups: s.give_ups.load(std::sync::atomic::Ordering::Relaxed),
        max_error_rate: s.max_error_rate,
        achieved_rate: if secs > 0.0 {
            (c.ok + c.errors) as f64 / secs
        } else {
            0.0
        },
        status_counts: s.code_counts().into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        latency,
        histogram_v2: base64::engine::general_purpose::STANDARD.encode(encoded),
    }
}
