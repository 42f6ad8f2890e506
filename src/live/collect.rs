//! The collectors the endpoint reads at each scrape, off the driver's
//! thread: the workloads' counters and HDR histograms (as Prometheus
//! histograms over fixed buckets), the fault events, and the findings so far.

use super::{Findings, Workloads};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use std::sync::Arc;

/// Latency buckets, in seconds: the HDR histogram's counts are summed into these at each scrape.
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The workloads' counters and histograms, read at each scrape.
pub(super) struct WorkloadCollector {
    workloads: Arc<Workloads>,
    descs: Vec<Desc>,
}

impl WorkloadCollector {
    pub(super) fn new(workloads: Arc<Workloads>) -> anyhow::Result<WorkloadCollector> {
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
        let family = |i: usize, t: MetricType, metrics: Vec<Metric>| family(&self.descs[i], t, metrics);
        vec![
            family(0, MetricType::COUNTER, calls),
            family(1, MetricType::GAUGE, in_flight),
            family(2, MetricType::COUNTER, messages),
            family(3, MetricType::HISTOGRAM, latency),
            family(4, MetricType::HISTOGRAM, lag),
        ]
    }
}

/// A family of `desc`'s name and help, of type `t`, holding `metrics`.
fn family(desc: &Desc, t: prometheus::proto::MetricType, metrics: Vec<prometheus::proto::Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(desc.fq_name.clone());
    f.set_help(desc.help.clone());
    f.set_field_type(t);
    f.set_metric(metrics);
    f
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
pub(super) struct FaultCollector {
    control: Arc<crate::fault::Control>,
    desc: Desc,
}

impl FaultCollector {
    pub(super) fn new(control: Arc<crate::fault::Control>) -> anyhow::Result<FaultCollector> {
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
        vec![family(&self.desc, MetricType::COUNTER, metrics)]
    }
}

/// The findings so far, by kind and subject: 0 series before the first.
pub(super) struct FindingsCollector {
    findings: Findings,
    desc: Desc,
}

impl FindingsCollector {
    pub(super) fn new(findings: Findings) -> anyhow::Result<FindingsCollector> {
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
        {
            let f = crate::domain::lock(&self.findings);
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
        vec![family(&self.desc, MetricType::GAUGE, metrics)]
    }
}
