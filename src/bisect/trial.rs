//! One commit tried: checked out in the worktree, built with the user's
//! command (its output kept in `builds/`), then run up to `repeat` times,
//! each run's report in `runs/`. Any failed run makes the commit bad; a build
//! that fails, or a run that ends in error, skips it.

use super::git::{Commit, Worktree};
use super::record::{Role, RunStep, Step, StepVerdict};
use super::BisectConfig;
use crate::error::{Error, Result};
use crate::report::model::Verdict;
use std::path::Path;
use std::time::Instant;
use tokio::sync::watch;

/// What every try shares: the configuration, the worktree, the bisection's
/// directory, and the flag that says the user asked to stop.
pub(super) struct Bench<'a> {
    pub cfg: &'a BisectConfig,
    pub tree: &'a Worktree,
    pub dir: &'a Path,
    pub stop: watch::Receiver<bool>,
}

impl Bench<'_> {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves once the user asks to stop.
    fn on_stop(&self) -> impl std::future::Future<Output = ()> + 'static {
        let mut rx = self.stop.clone();
        async move {
            if rx.wait_for(|s| *s).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Tries `commit`, the bisection's step number `n`, in the role it has.
    pub(super) async fn try_commit(&self, n: usize, commit: &Commit, role: Role) -> Result<Step> {
        let mut step = Step {
            commit: commit.sha.clone(),
            subject: commit.subject.clone(),
            role,
            verdict: StepVerdict::Skip,
            reason: None,
            build_log: None,
            build_secs: 0.0,
            runs: Vec::new(),
        };
        let name = format!("{n:02}-{}", commit.short());
        tracing::info!("bisect step {n}: {} {} ({role:?})", commit.short(), commit.subject);
        if let Err(e) = self.tree.checkout(commit) {
            step.reason = Some(format!("checkout failed: {e:#}"));
            return Ok(step);
        }
        if let Some(build) = &self.cfg.build {
            let started = Instant::now();
            let log = format!("builds/{name}.log");
            let built = self.build(build, &self.dir.join(&log)).await;
            step.build_secs = started.elapsed().as_secs_f64();
            step.build_log = Some(log);
            match built {
                Built::Ok => {}
                Built::Failed(why) => {
                    step.reason = Some(why);
                    return Ok(step);
                }
                Built::Stopped => {
                    step.verdict = StepVerdict::Interrupted;
                    return Ok(step);
                }
            }
        }
        for k in 0..self.cfg.repeat {
            let report = match k {
                0 => format!("runs/{name}"),
                _ => format!("runs/{name}-{}", k + 1),
            };
            let (run, finding) = self.run(commit, &report).await?;
            let verdict = run.verdict;
            step.runs.push(run);
            step.verdict = match verdict {
                Verdict::Pass => StepVerdict::Good,
                Verdict::Fail => StepVerdict::Bad,
                Verdict::Interrupted => StepVerdict::Interrupted,
                Verdict::Error | Verdict::Running | Verdict::Incomplete => StepVerdict::Skip,
            };
            if step.verdict != StepVerdict::Good {
                step.reason = finding;
                break;
            }
        }
        tracing::info!("bisect step {n}: {} is {:?}", commit.short(), step.verdict);
        Ok(step)
    }

    /// Builds in the worktree, the output to `log`.
    async fn build(&self, command: &str, log: &Path) -> Built {
        let out = std::fs::create_dir_all(log.parent().unwrap_or(log)).and_then(|_| std::fs::File::create(log));
        let out = match out {
            Ok(f) => f,
            Err(e) => return Built::Failed(format!("cannot write {}: {e}", log.display())),
        };
        let err = match out.try_clone() {
            Ok(f) => f,
            Err(e) => return Built::Failed(format!("cannot write {}: {e}", log.display())),
        };
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", command])
            .current_dir(self.tree.path())
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .process_group(0);
        crate::child::dies_with_fdsoak(cmd.as_std_mut());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return Built::Failed(format!("cannot start the build: {e}")),
        };
        tokio::select! {
            status = child.wait() => match status {
                Ok(s) if s.success() => Built::Ok,
                Ok(s) => Built::Failed(format!("the build failed ({s})")),
                Err(e) => Built::Failed(format!("waiting for the build: {e}")),
            },
            _ = self.on_stop() => {
                crate::child::stop(&mut child, crate::child::STOP_GRACE).await;
                Built::Stopped
            }
        }
    }

    /// One run of the scenario against the worktree's build; its report in `report`
    /// (relative to the bisection's directory), and the first finding if it failed.
    async fn run(&self, commit: &Commit, report: &str) -> Result<(RunStep, Option<String>)> {
        let mut cfg = self.cfg.run.clone();
        cfg.out_dir = Some(self.dir.join(report));
        cfg.label = Some(commit.sha.clone());
        cfg.workdir = Some(self.tree.path().to_path_buf());
        cfg.progress = false;
        let started = Instant::now();
        let outcome = if self.stopped() {
            None
        } else {
            Some(crate::run::run(cfg, self.on_stop()).await)
        };
        let secs = started.elapsed().as_secs_f64();
        let step = |verdict| RunStep {
            report: report.to_string(),
            verdict,
            secs,
        };
        match outcome {
            None => Ok((step(Verdict::Interrupted), None)),
            Some(Ok(o)) => {
                let finding = o.summary.findings.first().map(|f| f.message.clone());
                Ok((step(o.verdict), finding))
            }
            // A run that could not start (its target's build is broken): skip the commit.
            Some(Err(Error::Run(e))) => Ok((step(Verdict::Error), Some(format!("{e:#}")))),
            // A mistake of the user's, the same at every commit: stop.
            Some(Err(e)) => Err(e),
        }
    }
}

enum Built {
    Ok,
    Failed(String),
    Stopped,
}
