//! Every exit code fdsoak gives, in one table ([`Exit`]), and the one error
//! type every command returns ([`Error`]), which names its own code.
//!
//! Errors a user must fix exit 2, and come in three kinds kept apart: a flag
//! ([`UsageError`]), a scenario file (file:line:key, [`ScenarioError`]), and
//! another input the user named, such as a report directory. Errors of the
//! run or of I/O exit 3. A finished run exits with its verdict's code
//! ([`Exit::of`]). No conversion is implicit: each `?` in a command says
//! which kind its error is, so a new one cannot change an exit code unseen.

use crate::report::model::Verdict;
use crate::scenario::ScenarioError;

/// The exit codes, documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Every gate passed (or a command that judges nothing succeeded).
    Pass = 0,
    /// A gate failed: a leak or a regression was found.
    Fail = 1,
    /// A flag, a scenario file or another named input is wrong.
    Usage = 2,
    /// The run could not be done or finished: target unreachable or dead, I/O.
    RunError = 3,
    /// The user interrupted the run (Ctrl-C, SIGTERM); its report was written.
    Interrupted = 130,
}

impl Exit {
    /// Every code, in order.
    pub const ALL: [Exit; 5] = [Exit::Pass, Exit::Fail, Exit::Usage, Exit::RunError, Exit::Interrupted];

    /// What the code means, in a few words.
    pub fn words(self) -> &'static str {
        match self {
            Exit::Pass => "pass",
            Exit::Fail => "a gate failed (a leak or regression was found)",
            Exit::Usage => "usage or scenario error",
            Exit::RunError => "run error (target unreachable or died, I/O)",
            Exit::Interrupted => "interrupted",
        }
    }

    /// Every code and its words, as one sentence (the command line's `--help`).
    pub fn summary() -> String {
        let codes: Vec<String> = Exit::ALL
            .iter()
            .map(|e| format!("{} {}", e.code(), e.words()))
            .collect();
        format!("Exit codes: {}.", codes.join(", "))
    }

    /// The code a finished run exits with. A report that never finished
    /// (`running`, `incomplete`) is a run error: nothing was judged.
    pub fn of(verdict: Verdict) -> Exit {
        match verdict {
            Verdict::Pass => Exit::Pass,
            Verdict::Fail => Exit::Fail,
            Verdict::Error | Verdict::Running | Verdict::Incomplete => Exit::RunError,
            Verdict::Interrupted => Exit::Interrupted,
        }
    }

    /// `Fail` when `failed`, `Pass` otherwise (compare, trend).
    pub fn gate(failed: bool) -> Exit {
        if failed {
            Exit::Fail
        } else {
            Exit::Pass
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

/// A command-line value that is malformed or conflicts with the scenario.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct UsageError {
    pub flag: String,
    pub message: String,
}

impl UsageError {
    pub fn new(flag: impl Into<String>, message: impl Into<String>) -> UsageError {
        UsageError {
            flag: flag.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag is wrong.
    #[error(transparent)]
    Usage(UsageError),
    /// A scenario file is wrong, at a file, line and key.
    #[error(transparent)]
    Scenario(ScenarioError),
    /// Another input the user named (a report, a directory) cannot be used.
    #[error("{0:#}")]
    Input(anyhow::Error),
    /// The run, or reading or writing files, failed.
    #[error("{0:#}")]
    Run(anyhow::Error),
}

impl Error {
    /// The exit code this error means.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_) | Error::Scenario(_) | Error::Input(_) => Exit::Usage,
            Error::Run(_) => Exit::RunError,
        }
    }

    /// An unusable input named by the user.
    pub fn input(e: impl Into<anyhow::Error>) -> Error {
        Error::Input(e.into())
    }

    /// A failure of the run or of I/O.
    pub fn run(e: impl Into<anyhow::Error>) -> Error {
        Error::Run(e.into())
    }

    /// A wrong flag.
    pub fn usage(flag: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Usage(UsageError::new(flag, message))
    }
}

/// Shorthand for command results.
pub type Result<T> = std::result::Result<T, Error>;
