//! A run's zoomable charts, from the chart table ([`super::chart_table`]),
//! in the order of the static figures: one function per chart, each coding
//! the run's min/max traces ([`crate::series::Traces`]) into the page
//! format of [`super::zoom`].

use super::chart_table::{self as table, ChartSpec, Named};
use super::limits::Marks;
use super::model::Summary;
use super::zoom::{color, delta, delta_ints, page, Chart, LevelMark, LineMark, Page, Series};
use crate::domain::{Role, TCP_STATES};
use crate::series::{Grid, ProcTraces, Timeline, Trace, Traces};

/// One series of a zoomable chart, as traced.
pub struct TraceLine<'a> {
    pub label: String,
    pub color: String,
    pub dash: bool,
    pub trace: &'a Trace,
}

impl<'a> TraceLine<'a> {
    /// A solid line of a series the chart table names.
    fn named(named: &Named, trace: &'a Trace) -> TraceLine<'a> {
        TraceLine {
            label: named.name.into(),
            color: color(named.color),
            dash: false,
            trace,
        }
    }
}

/// A chart over `grid` from traces: each bucket any trace saw gives two x
/// positions (a quarter and three quarters of the way through it), carrying
/// each trace's two extremes in the order they came.
pub fn from_traces(mut chart: Chart, grid: Grid, lines: &[TraceLine]) -> Chart {
    let buckets: Vec<usize> = (0..grid.len)
        .filter(|b| lines.iter().any(|l| l.trace.get(*b).is_some()))
        .collect();
    chart.x = delta_ints(buckets.iter().flat_map(|b| [4 * *b as i64 + 1, 4 * *b as i64 + 3]));
    chart.x_scale = grid.width / 4.0;
    let scale = chart.v_scale;
    chart.series = lines
        .iter()
        .map(|l| Series {
            label: l.label.clone(),
            color: l.color.clone(),
            dash: l.dash,
            v: delta(
                buckets.iter().flat_map(|b| match l.trace.get(*b) {
                    Some((a, z)) => [Some(a), Some(z)],
                    None => [None, None],
                }),
                scale,
            ),
        })
        .collect();
    chart
}

/// Every zoomable chart of a run's report, as the chart table lists them
/// and in the order of the static ones, each going into the `<figure>` whose
/// id it names.
pub fn report_page(s: &Summary, tl: &Timeline, marks: &Marks) -> Page {
    let mut page = page(s);
    let tr = &tl.traces;
    page.charts.push(fds_chart(tr, marks));
    let target = tr.procs.iter().find(|((role, _), _)| *role == Role::Target);
    if let (Some(((_, pid), p)), true) = (target, table::KINDS.shown_for(s)) {
        page.charts.push(kinds_chart(*pid, p, tr.fine, marks.x_max));
        page.charts.push(tcp_chart(*pid, p, tr.fine, marks.x_max));
    }
    if table::LATENCY.shown_for(s) {
        page.charts.push(latency_chart(tr, marks.x_max));
        page.charts.push(throughput_chart(tr, marks.x_max));
    }
    page
}

/// An empty chart as `spec` says, titled `title`, showing 0 to `x_max` before any zoom.
fn chart_of(spec: &ChartSpec, title: String, x_max: f64) -> Chart {
    Chart {
        id: spec.id.into(),
        title,
        y: spec.y.into(),
        v_scale: spec.v_scale(),
        stacked: spec.stacked,
        x_max,
        ..Chart::default()
    }
}

/// Descriptors per process, with the soft limits and the projections to them.
fn fds_chart(tr: &Traces, marks: &Marks) -> Chart {
    let lines: Vec<TraceLine> = tr
        .procs
        .iter()
        .enumerate()
        .map(|(i, ((role, pid), p))| TraceLine {
            label: format!("{role} (pid {pid})"),
            color: color(i),
            dash: false,
            trace: &p.total,
        })
        .collect();
    let spec = &table::FDS;
    let mut chart = from_traces(chart_of(spec, spec.title.into(), marks.x_max), tr.fine, &lines);
    chart.levels = marks
        .levels
        .iter()
        .map(|l| LevelMark {
            label: l.name.clone(),
            y: l.y,
            color: color(l.color),
        })
        .collect();
    chart.lines = marks
        .projections
        .iter()
        .map(|p| LineMark {
            label: p.name.clone(),
            color: color(p.color),
            from: p.from,
            to: p.to,
        })
        .collect();
    chart
}

/// The target's descriptors by kind, stacked, the largest (the total) first.
fn kinds_chart(pid: i32, p: &ProcTraces, grid: Grid, x_max: f64) -> Chart {
    let traces = p.kinds.iter().chain([&p.total]);
    let mut lines: Vec<TraceLine> = table::KINDS
        .fixed()
        .iter()
        .zip(traces)
        .map(|(named, t)| TraceLine::named(named, t))
        .collect();
    lines.reverse();
    from_traces(
        chart_of(&table::KINDS, table::KINDS.title_for(pid), x_max),
        grid,
        &lines,
    )
}

/// The target's TCP sockets by state: only the states it ever had.
fn tcp_chart(pid: i32, p: &ProcTraces, grid: Grid, x_max: f64) -> Chart {
    let lines: Vec<TraceLine> = p
        .states
        .iter()
        .map(|(i, t)| TraceLine {
            label: TCP_STATES[*i].1.to_string(),
            color: color(*i),
            dash: false,
            trace: t,
        })
        .collect();
    from_traces(chart_of(&table::TCP, table::TCP.title_for(pid), x_max), grid, &lines)
}

/// Latency percentiles, all workloads together.
fn latency_chart(tr: &Traces, x_max: f64) -> Chart {
    let lines: Vec<TraceLine> = table::LATENCY
        .fixed()
        .iter()
        .zip(&tr.latency)
        .map(|(named, t)| TraceLine::named(named, t))
        .collect();
    let spec = &table::LATENCY;
    from_traces(chart_of(spec, spec.title.into(), x_max), tr.coarse, &lines)
}

/// Throughput, with errors and skipped calls when there were any.
fn throughput_chart(tr: &Traces, x_max: f64) -> Chart {
    let ever = |t: &Trace| (0..t.len()).any(|b| t.get(b).is_some_and(|v| v.0 > 0.0 || v.1 > 0.0));
    let lines: Vec<TraceLine> = table::THROUGHPUT
        .fixed()
        .iter()
        .zip(&tr.rates)
        .filter(|(named, t)| !named.optional || ever(t))
        .map(|(named, t)| TraceLine::named(named, t))
        .collect();
    let spec = &table::THROUGHPUT;
    from_traces(chart_of(spec, spec.title.into(), x_max), tr.coarse, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_keeps_both_extremes_of_every_bucket() {
        let grid = Grid::new(10.0, 1.0, 100);
        let mut t = Trace::new(grid.len);
        t.add(2, 5.0);
        t.add(2, 50.0);
        t.add(2, 7.0);
        t.add(4, 3.0);
        let c = from_traces(
            Chart {
                v_scale: 1.0,
                ..Chart::default()
            },
            grid,
            &[TraceLine {
                label: "a".into(),
                color: color(0),
                dash: false,
                trace: &t,
            }],
        );
        assert_eq!(c.x, vec![9, 2, 6, 2], "buckets 2 and 4, two positions each");
        assert_eq!(c.series[0].v, vec![Some(5), Some(45), Some(-47), Some(0)]);
    }
}
