//! Live metrics (`run --metrics-addr`): the run as Prometheus series while it
//! lasts, so a soak can sit on the same dashboard as the service it tests.
//!
//! The sampler's ticks set the per-process gauges (descriptors by kind, TCP
//! sockets by state, limits, memory, threads) and the current phase; the
//! workload counters and HDR histograms, and the fault events, are read
//! when a scrape asks, so nothing is added to a call's path. The page is encoded by the
//! `prometheus` crate, and served by its own thread with its own runtime:
//! a slow scraper waits on that thread, never on the driver's.

use crate::metrics::Registry as Workloads;
use crate::vocab::{SampleSink, Tick};
use anyhow::Context;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
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

/// Latency buckets, in seconds: the HDR histogram's counts are summed into these at each scrape.
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

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

/// The workloads' counters and histograms, read at each scrape.
struct WorkloadCollector {
    workloads: Arc<Workloads>,
    descs: Vec<Desc>,
}

impl WorkloadCollector {
    fn new(workloads: Arc<Workloads>) -> anyhow::Result<WorkloadCollector> {
        let desc = |name: &str, help: &str, labels: &[&str]| {
            Desc::new(
                name.into(),
                help.into(),
                labels.iter().map(|l| l.to_string()).collect(),
                Default::default(),
            )
        };
        let wp = ["workload", "phase"];
        Ok(WorkloadCollector {
            workloads,
            descs: vec![
                desc(
                    "fdsoak_calls_total",
                    "Calls (streams) finished, by status code.",
                    &["workload", "phase", "code"],
                )?,
                desc("fdsoak_calls_in_flight", "Calls (streams) running now.", &wp)?,
                desc("fdsoak_messages_total", "Stream messages received.", &wp)?,
                desc("fdsoak_latency_seconds", "Call latency, from the HDR histogram.", &wp)?,
                desc(
                    "fdsoak_timetable_lag_seconds",
                    "How late calls started after their due time.",
                    &wp,
                )?,
            ],
        })
    }
}

impl Collector for WorkloadCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        use prometheus::proto::{Counter, Gauge, Metric, MetricType};
        let mut calls = Vec::new();
        let (mut in_flight, mut messages, mut latency, mut lag) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for w in self.workloads.all() {
            let base = [("workload", w.name.as_str()), ("phase", w.phase.as_str())];
            for (code, n) in w.code_counts() {
                let mut c = Counter::default();
                c.set_value(n as f64);
                let mut m = metric(&[base[0], base[1], ("code", code)]);
                m.set_counter(c);
                calls.push(m);
            }
            let counts = w.counts();
            let mut g = Gauge::default();
            g.set_value(counts.in_flight as f64);
            let mut m = metric(&base);
            m.set_gauge(g);
            in_flight.push(m);
            let mut c = Counter::default();
            c.set_value(counts.messages as f64);
            let mut m = metric(&base);
            m.set_counter(c);
            messages.push(m);
            latency.push(histogram(&base, &w.histogram()));
            lag.push(histogram(&base, &w.lag_histogram()));
        }
        let family = |i: usize, t: MetricType, metrics: Vec<Metric>| {
            let mut f = MetricFamily::default();
            f.set_name(self.descs[i].fq_name.clone());
            f.set_help(self.descs[i].help.clone());
            f.set_field_type(t);
            f.set_metric(metrics);
            f
        };
        vec![
            family(0, MetricType::COUNTER, calls),
            family(1, MetricType::GAUGE, in_flight),
            family(2, MetricType::COUNTER, messages),
            family(3, MetricType::HISTOGRAM, latency),
            family(4, MetricType::HISTOGRAM, lag),
        ]
    }
}

fn metric(labels: &[(&str, &str)]) -> prometheus::proto::Metric {
    let mut m = prometheus::proto::Metric::default();
    m.set_label(
        labels
            .iter()
            .map(|(k, v)| {
                let mut l = prometheus::proto::LabelPair::default();
                l.set_name(k.to_string());
                l.set_value(v.to_string());
                l
            })
            .collect(),
    );
    m
}

/// An HDR histogram of microseconds as a Prometheus histogram in seconds, over [`BUCKETS`].
fn histogram(labels: &[(&str, &str)], h: &hdrhistogram::Histogram<u64>) -> prometheus::proto::Metric {
    use prometheus::proto::{Bucket, Histogram};
    let buckets = BUCKETS
        .iter()
        .map(|le| {
            let mut b = Bucket::default();
            let micros = (le * 1e6) as u64;
            b.set_upper_bound(*le);
            b.set_cumulative_count(if h.is_empty() { 0 } else { h.count_between(0, micros) });
            b
        })
        .collect();
    let mut p = Histogram::default();
    p.set_sample_count(h.len());
    p.set_sample_sum(h.mean() * h.len() as f64 / 1e6);
    p.set_bucket(buckets);
    let mut m = metric(labels);
    m.set_histogram(p);
    m
}

/// The fault events so far, by kind, read at each scrape (the report keeps at most 10,000).
struct FaultCollector {
    control: Arc<crate::fault::Control>,
    desc: Desc,
}

impl FaultCollector {
    fn new(control: Arc<crate::fault::Control>) -> anyhow::Result<FaultCollector> {
        let desc = Desc::new(
            "fdsoak_fault_events_total".into(),
            "Fault events fired (reset, blackhole, goaway, not_serving, …).".into(),
            vec!["kind".into()],
            Default::default(),
        )?;
        Ok(FaultCollector { control, desc })
    }
}

impl Collector for FaultCollector {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        use prometheus::proto::{Counter, MetricType};
        let mut by_kind = std::collections::BTreeMap::<String, u64>::new();
        for e in self.control.events() {
            *by_kind.entry(e.kind).or_default() += 1;
        }
        let metrics = by_kind
            .into_iter()
            .map(|(kind, n)| {
                let mut c = Counter::default();
                c.set_value(n as f64);
                let mut m = metric(&[("kind", kind.as_str())]);
                m.set_counter(c);
                m
            })
            .collect();
        let mut f = MetricFamily::default();
        f.set_name(self.desc.fq_name.clone());
        f.set_help(self.desc.help.clone());
        f.set_field_type(MetricType::COUNTER);
        f.set_metric(metrics);
        vec![f]
    }
}

/// The findings so far, by kind and subject: 0 series before the first.
struct FindingsCollector {
    findings: Findings,
    desc: Desc,
}

impl FindingsCollector {
    fn new(findings: Findings) -> anyhow::Result<FindingsCollector> {
        let desc = Desc::new(
            "fdsoak_findings".into(),
            "Findings the run would report if it ended now, by kind and subject.".into(),
            vec!["kind".into(), "subject".into()],
            Default::default(),
        )?;
        Ok(FindingsCollector { findings, desc })
    }
}

impl Collector for FindingsCollector {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        use prometheus::proto::{Gauge, MetricType};
        let mut counts = std::collections::BTreeMap::<(String, String), u64>::new();
        if let Ok(f) = self.findings.lock() {
            for key in f.iter() {
                *counts.entry(key.clone()).or_default() += 1;
            }
        }
        let metrics = counts
            .into_iter()
            .map(|((kind, subject), n)| {
                let mut g = Gauge::default();
                g.set_value(n as f64);
                let mut m = metric(&[("kind", kind.as_str()), ("subject", subject.as_str())]);
                m.set_gauge(g);
                m
            })
            .collect();
        let mut f = MetricFamily::default();
        f.set_name(self.desc.fq_name.clone());
        f.set_help(self.desc.help.clone());
        f.set_field_type(MetricType::GAUGE);
        f.set_metric(metrics);
        vec![f]
    }
}
