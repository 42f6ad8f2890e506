//! Driving the phases of a run: the sampler and its consumers, the live
//! progress, the fault proxy, and each phase's workloads, until the last
//! phase ends, the user interrupts, the target dies, or a phase fails. When
//! an armed gate is sure to fail (`[gates] abort`), the phases skip to the
//! drain (a last phase without workloads), which still runs.
//!
//! Everything started here is stopped here, on every way out: what leaves is
//! what was measured.

use crate::analysis::findings::Finding;
use crate::analysis::{load_window, Role, Trackers};
use crate::driver::{self, channel::LeakBin};
use crate::fault::{self, inline::InlineProxy, FaultEvent, ProxyStats};
use crate::metrics::{Registry, ThroughputCsv};
use crate::report::model::{ClientReport, PhaseInfo};
use crate::rows::{CsvStream, SamplesCsv, SAMPLES_CSV, THROUGHPUT_CSV};
use crate::sampler::{Sampler, SamplerSetup, Source};
use crate::scenario::Scenario;
use crate::vocab::{InodeSet, Reading, SampleSink, Tick};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How the phases ended.
pub enum End {
    Completed,
    Interrupted,
    /// The target was found gone this many seconds in, during this phase.
    TargetDied(f64, usize),
    Failed(anyhow::Error),
    /// An armed gate was sure to fail; this finding says which.
    Aborted(Box<Finding>),
}

impl End {
    /// The run-level findings for this ending: none for a completed run. `target` is the
    /// target's pid, its last reading and, if fdsoak started it and it exited, its status.
    pub fn findings(
        self,
        sc: &Scenario,
        phase: usize,
        elapsed: std::time::Duration,
        (pid, last, status): (i32, Option<&Reading>, Option<String>),
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
            End::TargetDied(at_secs, phase) => vec![Finding::TargetDied {
                pid,
                at_secs,
                phase: phase_name(phase),
                last_fds: last.map(|r| r.fds.total),
                limit: last.and_then(|r| r.nofile_soft),
                status,
            }],
        }
    }
}

/// The client under test, once stopped.
pub struct ClientRun {
    pub end: crate::client::ClientEnd,
    /// When the sampler first found it gone, if it exited on its own: (seconds in, phase).
    pub gone_at: Option<(f64, usize)>,
}

impl ClientRun {
    /// The client's part of the report; a client that exited unexpectedly adds a finding to `events`.
    pub fn report(self, sc: &Scenario, events: &mut Vec<Finding>) -> ClientReport {
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
pub struct Driven {
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
}

/// When each watched process was first found gone: (seconds in, phase).
type Gone = Arc<Mutex<std::collections::BTreeMap<Role, (f64, usize)>>>;

/// Remembers when a watched process is first found gone, and cancels
/// `target_gone` when it is the target: the run cannot go on without it.
struct Watchdog {
    target_gone: CancellationToken,
    gone: Gone,
}

impl SampleSink for Watchdog {
    fn tick(&mut self, tick: &Tick<'_>) -> anyhow::Result<()> {
        let mut gone = self.gone.lock().map_err(|_| anyhow::anyhow!("watchdog poisoned"))?;
        for s in tick.samples.iter().filter(|s| s.gone) {
            gone.entry(s.role).or_insert((tick.t_secs, tick.phase));
            if s.role == Role::Target {
                self.target_gone.cancel();
            }
        }
        Ok(())
    }
}

/// Drives every phase of `sc` (its rpc workloads calling `methods`) against the target at `addr` (read from `source`), sampling into `dir`.
pub async fn drive(
    (sc, methods, transport): (
        &Scenario,
        &crate::rpc::Methods,
        &std::sync::Arc<crate::transport::Transport>,
    ),
    (start, checkpoints): (
        Instant,
        Option<(std::time::Duration, crate::report::build::SummaryBuilder)>,
    ),
    (addr, source, server): (SocketAddr, Source, Option<crate::scenario::ServerControl>),
    dir: &Path,
    fdsoak: &Path,
    show_progress: bool,
    mut interrupt: Pin<&mut impl Future<Output = ()>>,
) -> anyhow::Result<Driven> {
    let registry = Arc::new(Registry::default());
    let current = Arc::new(AtomicUsize::new(0));
    let trackers = Arc::new(Mutex::new(Trackers::default()));
    let live = Arc::new(crate::progress::Live::default());
    let target_gone = CancellationToken::new();
    let gone = Gone::default();
    let proxy_sockets = InodeSet::default();
    // The client brings load of its own in every phase.
    let has_load: Vec<bool> = sc
        .phases
        .iter()
        .map(|p| !p.workloads.is_empty() || sc.client.is_some())
        .collect();
    // With faults anywhere in the scenario, or a client, every channel goes through the proxy for the whole run.
    let proxy = if sc.client.is_some() || sc.phases.iter().any(|p| !p.faults.is_empty()) {
        Some(InlineProxy::start(addr, proxy_sockets.clone()).await?)
    } else {
        None
    };
    let drive_addr = proxy.as_ref().map_or(addr, |p| p.addr);
    if let (Some(p), Some(server)) = (&proxy, server) {
        p.control.set_server(server);
    }
    let client = match &sc.client {
        Some(spec) => Some(crate::client::start(spec, drive_addr, fdsoak)?),
        None => None,
    };
    let mut watched = vec![
        (Role::Target, source),
        (Role::Driver, Source::Proc(std::process::id() as i32)),
    ];
    watched.extend(client.as_ref().map(|c| (Role::Client, Source::Proc(c.pid))));
    // Checkpoints chart a live downsample of the series, fed as the CSV files are.
    let planned = start.elapsed().as_secs_f64() + sc.phases.iter().map(|p| p.duration.as_secs_f64()).sum::<f64>();
    let series: Option<crate::rows::SharedDownsampler> = checkpoints.as_ref().map(|_| {
        Arc::new(Mutex::new(crate::rows::Downsampler::new(
            planned,
            sc.sampler.interval.as_secs_f64(),
        )))
    });
    let mut throughput = ThroughputCsv::new(registry.clone(), CsvStream::create(&dir.join(THROUGHPUT_CSV))?);
    if let Some(s) = &series {
        throughput = throughput.tapped(s.clone());
    }
    let mut sinks: Vec<Box<dyn SampleSink>> = vec![
        Box::new(SamplesCsv(CsvStream::create(&dir.join(SAMPLES_CSV))?)),
        Box::new(throughput),
        Box::new(trackers.clone()),
        Box::new(live.clone()),
        Box::new(Watchdog {
            target_gone: target_gone.clone(),
            gone: gone.clone(),
        }),
    ];
    // The driver's freed heap goes back to the kernel, so its RSS reads what is live.
    sinks.push(Box::new(super::trim::Trim::new()));
    // `[gates] abort`: a consumer after the trackers that cancels `abort` when an armed gate is sure to fail.
    let abort = CancellationToken::new();
    let fired = if sc.gates.abort.any() {
        let a = super::abort::Aborter::new(sc, trackers.clone(), registry.clone(), abort.clone());
        let fired = a.fired.clone();
        sinks.push(Box::new(a));
        fired
    } else {
        super::abort::Fired::default()
    };
    if let (Some((every, report)), Some(series)) = (checkpoints, series) {
        sinks.push(Box::new(crate::rows::LiveSamples(series.clone())));
        sinks.push(Box::new(super::checkpoint::Checkpoints::new(
            every,
            (report, dir.to_path_buf(), planned),
            (trackers.clone(), registry.clone(), series),
        )));
    }
    let window = load_window(&has_load);
    let load: std::time::Duration = sc
        .phases
        .iter()
        .zip(&window)
        .filter(|(_, w)| **w)
        .map(|(p, _)| p.duration)
        .sum();
    let sampler = Sampler::start(
        SamplerSetup {
            interval: sc.sampler.interval,
            start,
            phase_names: sc.phases.iter().map(|p| p.name.clone()).collect(),
            load_window: window,
            current_phase: current.clone(),
            watched,
            exclude: proxy_sockets.clone(),
            fingerprint_every: crate::sampler::checkpoint_every(load, sc.sampler.interval),
        },
        sinks,
    );
    let progress_stop = CancellationToken::new();
    // Stops the display on every way out of this function.
    let _progress_guard = progress_stop.clone().drop_guard();
    let progress = show_progress.then(|| {
        crate::progress::spawn(
            crate::progress::Plan {
                phases: sc.phases.iter().map(|p| (p.name.clone(), p.duration)).collect(),
                current: current.clone(),
                registry: registry.clone(),
                live,
                start,
            },
            progress_stop.clone(),
        )
    });
    let leak_bin = LeakBin::default();
    let mut phases = Vec::new();
    let mut end = End::Completed;
    let last = sc.phases.len().saturating_sub(1);
    for (i, phase) in sc.phases.iter().enumerate() {
        // After an abort, only the drain still runs; it is never cut short (a gate
        // sure to fail then is in the final report anyway).
        let drain = i == last && phase.workloads.is_empty();
        let aborted = matches!(end, End::Aborted(_));
        if aborted && !drain {
            continue;
        }
        let stop = CancellationToken::new();
        current.store(i, Ordering::Relaxed);
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
            tokio::spawn(fault::schedule::run(
                p.control.clone(),
                phase.faults.clone(),
                phase.name.clone(),
                start,
                Instant::now() + phase.duration,
                stop.child_token(),
            ))
        });
        let work = driver::run_phase(
            phase,
            i,
            (drive_addr, transport),
            (&registry, methods),
            &leak_bin,
            &stop,
        );
        tokio::pin!(work);
        let result = tokio::select! {
            r = &mut work => r,
            _ = &mut interrupt => { end = End::Interrupted; stop.cancel(); work.await }
            _ = target_gone.cancelled() => { end = End::TargetDied(0.0, i); stop.cancel(); work.await }
            _ = abort.cancelled(), if !aborted && !drain => {
                let f = fired.lock().ok().and_then(|mut f| f.take());
                end = f.map_or(End::Completed, |f| End::Aborted(Box::new(f)));
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
            end = End::Failed(e);
        }
        if !matches!(end, End::Completed | End::Aborted(_)) {
            break;
        }
    }
    progress_stop.cancel();
    if let Some(p) = progress {
        let _ = p.await;
    }
    let sampled = sampler.stop().await;
    // After the final sample: the client goes first, then the proxy in front of the target.
    let client = match client {
        Some(c) => Some(c.stop().await),
        None => None,
    };
    sampled?;
    let gone = gone.lock().map_err(|_| anyhow::anyhow!("watchdog poisoned"))?.clone();
    if let End::TargetDied(..) = end {
        let (t, phase) = gone
            .get(&Role::Target)
            .copied()
            .unwrap_or((start.elapsed().as_secs_f64(), current.load(Ordering::Relaxed)));
        end = End::TargetDied(t, phase);
    }
    let client = client.map(|c| ClientRun {
        gone_at: gone.get(&Role::Client).copied(),
        end: c,
    });
    let (fault_events, proxy) = match proxy {
        Some(p) => {
            let (events, stats) = p.stop().await;
            (events, Some(stats))
        }
        None => (Vec::new(), None),
    };
    Ok(Driven {
        end,
        client,
        phase: current.load(Ordering::Relaxed),
        phases,
        registry,
        trackers,
        fault_events,
        proxy,
        leak_bin,
    })
}
