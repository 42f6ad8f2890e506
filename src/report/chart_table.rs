//! The report's charts as one table: each chart's id, titles, axis, which
//! runs show it, and its series with their palette colours. The static SVG
//! figures ([`super::figures`]) and the zoomable charts ([`super::zoom`])
//! both draw from it, so the two cannot drift apart.

use super::model::Summary;

/// One chart of `report.html`.
#[derive(Debug)]
pub struct ChartSpec {
    /// The id of the `<figure>` both renderers draw into.
    pub id: &'static str,
    /// The heading over the figure.
    pub heading: &'static str,
    /// The title drawn on the chart; `{pid}` stands for the target's pid.
    pub title: &'static str,
    /// The y axis' label.
    pub y: &'static str,
    /// Decimal places the zoomable chart keeps of each value.
    pub decimals: u8,
    /// Each band is drawn over the sum of the ones before it.
    pub stacked: bool,
    pub shown: Shown,
    pub series: SeriesSource,
}

/// Which runs show a chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Always,
    /// When the target's descriptors were read by kind and state (not from a source that gives counts only).
    TargetDetail,
    /// When fdsoak made calls of its own (not when the load came only from a client under test).
    OwnCalls,
}

/// Where a chart's series come from.
#[derive(Debug)]
pub enum SeriesSource {
    /// One line per watched process, coloured by its place among them.
    PerProcess,
    /// The kernel's TCP states the target ever had, coloured by the state's place in `domain::TCP_STATES`.
    TcpStates,
    /// These series, in this order.
    Fixed(&'static [Named]),
}

/// A fixed series.
#[derive(Debug)]
pub struct Named {
    pub name: &'static str,
    /// Index into [`super::charts::PALETTE`].
    pub color: usize,
    /// Drawn only when it is ever above zero.
    pub optional: bool,
}

const fn named(name: &'static str, color: usize) -> Named {
    Named {
        name,
        color,
        optional: false,
    }
}

const fn optional(name: &'static str, color: usize) -> Named {
    Named {
        name,
        color,
        optional: true,
    }
}

pub const FDS: ChartSpec = ChartSpec {
    id: "chart-fds",
    heading: "File descriptors per process",
    title: "Open file descriptors",
    y: "FDs",
    decimals: 0,
    stacked: false,
    shown: Shown::Always,
    series: SeriesSource::PerProcess,
};

/// The target's descriptors by kind, bottom band first; "other" is the total.
pub const KINDS: ChartSpec = ChartSpec {
    id: "chart-kinds",
    heading: "Target descriptors by kind",
    title: "Target (pid {pid}) FDs by kind, stacked",
    y: "FDs",
    decimals: 0,
    stacked: true,
    shown: Shown::TargetDetail,
    series: SeriesSource::Fixed(&[
        named("sockets", 0),
        named("pipes", 1),
        named("files", 2),
        named("anon inodes", 3),
        named("other", 4),
    ]),
};

pub const TCP: ChartSpec = ChartSpec {
    id: "chart-tcp",
    heading: "Target TCP sockets by state",
    title: "Target (pid {pid}) TCP sockets by state",
    y: "sockets",
    decimals: 0,
    stacked: false,
    shown: Shown::TargetDetail,
    series: SeriesSource::TcpStates,
};

/// Latency percentiles, in milliseconds.
pub const LATENCY: ChartSpec = ChartSpec {
    id: "chart-latency",
    heading: "Latency percentiles",
    title: "Latency (from the scheduled start of each call)",
    y: "ms",
    decimals: 2,
    stacked: false,
    shown: Shown::OwnCalls,
    series: SeriesSource::Fixed(&[named("p50", 2), named("p90", 0), named("p99", 3), named("max", 1)]),
};

/// Calls per second: ok, errors and skipped, in that order.
pub const THROUGHPUT: ChartSpec = ChartSpec {
    id: "chart-throughput",
    heading: "Throughput and errors",
    title: "Throughput and errors",
    y: "calls / s",
    decimals: 1,
    stacked: false,
    shown: Shown::OwnCalls,
    series: SeriesSource::Fixed(&[
        named("ok / s", 2),
        optional("errors / s", 1),
        optional("skipped / s", 3),
    ]),
};

/// Every chart, in page order.
pub const CHARTS: [&ChartSpec; 5] = [&FDS, &KINDS, &TCP, &LATENCY, &THROUGHPUT];

impl ChartSpec {
    /// Whether the run `s` shows this chart.
    pub fn shown_for(&self, s: &Summary) -> bool {
        match self.shown {
            Shown::Always => true,
            Shown::TargetDetail => super::limits::target_detail(s),
            Shown::OwnCalls => !s.workloads.is_empty(),
        }
    }

    /// The chart's title for a target with this pid.
    pub fn title_for(&self, pid: i32) -> String {
        self.title.replace("{pid}", &pid.to_string())
    }

    /// The fixed series; empty for the others.
    pub fn fixed(&self) -> &'static [Named] {
        match self.series {
            SeriesSource::Fixed(named) => named,
            _ => &[],
        }
    }

    /// The zoomable chart's scale: values are kept as integers of 1 / `v_scale`.
    pub fn v_scale(&self) -> f64 {
        10f64.powi(self.decimals.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::charts::PALETTE;

    #[test]
    fn ids_are_distinct_and_colours_are_in_the_palette() {
        let ids: std::collections::BTreeSet<_> = CHARTS.iter().map(|c| c.id).collect();
        assert_eq!(ids.len(), CHARTS.len());
        for c in CHARTS {
            assert!(c.fixed().iter().all(|n| n.color < PALETTE.len()), "{}", c.id);
        }
        assert_eq!(KINDS.title_for(7), "Target (pid 7) FDs by kind, stacked");
        assert_eq!(LATENCY.v_scale(), 100.0);
    }
}
