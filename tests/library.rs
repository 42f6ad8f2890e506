//! The scenario library against the clean built-in target, in-process: every
//! scenario passes, and fdsoak's own descriptor count is back at its
//! baseline after each one, faults and all. One test in this file, so no
//! other test shares the process.

mod common;
use common::*;
use fdsoak::run::{run, RunConfig};
use std::time::Duration;

fn own_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count() - 1
}

async fn settle_to(baseline: usize, what: &str) {
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = own_fds();
        if now == baseline {
            return;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "{what}: {now} FDs open, baseline {baseline}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_library_scenario_passes_against_the_clean_target_and_leaves_no_fd_behind() {
    let library = [
        "health-storm-fresh-channels",
        "abrupt-client-death",
        "half-open",
        "goaway-churn",
        "outage-retry-storm",
        "exhaustion-recovery",
    ];
    let mut baseline = None;
    for name in library {
        let path = repo(&format!("scenarios/{name}.toml"));
        let out = TempDir::new(name);
        let cfg = RunConfig {
            scenario: fdsoak::scenario::load(&path).unwrap(),
            scenario_file: path.clone(),
            out_dir: Some(out.path().to_path_buf()),
            reports_root: out.path().to_path_buf(),
            fdsoak_exe: FDSOAK.into(),
            progress: false,
        };
        let outcome = run(cfg, std::future::pending()).await.unwrap();
        let findings: Vec<&str> = outcome.summary.findings.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(outcome.verdict.as_str(), "pass", "{name}: {findings:#?}");
        // The first run creates process-wide state that lives on by design; count from after it.
        match baseline {
            None => baseline = Some(own_fds()),
            Some(b) => settle_to(b, &format!("after {name}")).await,
        }
    }
}
