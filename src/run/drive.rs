//! Driving the phases of a run, in three named steps: [`Drive::set_up`]
//! starts the sampler and its sinks, the live progress, the fault proxy and
//! the client under test; [`Drive::run_phase`] runs one phase's workloads and
//! faults until it ends, the user interrupts, the target dies, or an armed
//! gate is sure to fail (`[gates] abort`, after which only the drain still
//! runs); [`Drive::end`] stops all of it, the last sample first.
//!
//! Everything set up here is stopped in `end`, on every way out: what leaves
//! is what was measured ([`Driven`]).

use super::ending::{ClientRun, Driven, End};
use super::run_state::RunState;
use crate::analysis::load_window;
use crate::domain::{InodeSet, Role};
use crate::driver::{self, channel::LeakBin, PhaseWork};
use crate::fault::{self, inline::InlineProxy};
use crate::report::build::SummaryBuilder;
use crate::report::model::PhaseInfo;
use crate::sampler::{Sampler, SamplerSetup, Source};
use crate::scenario::{Scenario, ServerControl};
use crate::transport::Dial;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What [`Drive::set_up`] needs: the scenario, the target and where its
/// descriptors are read, and where the report goes.
pub(crate) struct DriveSetup<'a> {
    pub scenario: &'a Scenario,
    /// Every rpc workload's method, resolved before the load.
    pub methods: &'a crate::rpc::Methods,
    /// The target's own address (the proxy, when there is one, sits in front of it).
    pub target: Dial,
    /// Where the target's descriptors are read.
    pub source: Source,
    /// The built-in target's behaviour control, when the scenario schedules behaviours.
    pub server: Option<ServerControl>,
    /// When the run started (sample times count from here).
    pub start: Instant,
    /// Rewrite the report this often while the run goes on, from this builder.
    pub checkpoints: Option<(Duration, SummaryBuilder)>,
    /// The report directory.
    pub dir: &'a Path,
    /// fdsoak's own executable, for a client command's `{fdsoak}`.
    pub fdsoak: &'a Path,
    /// Where the commands fdsoak starts run (`fdsoak bisect`'s worktree); `None`: fdsoak's directory.
    pub workdir: Option<&'a Path>,
    /// Show live progress.
    pub progress: bool,
    /// How the client's output is kept (redacted, and shown with `--show-output`).
    pub keep: &'a crate::child::Keep,
    /// With origins on: the agents, and whether the target is a process fdsoak started (and so carries one).
    pub agents: Option<(&'a crate::origin::Agents, bool)>,
    /// Serve live metrics while the run lasts.
    pub live: Option<LiveSetup>,
}

/// The live endpoint's address and labels, and the report builder its findings so far come from.
pub(crate) struct LiveSetup {
    pub spec: crate::live::LiveSpec,
    pub report: crate::report::build::SummaryBuilder,
}

/// A run's phases being driven: what [`Drive::set_up`] started, and how far it got.
pub(crate) struct Drive<'a> {
    sc: &'a Scenario,
    methods: &'a crate::rpc::Methods,
    start: Instant,
    /// Where the workloads dial: the proxy when there is one, else the target.
    dial: Dial,
    state: RunState,
    current: Arc<AtomicUsize>,
    proxy: Option<InlineProxy>,
    client: Option<crate::client::RunningClient>,
    /// Faults with no proxy, on the watched processes' own sockets.
    kernel: Option<Arc<crate::fault::kernel::KernelFaults>>,
    sampler: Sampler,
    /// Stops the live progress when the drive ends or is dropped.
    progress_guard: tokio_util::sync::DropGuard,
    progress: Option<tokio::task::JoinHandle<()>>,
    leak_bin: LeakBin,
    phases: Vec<PhaseInfo>,
    end: End,
    /// The live metrics endpoint, stopped after the last sample.
    live: Option<crate::live::Endpoint>,
    /// The watched processes with a PID here, and the proxy's sockets (not the driver's):
    /// whose connections are read at the end, to tell who holds whose other end.
    pids: Vec<(Role, i32)>,
    proxy_sockets: InodeSet,
}

impl<'a> Drive<'a> {
    /// Starts, in this order, the proxy, the client under test, the kernel
    /// faults, the sampler with its sinks (and the live endpoint's), and the
    /// live progress.
    pub(crate) async fn set_up(s: DriveSetup<'a>) -> anyhow::Result<Drive<'a>> {
        let sc = s.scenario;
        let state = RunState::default();
        let current = Arc::new(AtomicUsize::new(0));
        let proxy_sockets = InodeSet::default();
        let proxy = start_proxy(&s, &proxy_sockets).await?;
        let dial = proxy.as_ref().map_or(s.target.clone(), |p| s.target.at(p.addr.clone()));
        let client = start_client(&s, &dial)?;
        let kernel = super::kernel_faults::start(sc, s.source.pid(), proxy_sockets.clone())?;
        if let (Some(k), Some(c)) = (&kernel, &client) {
            k.set_pid(Role::Client, c.pid);
        }
        let mut watched = vec![
            (Role::Target, s.source.clone()),
            (Role::Driver, Source::Proc(std::process::id() as i32)),
        ];
        watched.extend(client.as_ref().map(|c| (Role::Client, Source::Proc(c.pid))));
        let pids = watched.iter().map(|(role, src)| (*role, src.pid())).collect();
        let mut setup = sampler_setup(sc, s.start, current.clone(), watched, proxy_sockets.clone());
        setup.origins = origin_readers(&s, client.is_some());
        let mut sinks = state.sinks(sc, s.dir, s.start, s.checkpoints)?;
        let live = match s.live {
            Some(live) => Some(start_live(live, &state, proxy.as_ref(), &mut sinks)?),
            None => None,
        };
        let sampler = Sampler::start(setup, sinks);
        let progress_stop = CancellationToken::new();
        let progress = s
            .progress
            .then(|| start_progress(sc, s.start, &current, &state, progress_stop.clone()));
        Ok(Drive {
            sc,
            methods: s.methods,
            start: s.start,
            dial,
            state,
            current,
            proxy,
            client,
            kernel,
            sampler,
            progress_guard: progress_stop.drop_guard(),
            progress,
            leak_bin: LeakBin::default(),
            phases: Vec::new(),
            end: End::Completed,
            live,
            pids,
            proxy_sockets,
        })
    }

    /// Whether the run must stop before its next phase (interrupted, target dead, failed).
    pub(crate) fn stopped(&self) -> bool {
        !matches!(self.end, End::Completed | End::Aborted(_))
    }

    /// Runs phase `i`: its faults on the proxy and its workloads, until it ends or is cut short.
    /// After an abort only the drain (a last phase without workloads) runs, and in full.
    pub(crate) async fn run_phase(&mut self, i: usize, mut interrupt: Pin<&mut impl Future<Output = ()>>) {
        let sc = self.sc;
        let phase = &sc.phases[i];
        let drain = i + 1 == sc.phases.len() && phase.workloads.is_empty();
        let aborted = matches!(self.end, End::Aborted(_));
        if aborted && !drain {
            return;
        }
        let stop = CancellationToken::new();
        self.current.store(i, Ordering::Relaxed);
        let phase_start = self.start.elapsed().as_secs_f64();
        tracing::info!(
            "phase {} ({} of {}): {:?}",
            phase.name,
            i + 1,
            sc.phases.len(),
            phase.duration
        );
        let (by_kernel, by_proxy): (Vec<_>, Vec<_>) = phase.faults.iter().cloned().partition(|f| f.is_kernel());
        let until = Instant::now() + phase.duration;
        let injectors = [
            self.proxy.as_ref().map(|p| {
                p.control.set_toxics(&by_proxy);
                (p.control.clone() as Arc<dyn fault::Injector>, by_proxy)
            }),
            self.kernel.clone().map(|k| (k as Arc<dyn fault::Injector>, by_kernel)),
        ];
        let faults: Vec<_> = injectors
            .into_iter()
            .flatten()
            .map(|(injector, faults)| {
                let schedule = fault::schedule::run(
                    injector,
                    faults,
                    phase.name.clone(),
                    self.start,
                    until,
                    stop.child_token(),
                );
                tokio::spawn(schedule)
            })
            .collect();
        let work = driver::run_phase(PhaseWork {
            phase,
            index: i,
            dial: &self.dial,
            registry: &self.state.registry,
            methods: self.methods,
            leak_bin: &self.leak_bin,
            stop: &stop,
        });
        tokio::pin!(work);
        // The phase runs to its end, or is cut short: then how the run ends, and the work stops.
        let cut = tokio::select! {
            r = &mut work => Ok(r),
            _ = &mut interrupt => Err(End::Interrupted),
            _ = self.state.target_gone.cancelled() => Err(self.target_died(i)),
            _ = self.state.abort.cancelled(), if !aborted && !drain => {
                let f = crate::domain::lock(&self.state.fired).take();
                Err(f.map_or(End::Completed, |f| End::Aborted(Box::new(f))))
            }
        };
        let result = match cut {
            Ok(r) => r,
            Err(end) => {
                self.end = end;
                stop.cancel();
                work.await
            }
        };
        for task in faults {
            let _ = task.await;
        }
        if let Some(k) = &self.kernel {
            k.end_phase();
        }
        if let Some(p) = &self.proxy {
            p.control.set_toxics(&[]);
        }
        self.sampler.mark_phase_end(i).await;
        self.phases.push(PhaseInfo {
            name: phase.name.clone(),
            start_secs: phase_start,
            end_secs: self.start.elapsed().as_secs_f64(),
            idle: phase.workloads.is_empty(),
        });
        if let Err(e) = result {
            stop.cancel();
            self.end = End::Failed(e);
        }
    }

    /// How the run ends when the watchdog found the target gone during phase `phase`:
    /// when and in which phase it first saw it so.
    fn target_died(&self, phase: usize) -> End {
        let seen = crate::domain::lock(&self.state.gone).get(&Role::Target).copied();
        let (at_secs, phase) = seen.unwrap_or((self.start.elapsed().as_secs_f64(), phase));
        End::TargetDied { at_secs, phase }
    }

    /// Stops the progress, takes the final sample, then stops the client and
    /// the proxy in front of the target, in that order.
    pub(crate) async fn end(self) -> anyhow::Result<Driven> {
        drop(self.progress_guard);
        if let Some(p) = self.progress {
            let _ = p.await;
        }
        let sampled = self.sampler.stop().await;
        if let Some(live) = self.live {
            // Its thread finishes the scrape in progress, if any, then stops.
            let _ = tokio::task::spawn_blocking(move || drop(live)).await;
        }
        // Before anyone stops: who holds whose other end.
        let relays = self.proxy.as_ref().map(|p| p.control.relays()).unwrap_or_default();
        let exclude = crate::domain::lock(&self.proxy_sockets).clone();
        let connections = crate::sampler::peers::connections(&self.pids, &exclude, &relays);
        let client = match self.client {
            Some(c) => Some(c.stop().await),
            None => None,
        };
        sampled?;
        let gone = crate::domain::lock(&self.state.gone).clone();
        let end = self.end;
        let client = client.map(|c| ClientRun {
            gone_at: gone.get(&Role::Client).copied(),
            end: c,
        });
        let (mut fault_events, proxy) = match self.proxy {
            Some(p) => {
                let (events, stats) = p.stop().await;
                (events, Some(stats))
            }
            None => (Vec::new(), None),
        };
        if let Some(k) = &self.kernel {
            fault_events.extend(k.events());
            fault_events.sort_by(|a, b| a.t_secs.total_cmp(&b.t_secs));
        }
        Ok(Driven {
            end,
            client,
            phase: self.current.load(Ordering::Relaxed),
            phases: self.phases,
            registry: self.state.registry,
            trackers: self.state.trackers,
            fault_events,
            proxy,
            leak_bin: self.leak_bin,
            connections,
        })
    }
}

/// The sampler's plan: the phases, which of them carry load, and whom to watch.
fn sampler_setup(
    sc: &Scenario,
    start: Instant,
    current: Arc<AtomicUsize>,
    watched: Vec<(Role, Source)>,
    exclude: InodeSet,
) -> SamplerSetup {
    // The client brings load of its own in every phase.
    let has_load: Vec<bool> = sc
        .phases
        .iter()
        .map(|p| !p.workloads.is_empty() || sc.client.is_some())
        .collect();
    let window = load_window(&has_load);
    let load: Duration = sc
        .phases
        .iter()
        .zip(&window)
        .filter(|(_, w)| **w)
        .map(|(p, _)| p.duration)
        .sum();
    SamplerSetup {
        interval: sc.sampler.interval,
        start,
        phase_names: sc.phases.iter().map(|p| p.name.clone()).collect(),
        load_window: window,
        current_phase: current,
        watched,
        exclude,
        fingerprint_every: crate::sampler::fingerprint_every(load, sc.sampler.interval),
        origins: Vec::new(),
    }
}

/// The fault proxy in front of the target, when any fault goes through it or a client
/// dials it (a client dials the target itself when every fault is the kernel's).
async fn start_proxy(s: &DriveSetup<'_>, sockets: &InodeSet) -> anyhow::Result<Option<InlineProxy>> {
    let sc = s.scenario;
    let through_proxy = sc.phases.iter().flat_map(|p| &p.faults).any(|f| !f.is_kernel());
    let client_via_proxy = sc.client.is_some() && !super::kernel_faults::any(sc);
    if !(client_via_proxy || through_proxy) {
        return Ok(None);
    }
    let tls = s.target.transport.proxy_tls(&s.target.addr)?;
    let tls = tls.map(|(server, client)| crate::fault::ProxyTls {
        server,
        client: client.config,
        name: client.name,
    });
    let proxy = InlineProxy::start(s.target.addr.clone(), tls, sockets.clone()).await?;
    if let Some(server) = &s.server {
        proxy.control.set_server(server.clone());
    }
    Ok(Some(proxy))
}

/// The client under test, pointed at `dial`, with the agents when origins are on;
/// the kernel ledger follows its channels from its start.
fn start_client(s: &DriveSetup<'_>, dial: &Dial) -> anyhow::Result<Option<crate::client::RunningClient>> {
    let Some(spec) = &s.scenario.client else {
        return Ok(None);
    };
    let env = s.agents.map(|(a, _)| a.env()).unwrap_or_default();
    let how = crate::client::Launch {
        fdsoak: s.fdsoak,
        env: &env,
        dir: s.workdir,
        output: s.keep.tail("client"),
    };
    let client = crate::client::start(spec, &dial.addr, how)?;
    if let Some(ledger) = s.agents.and_then(|(a, _)| a.kernel.as_ref()) {
        ledger.probe_channels(client.pid);
    }
    Ok(Some(client))
}

/// Who the origins are read for: the kernel ledger reads any target, attached ones
/// too; the agents only the ones fdsoak started; and a client when there is one.
fn origin_readers(s: &DriveSetup<'_>, client: bool) -> Vec<(Role, crate::origin::Reader)> {
    let Some((agents, target_started)) = s.agents else {
        return Vec::new();
    };
    let target_read = target_started || agents.kernel.is_some();
    [(Role::Target, target_read), (Role::Client, client)]
        .into_iter()
        .filter(|(_, read)| *read)
        .map(|(role, _)| (role, agents.reader()))
        .collect()
}

/// The live metrics endpoint, and the sinks that feed it (the gauges, and the findings so far).
fn start_live(
    live: LiveSetup,
    state: &RunState,
    proxy: Option<&InlineProxy>,
    sinks: &mut Vec<Box<dyn crate::domain::SampleSink>>,
) -> anyhow::Result<crate::live::Endpoint> {
    let LiveSetup { spec, report } = live;
    let faults = proxy.map(|p| p.control.clone());
    let (endpoint, sink) = crate::live::start(spec.addr, &spec.labels, state.registry.clone(), faults)?;
    sinks.push(Box::new(sink));
    let so_far = super::report_so_far::ReportSoFar::new(report, state.trackers.clone(), state.registry.clone());
    sinks.push(Box::new(super::report_so_far::LiveFindings::new(
        so_far,
        endpoint.findings.clone(),
    )));
    Ok(endpoint)
}

/// The live progress line, until `stop`.
fn start_progress(
    sc: &Scenario,
    start: Instant,
    current: &Arc<AtomicUsize>,
    state: &RunState,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    crate::progress::spawn(
        crate::progress::ProgressFeed {
            phases: sc.phases.iter().map(|p| (p.name.clone(), p.duration)).collect(),
            current: current.clone(),
            registry: state.registry.clone(),
            live: state.live.clone(),
            start,
        },
        stop,
    )
}
