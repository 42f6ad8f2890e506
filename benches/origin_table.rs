//! The native origin table's cost at a fingerprint, for a process holding
//! 10,000 descriptors opened through libc under the agent
//! (`bench/programs/fdholder.c`, built here with `cc`):
//!
//!     cargo bench --bench origin_table
//!
//! Side by side, in one process, alternated: the table read as fdsoak reads
//! it now (only the slots of the live descriptors, each kept if its sequence
//! held still across the copy), and the whole table copied and scanned, as
//! the reader did before issue 29 (it `read()` the 24.5 MiB table file at
//! each fingerprint); the live slots symbolized into a table; then the whole
//! fingerprint with origins against the fingerprint without. Medians of 15
//! rounds.

use fdsoak::origin::native::Symbols;
use fdsoak::origin::table::Table;
use fdsoak::sampler::fingerprint::{fingerprint, fingerprint_with_origins, TableLoader};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FDS: usize = 10_000;
const ROUNDS: usize = 15;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("fdholder");
    let ok = Command::new("cc")
        .args(["-O2", "-g", "-o"])
        .arg(&exe)
        .arg("bench/programs/fdholder.c")
        .status()
        .unwrap()
        .success();
    assert!(ok, "building fdholder.c");
    let agents = fdsoak::origin::Agents::install(true).unwrap();
    let mut child = Command::new(&exe)
        .arg(FDS.to_string())
        .envs(agents.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let pid = child.id() as i32;
    let live: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let symbols = Symbols::default();
    let (mut slots, mut whole, mut with, mut without) = (vec![], vec![], vec![], vec![]);
    let mut symbolized = vec![];
    let mut named = 0;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let (read, _) = fdsoak::origin::native::live_slots(pid, &live).expect("a native table");
        slots.push(t.elapsed());
        assert!(read.len() >= FDS, "{} slots read", read.len());

        let t = Instant::now();
        let table = Table::read(pid, &live, &symbols, None).expect("a native table");
        symbolized.push(t.elapsed());
        named = live
            .iter()
            .filter(|fd| table.opened(**fd, "/dev/null").is_some())
            .count();

        let t = Instant::now();
        let n = fdsoak::origin::native::whole_table_scan(pid).expect("the table's mapping");
        whole.push(t.elapsed());
        assert!(n >= FDS, "{n} slots in use");

        let load = |fds: &[i32]| Table::read(pid, fds, &symbols, None);
        let t = Instant::now();
        fingerprint_with_origins(pid, None, Some(&load as TableLoader<'_>)).unwrap();
        with.push(t.elapsed());
        let t = Instant::now();
        fingerprint(pid, None).unwrap();
        without.push(t.elapsed());
    }
    drop(child.stdin.take());
    let _ = child.wait();
    let (s, w) = (median(slots), median(whole));
    println!("origin table of a process holding {FDS} descriptors ({named} named), medians of {ROUNDS}:");
    println!("  live slots only (now):          {s:>10.2?}");
    println!(
        "  whole table copied (before 29): {w:>10.2?}   {:.1}x the time",
        w.as_secs_f64() / s.as_secs_f64()
    );
    println!("  live slots, symbolized:         {:>10.2?}", median(symbolized));
    let (a, b) = (median(with), median(without));
    println!("  fingerprint with origins:       {a:>10.2?}");
    println!(
        "  fingerprint without:            {b:>10.2?}   origins add {:.2}x",
        a.as_secs_f64() / b.as_secs_f64()
    );
}
