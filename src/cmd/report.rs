//! `fdsoak report DIR`: render a report directory's files again. No runtime.

use crate::error::{Error, Exit, Result};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;

/// Render a report directory's outputs again (HTML, markdown, JUnit, CSV) from its summary.json and CSV files.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A report directory written by `fdsoak run` or `fdsoak merge`.
    pub dir: PathBuf,
}

pub fn execute(ReportArgs { dir }: ReportArgs) -> Result<Exit> {
    let summary = crate::report::json::read(&dir.join("summary.json")).map_err(Error::input)?;
    crate::report::write_all(&summary, &dir)
        .with_context(|| format!("writing the report in {}", dir.display()))
        .map_err(Error::run)?;
    println!("{}: report files written", dir.display());
    Ok(Exit::Pass)
}
