//! Live metrics (`run --metrics-addr`): the run as Prometheus series while it
//! lasts, so a soak can sit on the same dashboard as the service it tests.
//!
//! The sampler's ticks set the per-process gauges (descriptors by kind, TCP
//! sockets by state, limits, memory, threads) and the current phase; the
//! workload counters and HDR histograms, and the fault events, are read
//! when a scrape asks, so nothing is added to a call's path. The page is encoded by the
//! `prometheus` crate, and served by its own thread with its own runtime:
//! a slow scraper waits on that thread, never on the driver's.

mod collect;

use crate::domain::{SampleSink, Tick};
use crate::metrics::Registry as Workloads;
use anyhow::Context;
use collect::{FaultCollector, FindingsCollector, WorkloadCollector};
use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};
use std::net::SocketAddr;
use std::sync::Arc;

/// Every series name the endpoint serves (the dashboard's queries are checked against these).
pub const SERIES: &[&str] = &[
    "fdsoak_fds",
    "fdsoak_fds_by_kind",
    "fdsoak_tcp_sockets",
    "fdsoak_nofile_soft",
    "fdsoak_nofile_hard",
    "fdsoak_rss_bytes",
    "fdsoak_threads",
    "fdsoak_phase",
    "fdsoak_calls_total",
    "fdsoak_calls_in_flight",
    "fdsoak_messages_total",
    "fdsoak_latency_seconds",
    "fdsoak_timetable_lag_seconds",
    "fdsoak_fault_events_total",
    "fdsoak_findings",
];

/// The findings of the run so far, as (kind, subject), set by the run every few seconds.
pub type Findings = Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// Where to serve, and the labels every series carries.
#[derive(Debug, Clone)]
pub struct LiveSpec {
    pub addr: SocketAddr,
    pub labels: RunLabels,
}

/// The labels every series carries: the scenario, the build label and the shard.
#[derive(Debug, Clone, Default)]
pub struct RunLabels {
    pub scenario: String,
    pub label: Option<String>,
    pub shard: Option<String>,
}

/// The gauges the sampler's ticks set.
struct Gauges {
    fds: IntGaugeVec,
    by_kind: IntGaugeVec,
    tcp: IntGaugeVec,
    soft: IntGaugeVec,
    hard: IntGaugeVec,
    rss: IntGaugeVec,
    threads: IntGaugeVec,
    phase: GaugeVec,
}

/// The sampler sink that keeps the gauges current.
pub struct LiveSink(Arc<Gauges>);

/// The running endpoint; it stops when dropped.
pub struct Endpoint {
    pub addr: SocketAddr,
    /// Where the run puts its findings so far, for the endpoint to serve.
    pub findings: Findings,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds `addr` and serves `/metrics` for this run; returns the endpoint and the sink to feed it.
/// `faults` is the fault proxy's control, when the run has one.
pub fn start(
    addr: SocketAddr,
    labels: &RunLabels,
    workloads: Arc<Workloads>,
    faults: Option<Arc<crate::fault::Control>>,
) -> anyhow::Result<(Endpoint, LiveSink)> {
    let mut consts = std::collections::HashMap::new();
    consts.insert("scenario".to_string(), labels.scenario.clone());
    consts.insert("label".to_string(), labels.label.clone().unwrap_or_default());
    consts.insert("shard".to_string(), labels.shard.clone().unwrap_or_default());
    let registry = Registry::new_custom(None, Some(consts)).context("the live metrics registry")?;
    let gauge = |name: &str, help: &str, labels: &[&str]| -> anyhow::Result<IntGaugeVec> {
        let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
        registry.register(Box::new(g.clone()))?;
        Ok(g)
    };
    let gauges = Gauges {
        fds: gauge("fdsoak_fds", "Open file descriptors of a watched process.", &["role"])?,
        by_kind: gauge(
            "fdsoak_fds_by_kind",
            "Open descriptors by kind (socket, pipe, file, anon, other).",
            &["role", "kind"],
        )?,
        tcp: gauge("fdsoak_tcp_sockets", "TCP sockets by state.", &["role", "state"])?,
        soft: gauge(
            "fdsoak_nofile_soft",
            "RLIMIT_NOFILE soft limit (absent when unlimited).",
            &["role"],
        )?,
        hard: gauge(
            "fdsoak_nofile_hard",
            "RLIMIT_NOFILE hard limit (absent when unlimited).",
            &["role"],
        )?,
        rss: gauge("fdsoak_rss_bytes", "Resident memory.", &["role"])?,
        threads: gauge("fdsoak_threads", "Threads.", &["role"])?,
        phase: {
            let g = GaugeVec::new(
                Opts::new("fdsoak_phase", "1 for the phase running now, with its index."),
                &["phase", "index"],
            )?;
            registry.register(Box::new(g.clone()))?;
            g
        },
    };
    registry.register(Box::new(WorkloadCollector::new(workloads)?))?;
    if let Some(control) = faults {
        registry.register(Box::new(FaultCollector::new(control)?))?;
    }
    let findings = Findings::default();
    registry.register(Box::new(FindingsCollector::new(findings.clone())?))?;
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("--metrics-addr: cannot bind {addr}"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("fdsoak-metrics".into())
        .spawn(move || serve(listener, registry, stop_rx))
        .context("starting the metrics thread")?;
    tracing::info!("live metrics on http://{bound}/metrics");
    let endpoint = Endpoint {
        addr: bound,
        findings,
        stop: Some(stop_tx),
        thread: Some(thread),
    };
    Ok((endpoint, LiveSink(Arc::new(gauges))))
}

/// The endpoint's own thread: a current-thread runtime serving until told to stop.
fn serve(listener: std::net::TcpListener, registry: Registry, stop: tokio::sync::oneshot::Receiver<()>) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return tracing::warn!("metrics endpoint: {e}"),
    };
    rt.block_on(async move {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let registry = registry.clone();
                async move { page(&registry) }
            }),
        );
        let served = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stop.await;
        });
        if let Err(e) = served.await {
            tracing::warn!("metrics endpoint stopped: {e}");
        }
    });
}

fn page(registry: &Registry) -> ([(axum::http::HeaderName, String); 1], Vec<u8>) {
    use prometheus::Encoder;
    let encoder = prometheus::TextEncoder::new();
    let mut buf = Vec::new();
    if let Err(e) = encoder.encode(&registry.gather(), &mut buf) {
        tracing::warn!("encoding metrics: {e}");
    }
    (
        [(axum::http::header::CONTENT_TYPE, encoder.format_type().to_string())],
        buf,
    )
}

impl SampleSink for LiveSink {
    fn tick(&mut self, tick: &Tick<'_>) -> anyhow::Result<()> {
        let g = &self.0;
        g.phase.reset();
        g.phase
            .with_label_values(&[tick.phase_name, &tick.phase.to_string()])
            .set(1.0);
        for s in tick.samples {
            let Some(r) = &s.reading else { continue };
            let role = s.role.as_str();
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            g.fds.with_label_values(&[role]).set(n(r.fds.total));
            for (kind, v) in [
                ("socket", r.fds.socket),
                ("pipe", r.fds.pipe),
                ("file", r.fds.file),
                ("anon", r.fds.anon),
                ("other", r.fds.other),
            ] {
                g.by_kind.with_label_values(&[role, kind]).set(n(v));
            }
            for (state, v) in r.tcp.iter() {
                g.tcp.with_label_values(&[role, state.name()]).set(n(v));
            }
            for (gauge, limit) in [(&g.soft, r.nofile_soft), (&g.hard, r.nofile_hard)] {
                match limit {
                    Some(l) => gauge.with_label_values(&[role]).set(n(l)),
                    None => {
                        let _ = gauge.remove_label_values(&[role]);
                    }
                }
            }
            g.rss.with_label_values(&[role]).set(n(r.rss_kb.saturating_mul(1024)));
            g.threads.with_label_values(&[role]).set(n(r.threads));
        }
        Ok(())
    }
}
