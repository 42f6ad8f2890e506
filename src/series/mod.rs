//! One typed row per streamed CSV file, used by the writers, the readers,
//! `merge` and the tests alike, so each layout is written down once.
//!
//! `samples.csv` holds one [`SampleRow`] per watched process per tick;
//! `throughput.csv` one [`ThroughputRow`] per tick. Both are flat on purpose
//! (spreadsheets and `csvkit` read them as they are). Readers fail on a value
//! that does not parse, naming the file and the record, rather than read it
//! as zero.
//!
//! [`Downsampler`] folds the same rows into fixed display buckets for the
//! charts, from the files or live during a run.

use crate::domain::{FdKinds, FdSource, Reading, Role, SampleSink, TcpState, TcpStates, Tick};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

mod downsample;
mod traces;
pub use downsample::{Downsampler, LiveSamples, SharedDownsampler, Timeline, BUCKETS};
pub use traces::{Grid, ProcTraces, Trace, Traces, COARSE_BUCKETS, FINE_BUCKETS};

/// The streamed file names inside a report directory.
pub const SAMPLES_CSV: &str = "samples.csv";
pub const THROUGHPUT_CSV: &str = "throughput.csv";

/// One row of `samples.csv`: one process at one instant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleRow {
    pub t_secs: f64,
    pub unix_ms: u128,
    pub phase: String,
    pub role: Role,
    pub pid: i32,
    pub fds: u64,
    pub sockets: u64,
    pub pipes: u64,
    pub files: u64,
    pub anon: u64,
    pub other: u64,
    pub tcp_established: u64,
    pub tcp_syn_sent: u64,
    pub tcp_syn_recv: u64,
    pub tcp_fin_wait1: u64,
    pub tcp_fin_wait2: u64,
    pub tcp_time_wait: u64,
    pub tcp_close: u64,
    pub tcp_close_wait: u64,
    pub tcp_last_ack: u64,
    pub tcp_listen: u64,
    pub tcp_closing: u64,
    pub nofile_soft: Option<u64>,
    pub nofile_hard: Option<u64>,
    pub threads: u64,
    pub rss_kb: u64,
    /// Where the reading came from; a `prometheus` row has the count, the limit and memory only.
    #[serde(default)]
    pub source: FdSource,
}

impl SampleRow {
    pub fn new(t_secs: f64, unix_ms: u128, phase: &str, role: Role, pid: i32, r: &Reading) -> SampleRow {
        let s = |st| r.tcp.get(st);
        SampleRow {
            t_secs: (t_secs * 1000.0).round() / 1000.0,
            unix_ms,
            phase: phase.to_string(),
            role,
            pid,
            fds: r.fds.total,
            sockets: r.fds.socket,
            pipes: r.fds.pipe,
            files: r.fds.file,
            anon: r.fds.anon,
            other: r.fds.other,
            tcp_established: s(TcpState::Established),
            tcp_syn_sent: s(TcpState::SynSent),
            tcp_syn_recv: s(TcpState::SynRecv),
            tcp_fin_wait1: s(TcpState::FinWait1),
            tcp_fin_wait2: s(TcpState::FinWait2),
            tcp_time_wait: s(TcpState::TimeWait),
            tcp_close: s(TcpState::Close),
            tcp_close_wait: s(TcpState::CloseWait),
            tcp_last_ack: s(TcpState::LastAck),
            tcp_listen: s(TcpState::Listen),
            tcp_closing: s(TcpState::Closing),
            nofile_soft: r.nofile_soft,
            nofile_hard: r.nofile_hard,
            threads: r.threads,
            rss_kb: r.rss_kb,
            source: FdSource::Proc,
        }
    }

    /// The TCP states of this row, as the shared table holds them.
    pub fn tcp(&self) -> TcpStates {
        let mut t = TcpStates::default();
        for (st, n) in [
            (TcpState::Established, self.tcp_established),
            (TcpState::SynSent, self.tcp_syn_sent),
            (TcpState::SynRecv, self.tcp_syn_recv),
            (TcpState::FinWait1, self.tcp_fin_wait1),
            (TcpState::FinWait2, self.tcp_fin_wait2),
            (TcpState::TimeWait, self.tcp_time_wait),
            (TcpState::Close, self.tcp_close),
            (TcpState::CloseWait, self.tcp_close_wait),
            (TcpState::LastAck, self.tcp_last_ack),
            (TcpState::Listen, self.tcp_listen),
            (TcpState::Closing, self.tcp_closing),
        ] {
            t.set(st, n);
        }
        t
    }

    /// The reading this row was written from.
    pub fn reading(&self) -> Reading {
        Reading {
            fds: FdKinds {
                total: self.fds,
                socket: self.sockets,
                pipe: self.pipes,
                file: self.files,
                anon: self.anon,
                other: self.other,
            },
            tcp: self.tcp(),
            nofile_soft: self.nofile_soft,
            nofile_hard: self.nofile_hard,
            threads: self.threads,
            rss_kb: self.rss_kb,
        }
    }
}

/// One row of `throughput.csv`: the driver's cumulative counters at a tick,
/// and the latency of the calls that finished since the previous row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThroughputRow {
    pub t_secs: f64,
    pub phase: String,
    pub scheduled: u64,
    pub started: u64,
    pub ok: u64,
    pub errors: u64,
    pub skipped: u64,
    pub in_flight: u64,
    pub messages: u64,
    /// Percentiles in µs; empty when no call finished in the interval.
    pub p50_us: Option<u64>,
    pub p90_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub max_us: Option<u64>,
}

/// A CSV file written row by row and flushed every tick, so that a `tail -f`,
/// or a crash, sees every row so far.
pub struct CsvStream(csv::Writer<BufWriter<File>>);

impl CsvStream {
    pub fn create(path: &Path) -> anyhow::Result<CsvStream> {
        let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(CsvStream::from_file(f))
    }

    pub fn from_file(f: File) -> CsvStream {
        CsvStream(csv::Writer::from_writer(BufWriter::new(f)))
    }

    pub fn write<R: Serialize>(&mut self, row: &R) -> anyhow::Result<()> {
        self.0.serialize(row)?;
        Ok(())
    }

    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.0.flush()?;
        Ok(())
    }
}

/// Streams `samples.csv`: a row for every process that answered.
pub struct SamplesCsv(pub CsvStream);

impl SampleSink for SamplesCsv {
    fn tick(&mut self, tick: &Tick<'_>) -> anyhow::Result<()> {
        for s in tick.samples {
            if let Some(r) = &s.reading {
                self.0.write(&SampleRow {
                    source: s.source,
                    ..SampleRow::new(tick.t_secs, tick.unix_ms, tick.phase_name, s.role, s.pid, r)
                })?;
            }
        }
        self.0.flush()
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        self.0.flush()
    }
}

/// Reads every row of a CSV file in order, failing on the first row that does not parse.
pub fn read_rows<R: serde::de::DeserializeOwned>(
    path: &Path,
) -> anyhow::Result<impl Iterator<Item = anyhow::Result<R>>> {
    let reader = csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let shown = path.display().to_string();
    Ok(reader.into_deserialize::<R>().map(move |row| {
        row.map_err(|e| {
            let at = e.position().map_or(String::new(), |p| format!(" line {}", p.line()));
            anyhow::anyhow!("{shown}{at}: {e}")
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_row_round_trips_its_reading() {
        let mut r = Reading::default();
        r.fds.total = 12;
        r.fds.socket = 5;
        r.tcp.add_code(8);
        r.tcp.add_code(10);
        r.nofile_soft = Some(1024);
        let row = SampleRow::new(1.23456, 99, "load", Role::Driver, 7, &r);
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&row).unwrap();
        let bytes = w.into_inner().unwrap();
        let back: SampleRow = csv::Reader::from_reader(bytes.as_slice())
            .deserialize()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(back, row);
        assert_eq!(back.reading(), r);
        assert_eq!(back.t_secs, 1.235);
    }
}
