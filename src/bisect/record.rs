//! What a bisection did, as `bisect.json` (versioned, read back by tests and
//! tools) and `bisect.md`: every step with its commit, verdict, reports and
//! time, and the outcome. Written after every step, atomically, so an
//! interrupted or killed bisection leaves the steps it took.

use crate::report::model::Verdict;
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::path::Path;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub schema_version: u32,
    pub scenario: String,
    pub scenario_file: String,
    pub repo: String,
    pub good: End,
    pub bad: End,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    pub repeat: u32,
    /// Commits strictly between the two ends.
    pub between: usize,
    pub steps: Vec<Step>,
    pub outcome: Outcome,
}

/// An end of the range: the revision the user named and its commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct End {
    pub rev: String,
    pub commit: String,
}

/// One commit tried.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub commit: String,
    pub subject: String,
    pub role: Role,
    pub verdict: StepVerdict,
    /// Why: the finding that made it bad, or why it was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The build's output, relative to the bisection's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_log: Option<String>,
    pub build_secs: f64,
    pub runs: Vec<RunStep>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    GoodEnd,
    BadEnd,
    Candidate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepVerdict {
    Good,
    Bad,
    Skip,
    Interrupted,
}

/// One run of a commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunStep {
    /// The report directory, relative to the bisection's directory.
    pub report: String,
    pub verdict: Verdict,
    pub secs: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// Still going (a bisection killed mid-way leaves this).
    Searching,
    Found {
        commit: String,
        subject: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        finding: Option<String>,
    },
    GoodEndFails {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        finding: Option<String>,
    },
    BadEndPasses,
    /// Skipped commits (or an end that could not be judged) leave the answer open.
    Undecided {
        reason: String,
        commits: Vec<String>,
    },
    Interrupted,
}

impl Record {
    pub fn candidate_runs(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.role == Role::Candidate)
            .map(|s| s.runs.len())
            .sum()
    }

    /// Writes `bisect.json` and `bisect.md` into `dir`, each atomically.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        crate::report::write_atomic(&dir.join("bisect.json"), &json)?;
        crate::report::write_atomic(&dir.join("bisect.md"), self.markdown().as_bytes())
    }

    /// The outcome in one line.
    pub fn headline(&self) -> String {
        match &self.outcome {
            Outcome::Searching => "still searching".into(),
            Outcome::Found { commit, subject, .. } => format!("first bad commit: {} {subject}", short(commit)),
            Outcome::GoodEndFails { .. } => format!("the good end ({}) fails: nothing to search", self.good.rev),
            Outcome::BadEndPasses => format!("the bad end ({}) passes: nothing to search", self.bad.rev),
            Outcome::Undecided { reason, commits } => {
                let names: Vec<&str> = commits.iter().map(|c| short(c)).collect();
                format!(
                    "undecided: {reason}; the first bad commit is one of {}",
                    names.join(", ")
                )
            }
            Outcome::Interrupted => "interrupted".into(),
        }
    }

    fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# fdsoak bisect: {}\n", self.scenario);
        let _ = writeln!(md, "**{}**\n", self.headline());
        if let Outcome::Found { finding: Some(f), .. } | Outcome::GoodEndFails { finding: Some(f) } = &self.outcome {
            let _ = writeln!(md, "> {f}\n");
        }
        let _ = writeln!(
            md,
            "Good `{}` ({}), bad `{}` ({}), {} commits between; scenario `{}`; build `{}`; {} run(s) a commit.\n",
            self.good.rev,
            short(&self.good.commit),
            self.bad.rev,
            short(&self.bad.commit),
            self.between,
            self.scenario_file,
            self.build.as_deref().unwrap_or("(none)"),
            self.repeat
        );
        let _ = writeln!(md, "| # | commit | subject | tried as | verdict | why | build | runs |");
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
        for (i, s) in self.steps.iter().enumerate() {
            let runs: Vec<String> = s
                .runs
                .iter()
                .map(|r| format!("[{}]({}/index.html) {:.0}s", r.verdict.as_str(), r.report, r.secs))
                .collect();
            let _ = writeln!(
                md,
                "| {} | `{}` | {} | {} | {} | {} | {:.0}s | {} |",
                i + 1,
                short(&s.commit),
                cell(&s.subject),
                serde_plain(&s.role),
                serde_plain(&s.verdict),
                cell(s.reason.as_deref().unwrap_or("")),
                s.build_secs,
                runs.join(", ")
            );
        }
        md
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}

/// Text fit for one table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn serde_plain<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default()
}
