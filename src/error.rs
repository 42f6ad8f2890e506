//! The one error type every command returns, and the exit code it means.
//!
//! Errors a user must fix (a flag, a scenario, a report file that cannot be
//! read) exit 2; errors of the run or of I/O (a target that cannot be
//! reached, a report that cannot be written) exit 3.

use crate::scenario::ScenarioError;
use std::process::ExitCode;

/// Exit code for usage and scenario errors.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for run errors (target unreachable or died, I/O).
pub const EXIT_RUN_ERROR: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scenario file or a command-line value is wrong.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// An input the user named (a report, a directory) cannot be used.
    #[error("{0:#}")]
    Input(anyhow::Error),
    /// The run, or reading or writing files, failed.
    #[error("{0:#}")]
    Run(#[from] anyhow::Error),
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Error::Scenario(_) | Error::Input(_) => EXIT_USAGE,
            Error::Run(_) => EXIT_RUN_ERROR,
        })
    }

    /// An unusable input named by the user.
    pub fn input(e: impl Into<anyhow::Error>) -> Error {
        Error::Input(e.into())
    }
}

/// Shorthand for command results.
pub type Result<T> = std::result::Result<T, Error>;
