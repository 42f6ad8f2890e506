//! The git a bisection needs: revisions resolved, the commits between two,
//! and a worktree of its own (in a temporary directory, so the user's
//! working tree and index are never touched) that is removed when dropped.

use anyhow::{anyhow, bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One commit: its full name and its subject line.
#[derive(Debug, Clone)]
pub struct Commit {
    pub sha: String,
    pub subject: String,
}

impl Commit {
    pub fn short(&self) -> &str {
        &self.sha[..self.sha.len().min(10)]
    }
}

/// Runs git in `dir` and returns its standard output, trimmed; its standard error is the error.
fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .context("running git (is it installed?)")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!("git {}: {}", args.join(" "), err.trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The top of the repository `dir` is in.
pub fn toplevel(dir: &Path) -> anyhow::Result<PathBuf> {
    git(dir, &["rev-parse", "--show-toplevel"])
        .map(PathBuf::from)
        .with_context(|| format!("{} is not in a git repository", dir.display()))
}

/// The commit a revision names.
pub fn resolve(repo: &Path, rev: &str) -> anyhow::Result<Commit> {
    let sha = git(
        repo,
        &["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")],
    )
    .map_err(|_| anyhow!("{rev:?} is not a commit in {}", repo.display()))?;
    let subject = git(repo, &["log", "-1", "--format=%s", &sha])?;
    Ok(Commit { sha, subject })
}

/// The commits after `good` up to `bad`, oldest first; an error when `good` is
/// not an ancestor of `bad`. When `good` is on `bad`'s first-parent line (a
/// main branch, its merges), that line: each commit the parent of the next,
/// so a change merged from a branch is named by its merge. Otherwise every
/// commit on the paths from one to the other, in git's order.
pub fn between(repo: &Path, good: &Commit, bad: &Commit) -> anyhow::Result<Vec<Commit>> {
    if git(repo, &["merge-base", "--is-ancestor", &good.sha, &bad.sha]).is_err() || good.sha == bad.sha {
        bail!("{} is not an ancestor of {}", good.short(), bad.short());
    }
    let range = format!("{}..{}", good.sha, bad.sha);
    let line = log(repo, &["--first-parent", &range])?;
    let first_parent = |c: &Commit| git(repo, &["rev-parse", &format!("{}^1", c.sha)]).ok();
    if line.first().and_then(first_parent).as_deref() == Some(good.sha.as_str()) {
        return Ok(line);
    }
    log(repo, &["--ancestry-path", &range])
}

/// `git log --reverse` with `args`, as commits.
fn log(repo: &Path, args: &[&str]) -> anyhow::Result<Vec<Commit>> {
    let mut all = vec!["log", "--reverse", "--format=%H %s"];
    all.extend(args);
    Ok(git(repo, &all)?
        .lines()
        .filter_map(|l| l.split_once(' ').or(Some((l, ""))))
        .map(|(sha, subject)| Commit {
            sha: sha.to_string(),
            subject: subject.to_string(),
        })
        .collect())
}

/// A detached worktree of the repository, removed (with `git worktree prune`) on drop.
pub struct Worktree {
    repo: PathBuf,
    path: PathBuf,
    _holder: tempfile::TempDir,
}

impl Worktree {
    /// A new worktree at `commit`, in a fresh temporary directory.
    pub fn add(repo: &Path, commit: &Commit) -> anyhow::Result<Worktree> {
        let holder = tempfile::Builder::new()
            .prefix("fdsoak-bisect-")
            .tempdir()
            .context("making a directory for the worktree")?;
        let path = holder.path().join("tree");
        let p = path.to_string_lossy();
        git(repo, &["worktree", "add", "--quiet", "--detach", &p, &commit.sha])?;
        Ok(Worktree {
            repo: repo.to_path_buf(),
            path,
            _holder: holder,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Puts `commit` in the worktree. Untracked files (a previous build's
    /// output) stay, so that builds are incremental, as they would be by hand.
    pub fn checkout(&self, commit: &Commit) -> anyhow::Result<()> {
        git(&self.path, &["checkout", "--quiet", "--detach", "--force", &commit.sha]).map(drop)
    }
}

impl Drop for Worktree {
    fn drop(&mut self) {
        let p = self.path.to_string_lossy();
        if let Err(e) = git(&self.repo, &["worktree", "remove", "--force", &p]) {
            tracing::warn!("removing the bisection's worktree: {e:#}");
        }
        // The directory goes with the holder; prune forgets it if remove did not.
        let _ = std::fs::remove_dir_all(&self.path);
        let _ = git(&self.repo, &["worktree", "prune"]);
    }
}
