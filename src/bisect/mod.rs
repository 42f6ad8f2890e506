//! `fdsoak bisect`: finds the commit that made a scenario fail. Between a
//! good and a bad commit it checks out candidates in a worktree of its own
//! ([`git::Worktree`], never the user's), builds each with the user's
//! command and runs the scenario against it ([`trial`]), then marks it good
//! (pass), bad (fail) or skip (build failed, run error). Both ends are tried
//! first, so that a range with nothing to find says so. The search
//! ([`search`]) halves the range each try. [`record`] writes every step to
//! `bisect.json` and `bisect.md` as it goes.

pub mod git;
pub mod record;
mod search;
mod trial;

use crate::error::{Error, Result};
use crate::run::RunConfig;
use record::{End, Outcome, Record, Role, Step, StepVerdict};
use search::{Line, Mark, Next};
use std::future::Future;
use std::path::PathBuf;

/// A bisection, ready to run.
#[derive(Debug)]
pub struct BisectConfig {
    /// The run each candidate gets (its report directory and label are set per run).
    pub run: RunConfig,
    pub repo: PathBuf,
    pub good: String,
    pub bad: String,
    /// The shell command that builds a candidate in its worktree.
    pub build: Option<String>,
    /// Runs per candidate; any failed run makes it bad.
    pub repeat: u32,
    /// The bisection's directory; when None, a new one under the run's reports root.
    pub out: Option<PathBuf>,
    /// Driver runtime threads, as for `run`.
    pub workers: usize,
}

/// What a bisection found, and where it wrote it.
#[derive(Debug)]
pub struct BisectOutcome {
    pub record: Record,
    pub dir: PathBuf,
}

/// Bisects, writing `bisect.json` and `bisect.md` after every step. Errors
/// are the user's (a revision that is not a commit, a scenario mistake) or
/// the directory's; what a commit does is a step, not an error.
pub async fn bisect(cfg: BisectConfig, interrupt: impl Future<Output = ()>) -> Result<BisectOutcome> {
    let sc = &cfg.run.scenario;
    if sc.target.mode == crate::scenario::TargetMode::Builtin && sc.client.is_none() {
        tracing::warn!(
            "the target is fdsoak's built-in one and there is no --client: every commit runs the same code (give --spawn or --client)"
        );
    }
    let repo = git::toplevel(&cfg.repo).map_err(Error::input)?;
    let good = git::resolve(&repo, &cfg.good).map_err(|e| Error::usage("--good", format!("{e:#}")))?;
    let bad = git::resolve(&repo, &cfg.bad).map_err(|e| Error::usage("--bad", format!("{e:#}")))?;
    let mut line = git::between(&repo, &good, &bad).map_err(|e| Error::usage("--good", format!("{e:#}")))?;
    line.insert(0, good.clone());
    let name = format!("bisect-{}", cfg.run.scenario.name);
    let dir = crate::report::build::create_dir(cfg.out.as_deref(), &cfg.run.reports_root, &name).map_err(Error::run)?;
    let mut record = Record {
        schema_version: record::SCHEMA_VERSION,
        scenario: cfg.run.scenario.name.clone(),
        scenario_file: cfg.run.scenario_file.display().to_string(),
        repo: repo.display().to_string(),
        good: End {
            rev: cfg.good.clone(),
            commit: good.sha.clone(),
        },
        bad: End {
            rev: cfg.bad.clone(),
            commit: bad.sha.clone(),
        },
        build: cfg.build.clone(),
        repeat: cfg.repeat,
        between: line.len() - 2,
        steps: Vec::new(),
        outcome: Outcome::Searching,
    };
    record.write(&dir).map_err(Error::run)?;
    let tree = git::Worktree::add(&repo, &good).map_err(Error::run)?;
    let outcome = {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let bench = trial::Bench {
            cfg: &cfg,
            tree: &tree,
            dir: &dir,
            stop: rx,
        };
        let search = search_line(&bench, &line, &mut record);
        tokio::pin!(search, interrupt);
        tokio::select! {
            biased;
            o = &mut search => o,
            _ = &mut interrupt => {
                tracing::warn!("interrupted: stopping the bisection after the current step");
                let _ = tx.send(true);
                search.await
            }
        }
    };
    drop(tree);
    record.outcome = outcome?;
    record.write(&dir).map_err(Error::run)?;
    Ok(BisectOutcome { record, dir })
}

/// Tries the ends, then halves the line until one commit is left; each step is recorded and written.
async fn search_line(bench: &trial::Bench<'_>, line: &[git::Commit], record: &mut Record) -> Result<Outcome> {
    let last = line.len() - 1;
    let mut marks = Line::new(last);
    let mut bad_end_finding = None;
    for (i, role) in [(last, Role::BadEnd), (0, Role::GoodEnd)] {
        let step = take_step(bench, record, &line[i], role).await?;
        match (step.verdict, role) {
            (StepVerdict::Interrupted, _) => return Ok(Outcome::Interrupted),
            (StepVerdict::Skip, _) => {
                let reason = format!(
                    "the {} could not be judged",
                    if i == 0 { "good end" } else { "bad end" }
                );
                let commits = line[1..].iter().map(|c| c.sha.clone()).collect();
                return Ok(Outcome::Undecided { reason, commits });
            }
            (StepVerdict::Good, Role::BadEnd) => return Ok(Outcome::BadEndPasses),
            (StepVerdict::Bad, Role::GoodEnd) => return Ok(Outcome::GoodEndFails { finding: step.reason }),
            (StepVerdict::Bad, _) => bad_end_finding = step.reason,
            (StepVerdict::Good, _) => {}
        }
    }
    marks.mark(0, Mark::Good);
    marks.mark(last, Mark::Bad);
    loop {
        match marks.next() {
            Next::Try(i) => {
                let step = take_step(bench, record, &line[i], Role::Candidate).await?;
                let mark = match step.verdict {
                    StepVerdict::Good => Mark::Good,
                    StepVerdict::Bad => Mark::Bad,
                    StepVerdict::Skip => Mark::Skip,
                    StepVerdict::Interrupted => return Ok(Outcome::Interrupted),
                };
                marks.mark(i, mark);
            }
            Next::Found(i) => {
                let finding = record
                    .steps
                    .iter()
                    .find(|s| s.commit == line[i].sha && s.verdict == StepVerdict::Bad)
                    .map_or(bad_end_finding, |s| s.reason.clone());
                return Ok(Outcome::Found {
                    commit: line[i].sha.clone(),
                    subject: line[i].subject.clone(),
                    finding,
                });
            }
            Next::Undecided(is) => {
                return Ok(Outcome::Undecided {
                    reason: "skipped commits stand next to the first bad one".into(),
                    commits: is.iter().map(|&i| line[i].sha.clone()).collect(),
                })
            }
        }
    }
}

/// Tries one commit, records the step and writes the record.
async fn take_step(bench: &trial::Bench<'_>, record: &mut Record, commit: &git::Commit, role: Role) -> Result<Step> {
    let step = bench.try_commit(record.steps.len() + 1, commit, role).await?;
    record.steps.push(step.clone());
    record.write(bench.dir).map_err(Error::run)?;
    Ok(step)
}
