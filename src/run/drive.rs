//! Driving the phases of a run, in three named steps: [`Drive::set_up`]
//! starts the sampler and its sinks, the live progress, the fault proxy and
//! the client under test (each a step of [`super::drive_setup`]); [`Drive::run_phase`] runs one phase's workloads and
//! faults until it ends, the user interrupts, the target dies, or an armed
//! gate is sure to fail (`[gates] abort`, after which only the drain still
//! runs); [`Drive::end`] stops all of it, the last sample first.
//!
//! Everything set up here is stopped in `end`, on every way out: what leaves
//! is what was measured ([`Driven`]).

use super::drive_setup::{
    origin_readers, sampler_setup, start_client, start_live, start_progress, start_proxy, DriveSetup,
};
use super::ending::{ClientRun, Driven, End};
use super::run_state::RunState;
use crate::domain::{InodeSet, Role};
use crate::driver::{self, channel::LeakBin, PhaseWork};
use crate::fault::{self, inline::InlineProxy};
use crate::report::model::PhaseInfo;
use crate::sampler::{Sampler, Source};
use crate::scenario::Scenario;
use crate::transport::Dial;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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
