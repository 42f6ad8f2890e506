//! What a run's drive needs ([`DriveSetup`]), and the steps
//! [`super::drive::Drive::set_up`] takes to start it: the fault proxy, the
//! client under test, who origins are read for, the sampler's plan, the
//! live endpoint and the progress line.

use super::run_state::RunState;
use crate::analysis::load_window;
use crate::domain::{InodeSet, Role};
use crate::fault::inline::InlineProxy;
use crate::report::build::SummaryBuilder;
use crate::sampler::{SamplerSetup, Source};
use crate::scenario::{Scenario, ServerControl};
use crate::transport::Dial;
use std::path::Path;
use std::sync::atomic::AtomicUsize;
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

/// The sampler's plan: the phases, which of them carry load, and whom to watch.
pub(super) fn sampler_setup(
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
pub(super) async fn start_proxy(s: &DriveSetup<'_>, sockets: &InodeSet) -> anyhow::Result<Option<InlineProxy>> {
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
pub(super) fn start_client(s: &DriveSetup<'_>, dial: &Dial) -> anyhow::Result<Option<crate::client::RunningClient>> {
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
pub(super) fn origin_readers(s: &DriveSetup<'_>, client: bool) -> Vec<(Role, crate::origin::Reader)> {
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
pub(super) fn start_live(
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
pub(super) fn start_progress(
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
