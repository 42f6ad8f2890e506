//! Entry points for the fuzz targets under `fuzz/`, kept in the library so
//! that every crashing input found can be replayed as an ordinary test
//! (`tests/it/fuzz_regressions.rs`) without libFuzzer. Each takes arbitrary
//! bytes and must return without panicking, whatever they hold.

use std::path::Path;

/// Scenario text: parse, validate and plan; and the same bytes as a `--fault` spec.
pub fn scenario(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = crate::scenario::parse_fault_spec(text).map(|f| format!("{f:?}"));
    match crate::scenario::parse(Path::new("fuzz.toml"), text) {
        Err(e) => drop(e.to_string()),
        Ok(sc) => {
            let _ = crate::scenario::check_rules(&sc);
            // Address targets resolve host names; everything else is planned offline.
            if sc.target.mode != crate::scenario::TargetMode::Address {
                let _ = crate::lifecycle::plan::plan(&sc, Path::new("fdsoak")).map(|p| p.describe());
            }
            let _ = crate::lifecycle::plan::ready_timeout(&sc);
            let has_load: Vec<bool> = sc.phases.iter().map(|p| !p.workloads.is_empty()).collect();
            let _ = crate::analysis::load_window(&has_load);
            let _ = toml::to_string(&sc);
            rpc_keys(&sc);
            // TLS files are read with a bound; metadata must expand or fail, never panic.
            let _ = crate::transport::Transport::load(&sc).map(|t| format!("{t:?}"));
        }
    }
}

/// An rpc workload's method and body, against the built-in protos (no file is read).
fn rpc_keys(sc: &crate::scenario::Scenario) {
    static POOL: std::sync::OnceLock<Option<prost_reflect::DescriptorPool>> = std::sync::OnceLock::new();
    let Some(pool) = POOL.get_or_init(|| prost_reflect::DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET).ok())
    else {
        return;
    };
    for r in sc.phases.iter().flat_map(|p| &p.workloads).filter_map(|w| w.rpc()) {
        let input = crate::rpc::find_method(pool, &r.method)
            .ok()
            .map(|m| m.input())
            .or_else(|| pool.get_message_by_name("fdsoak.demo.v1.AskRequest"));
        if let (Some(input), Some(crate::scenario::Body::Data(data))) = (input, &r.body) {
            if let Ok(b) = crate::rpc::body::Bodies::parse(&input, data) {
                for n in [0, 1, u64::MAX] {
                    let _ = b.get(n);
                }
            }
        }
    }
}

/// `summary.json` text: read, compare with itself, merge with itself, render every format.
pub fn summary(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(s) = crate::report::json::parse(text) else {
        return;
    };
    let tol = crate::compare::Tolerances::default();
    if let Ok(c) = crate::compare::compare(&s, &s, "a", "b", &tol) {
        for f in [
            crate::compare::Format::Terminal,
            crate::compare::Format::Markdown,
            crate::compare::Format::Json,
        ] {
            let _ = c.render(f);
        }
    }
    let _ = crate::merge::merge_summaries(&[s.clone(), s.clone()]);
    let nowhere = Path::new("/nonexistent/fdsoak-fuzz");
    let _ = crate::report::render_all(&s, nowhere);
    let _ = crate::report::terminal::render(&s, nowhere);
}

/// `samples.csv` and `throughput.csv` text (split at the first 0xFF byte):
/// read back for charts and merged, as `report` and `merge` do.
pub fn csv(data: &[u8]) {
    let (samples, throughput) = match data.iter().position(|b| *b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[..0]),
    };
    let Ok(dir) = tempfile::tempdir() else { return };
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).is_ok();
    if !write(crate::series::SAMPLES_CSV, samples) || !write(crate::series::THROUGHPUT_CSV, throughput) {
        return;
    }
    let _ = crate::report::timeline::read(dir.path(), 10.0, 1.0);
    let inputs = [dir.path().to_path_buf(), dir.path().to_path_buf()];
    let _ = crate::merge::merge_throughput(&inputs, 0.25);
    let out = dir.path().join("out");
    if std::fs::create_dir(&out).is_ok() {
        let _ = crate::merge::merge_samples(&inputs, &out);
    }
}

/// A metrics page, as a scrape returns it: parsed for the standard process
/// metrics and for names taken from the page itself; the same text as a
/// `[target.fds]` URL and as a `--shard` value.
pub fn metrics(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    use crate::scenario::{MAX_FDS_METRIC, OPEN_FDS_METRIC};
    let _ = crate::sampler::prometheus::parse(text, OPEN_FDS_METRIC, MAX_FDS_METRIC).map(|r| r.fds.total);
    let mut words = text.split_whitespace();
    if let (Some(open), Some(max)) = (words.next(), words.next()) {
        let _ = crate::sampler::prometheus::parse(text, open, max);
    }
    let url = crate::scenario::MetricsUrl::new(text);
    let _ = (url.problem(), url.to_string());
    let _ = text.parse::<crate::scenario::Shard>().map(|s| s.share(u64::MAX));
}

/// An origin agent's table, as a process under test could write it: parsed and
/// joined to descriptors and addresses, never a panic.
pub fn origin_table(data: &[u8]) {
    native_table(data);
    go_table(data);
    let Some(table) = crate::origin::table::Table::parse(data) else {
        return;
    };
    for fd in -1..64 {
        let _ = table
            .opened(fd, "/tmp/x")
            .map(|s| s.top_user_frame().map(|f| f.to_string()));
    }
    let remote = std::net::SocketAddr::from(([127, 0, 0, 1], 50051));
    let _ = table.channels_to(remote).count();
}

/// A Go binary's `.gopclntab` as a stripped binary might hold it: parsed, and
/// addresses around its text looked up; never a panic.
pub fn go_table(data: &[u8]) {
    let Some(table) = crate::origin::gopclntab::GoTable::parse(data.to_vec()) else {
        return;
    };
    let start = table.text_start();
    for pc in (0..64)
        .map(|i| start.wrapping_add(i * 7))
        .chain([0, u64::MAX, start.wrapping_sub(1)])
    {
        let _ = table.frame(pc).map(|f| f.to_string());
    }
}

/// The native agent's table as its memory might hold it, header then slots,
/// read as fdsoak reads it; never a panic.
pub fn native_table(data: &[u8]) {
    use crate::origin::native::slots::{whole, Header, HEADER};
    let Some(h) = Header::parse(data) else { return };
    let size = h.slot_size();
    for fd in 0..h.high.min(64) {
        let at = HEADER + fd * size;
        let Some(copy) = data.get(at..at + size) else { break };
        let _ = whole(copy, fd as u32, h.depth).map(|pcs| pcs.len());
    }
}

/// A byte stream through the proxy's HTTP/2 framing, split where the input's
/// first bytes say, with resets and a crossing GOAWAY armed: never a panic,
/// and the stream's own bytes come out whole, in order, between any frames added.
pub fn h2_frames(data: &[u8]) {
    use crate::fault::h2::{Conn, Piece};
    let Some((&cut, rest)) = data.split_first() else { return };
    let mut conn = Conn::default();
    conn.goaway(None, 0, b"fuzz", true);
    let mut pieces = Vec::new();
    for (i, chunk) in rest.chunks(usize::from(cut) + 1).enumerate() {
        let from = i % 2;
        pieces.clear();
        conn.pass(from, chunk, Some((0.5, 8)), &mut pieces);
        let mut next = 0;
        for p in &pieces {
            if let Piece::Bytes(r) = p {
                assert_eq!(r.start, next, "bytes skipped or repeated");
                next = r.end;
            }
        }
        assert_eq!(next, chunk.len(), "bytes lost");
        if i % 3 == 0 {
            conn.goaway(Some(1), 11, b"too_many_pings", false);
        }
        let _ = conn.ready(1 - from);
    }
}
