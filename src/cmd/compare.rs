//! `fdsoak compare BASE CANDIDATE`: exit 1 when the candidate regressed. No runtime.

use crate::error::{Error, Exit, Result};
use clap::Args;
use std::path::PathBuf;

/// Compare two reports (directories or summary.json files) and flag regressions.
///
/// Exits 1 when the candidate regressed, 0 when it did not, 2 when a
/// report cannot be read or has an incompatible schema_version.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The reference report.
    pub base: PathBuf,
    /// The report to judge.
    pub candidate: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "terminal")]
    pub format: crate::compare::Format,
    #[command(flatten)]
    pub tolerances: crate::compare::Tolerances,
}

pub fn execute(c: CompareArgs) -> Result<Exit> {
    let comparison = crate::compare::compare_paths(&c.base, &c.candidate, &c.tolerances).map_err(Error::input)?;
    let text = comparison.render(c.format).map_err(Error::run)?;
    print!("{text}");
    Ok(Exit::gate(comparison.regressed))
}
