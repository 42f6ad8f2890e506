//! The harness must not leak what it hunts: after each in-process run,
//! fdsoak's own descriptor count returns to where it was before the run,
//! including after a run that leaked channels on purpose (per_call_leak),
//! after runs that served a client under test through the fault proxy, and
//! after a run that scraped the target's descriptors from its metrics endpoint.
//! This file holds one test so that no other test shares the process.

mod common;
use common::*;

async fn run_once(scenario: &std::path::Path, out: &TempDir) -> fdsoak::report::model::Verdict {
    run_in_process(scenario, out).await.verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_fd_count_returns_to_baseline_after_every_run() {
    let dir = TempDir::new("selffd");
    let clean = fixture(&dir, "churn-short.toml", &[("duration = \"5s\"", "duration = \"2s\"")]);
    let leaky = dir.write(
        "leaky.toml",
        &std::fs::read_to_string(&clean)
            .unwrap()
            .replace("channel = \"per_call\"", "channel = \"per_call_leak\""),
    );
    let client = fixture(&dir, "client-short.toml", &[]);
    let leaky_client = dir.write(
        "leaky-client.toml",
        &std::fs::read_to_string(&client)
            .unwrap()
            .replace("--mode good", "--mode per-check-leak"),
    );
    // A target read through its Prometheus endpoint: the scraper's kept-alive connection must close with the run.
    let server = Server::with_metrics(&[]);
    let scraped = dir.write(
        "scraped.toml",
        &std::fs::read_to_string(&clean).unwrap().replace(
            "[sampler]",
            &format!(
                "[target]\nmode = \"address\"\naddress = \"{}\"\n[target.fds]\nprometheus = \"{}\"\n\n[sampler]",
                server.addr,
                server.metrics.as_deref().unwrap()
            ),
        ),
    );
    // The first run creates process-wide state that lives on by design
    // (tokio's SIGCHLD handling for child processes); measure after it.
    let out = TempDir::new("selffd-out");
    run_once(&clean, &out).await;
    let baseline = own_fds();
    for (i, (scenario, expect)) in [
        (&clean, "pass"),
        (&leaky, "fail"),
        (&client, "pass"),
        (&leaky_client, "fail"),
        (&scraped, "pass"),
        (&clean, "pass"),
    ]
    .into_iter()
    .enumerate()
    {
        let out = TempDir::new("selffd-out");
        let verdict = run_once(scenario, &out).await;
        assert_eq!(verdict.as_str(), expect, "run {i}");
        settle_to(baseline, &format!("after run {i}")).await;
    }
    bisect_in_process(&clean, &dir).await;
    settle_to(baseline, "after a bisection").await;
}

/// A bisection of four commits of a wrapper around the built-in target, the
/// third starting to leak: its runs, builds and worktree leave nothing open.
async fn bisect_in_process(scenario: &std::path::Path, dir: &TempDir) {
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "--quiet", "-b", "main"]);
    for k in 1..=4 {
        let leak = if k >= 3 { " --leak-fd-every 2" } else { "" };
        let script = format!("# revision {k}\nexec \"$1\" serve --port \"$2\"{leak}\n");
        std::fs::write(repo.join("serve.sh"), script).unwrap();
        git(&repo, &["add", "serve.sh"]);
        git(&repo, &["commit", "--quiet", "-m", &format!("revision {k}")]);
    }
    let mut run = run_config(scenario, dir);
    run.scenario.target = fdsoak::scenario::TargetSpec {
        mode: fdsoak::scenario::TargetMode::Spawn,
        command: Some("sh ./serve.sh {fdsoak} {port}".into()),
        ..Default::default()
    };
    let cfg = fdsoak::bisect::BisectConfig {
        run,
        repo: repo.clone(),
        good: "HEAD~3".into(),
        bad: "HEAD".into(),
        build: Some("test -f serve.sh".into()),
        repeat: 1,
        out: Some(dir.path().join("bisection")),
        workers: 1,
    };
    let outcome = fdsoak::bisect::bisect(cfg, std::future::pending()).await.unwrap();
    match &outcome.record.outcome {
        fdsoak::bisect::record::Outcome::Found { subject, .. } => assert_eq!(subject, "revision 3"),
        other => panic!("{other:?}"),
    }
    let trees = git(&repo, &["worktree", "list", "--porcelain"]);
    assert_eq!(trees.matches("worktree ").count(), 1, "{trees}");
}
