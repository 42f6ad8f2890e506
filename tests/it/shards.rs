//! A run split over several drivers (`--shard I/N`, or `--shards N` with
//! JOB_COMPLETION_INDEX), lined up with `--start-at`, and merged back: the
//! shards add up to one driver at the full rate, and `merge` refuses a set
//! that is not one whole run.

use crate::common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

const SCENARIO: &str = r#"name = "sharded"
[sampler]
interval = "500ms"
[[phases]]
name = "baseline"
duration = "1s"
[[phases]]
name = "load"
duration = "8s"
  [[phases.workloads]]
  kind = "health_check"
  name = "checks"
  rate = 400
[[phases]]
name = "drain"
duration = "1s"
"#;

fn scenario(dir: &TempDir) -> std::path::PathBuf {
    dir.write("sharded.toml", SCENARIO)
}

fn load(r: &fdsoak::report::model::Summary) -> &fdsoak::report::model::WorkloadReport {
    r.workloads.iter().find(|w| w.phase == "load").unwrap()
}

#[test]
fn four_shards_merge_into_one_full_rate_run_and_a_missing_shard_is_refused() {
    let server = Server::start(&[]);
    let dir = TempDir::new("shards");
    let sc = scenario(&dir);
    let addr = server.addr.to_string();
    let start_at = humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_secs(4)).to_string();
    let outs: Vec<TempDir> = (0..4).map(|i| TempDir::new(&format!("shard{i}"))).collect();
    let children: Vec<_> = outs
        .iter()
        .enumerate()
        .map(|(i, out)| {
            let mut c = Command::new(FDSOAK);
            c.arg("run").arg(&sc).arg("--out").arg(out.path());
            c.args(["-q", "--target", &addr, "--start-at", &start_at]);
            // The last driver finds its index as a pod of an Indexed Job does.
            if i == 3 {
                c.args(["--shards", "4"]).env("JOB_COMPLETION_INDEX", "3");
            } else {
                c.args(["--shard", &format!("{i}/4")]);
            }
            c.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "shard {i}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    let shards: Vec<_> = outs.iter().map(|o| read_summary(o.path())).collect();
    for (i, s) in shards.iter().enumerate() {
        let info = s.shard.as_ref().unwrap();
        assert_eq!((info.index, info.count), (i as u32, 4));
        assert!(!s.host.is_empty() && info.start_at.is_some());
        // Each ran a quarter of the rate.
        assert_eq!(
            s.scenario.resolved.phases[1].workloads[0]
                .calls()
                .unwrap()
                .pacing
                .rate(),
            Some(100.0)
        );
    }
    let starts: Vec<u64> = shards
        .iter()
        .map(|s| s.shard.as_ref().unwrap().phases_unix_ms)
        .collect();
    let spread = starts.iter().max().unwrap() - starts.iter().min().unwrap();
    assert!(spread < 500, "--start-at lined the phases up: {starts:?}");

    let merged_dir = TempDir::new("merged");
    let mut merge = Command::new(FDSOAK);
    merge.arg("merge");
    merge.args(outs.iter().map(|o| o.path()));
    let o = merge.arg("--out").arg(merged_dir.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let merged = read_summary(merged_dir.path());
    let m = load(&merged);

    // The merged latency is that of the four histograms added, not an average of percentiles.
    let mut sum = load(&shards[0]).histogram().unwrap();
    for s in &shards[1..] {
        sum.add(load(s).histogram().unwrap()).unwrap();
    }
    assert_eq!(m.latency.count, sum.len());
    assert_eq!(m.latency.p99_us, sum.value_at_quantile(0.99));
    assert_eq!(m.ok, shards.iter().map(|s| load(s).ok).sum::<u64>());

    // One driver at the full rate makes the same number of calls, within 1%.
    let whole = run(&sc, &["--target", &addr]);
    assert_eq!(whole.code, 0, "{}", whole.context());
    let one = load(&whole.summary()).ok as f64;
    assert!(
        (m.ok as f64 - one).abs() <= one * 0.01,
        "merged {} calls, one driver {one}",
        m.ok
    );

    // Three of four shards are not a run.
    let o = Command::new(FDSOAK)
        .arg("merge")
        .args([outs[0].path(), outs[1].path(), outs[3].path()])
        .arg("--out")
        .arg(TempDir::new("partial").path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("shard 2/4 missing"), "{err}");
    // Nor is a shard merged with an unsharded run.
    let o = Command::new(FDSOAK)
        .arg("merge")
        .args([outs[0].path(), whole.out.path()])
        .arg("--out")
        .arg(TempDir::new("mixed").path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn shard_flags_are_checked_before_anything_starts() {
    let dir = TempDir::new("shardflags");
    let sc = scenario(&dir);
    for (args, env, needle) in [
        (vec!["--shard", "4/4"], None, "not below the shard count"),
        (vec!["--shard", "x"], None, "I/N"),
        (vec!["--shards", "4"], None, "JOB_COMPLETION_INDEX"),
        (vec!["--shards", "4"], Some("9"), "not below"),
        (vec!["--start-at", "tomorrow"], None, "--start-at"),
    ] {
        let mut c = Command::new(FDSOAK);
        c.arg("run").arg(&sc).args(&args).env_remove("JOB_COMPLETION_INDEX");
        if let Some(i) = env {
            c.env("JOB_COMPLETION_INDEX", i);
        }
        let o = c.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
