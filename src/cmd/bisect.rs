//! `fdsoak bisect`: its flags (`run`'s, and the commit range), then the
//! search of the range: print each step's verdict and the outcome, exit 0
//! found, 1 ends not as named, 3 undecided, 130 interrupted.

use super::run::{setup::run_setup, Programs, RunArgs};
use crate::bisect::record::{Outcome, StepVerdict};
use crate::bisect::BisectConfig;
use crate::error::{Error, Exit, Result};
use clap::Args;
use std::path::PathBuf;

/// Find the commit that made a scenario fail: build and run each candidate between a good
/// and a bad commit, in a git worktree of its own, and write bisect.md and bisect.json.
///
/// Takes the flags of `run` (--spawn, --client, gates, …); commands it starts run in the
/// worktree, so `--spawn "./target/release/server --port {port}"` is that commit's build.
/// --out names the bisection's directory; each run's report goes in its runs/.
/// Exits 0 when the first bad commit is found, 1 when the good end fails or the bad end
/// passes, 2 for usage, 3 when it cannot decide (a run error, every candidate skipped),
/// 130 when interrupted (the steps so far are written).
#[derive(Debug, Args)]
pub struct BisectArgs {
    /// A commit (any git revision) where the scenario passes.
    #[arg(long, value_name = "REV")]
    pub good: String,
    /// A later commit where it fails.
    #[arg(long, value_name = "REV")]
    pub bad: String,
    /// Build each candidate with this shell command, run in its worktree; a build that
    /// fails skips the commit.
    #[arg(long, value_name = "CMD")]
    pub build: Option<String>,
    /// Run each candidate up to N times: any failed run makes it bad (a slow leak may not show every time).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// The git repository to bisect.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    #[command(flatten)]
    pub run: RunArgs,
}

/// The run every candidate gets, and the search around it.
fn config(b: BisectArgs) -> Result<BisectConfig> {
    if b.run.label.is_some() {
        return Err(Error::usage("--label", "bisect labels each run with its commit"));
    }
    if b.run.start_at.is_some() || b.run.shard.is_some() || b.run.shards.is_some() {
        return Err(Error::usage(
            "--start-at, --shard, --shards",
            "apply to one run, not to a bisection",
        ));
    }
    let workers = b.run.workers;
    let mut run = run_setup(b.run, Programs::BuiltLater)?;
    let out = run.out_dir.take();
    Ok(BisectConfig {
        run,
        repo: b.repo,
        good: b.good,
        bad: b.bad,
        build: b.build,
        repeat: b.repeat,
        out,
        workers,
    })
}

pub fn execute(args: BisectArgs) -> Result<Exit> {
    let config = config(args)?;
    let workers = config.workers;
    let outcome = super::runtime_with(workers)?.block_on(crate::bisect::bisect(config, super::interrupted()))?;
    let r = &outcome.record;
    for (i, s) in r.steps.iter().enumerate() {
        let verdict = format!("{:?}", s.verdict).to_lowercase();
        let why = match (s.verdict, &s.reason) {
            (StepVerdict::Skip, Some(r)) => format!(" ({r})"),
            _ => String::new(),
        };
        println!(
            "  {:>2}. {} {:<5} {}{why}",
            i + 1,
            &s.commit[..10.min(s.commit.len())],
            verdict,
            s.subject
        );
    }
    println!("fdsoak bisect: {}", r.headline());
    if let Outcome::Found { finding: Some(f), .. } = &r.outcome {
        println!("  ✗ {f}");
    }
    println!("bisection written to {}", outcome.dir.join("bisect.md").display());
    Ok(match r.outcome {
        Outcome::Found { .. } => Exit::Pass,
        Outcome::GoodEndFails { .. } | Outcome::BadEndPasses => Exit::Fail,
        Outcome::Undecided { .. } | Outcome::Searching => Exit::RunError,
        Outcome::Interrupted => Exit::Interrupted,
    })
}
