//! `fdsoak merge REPORT… --out DIR`: one report from several drivers, exiting
//! with the merged verdict's code, so the merge step of a distributed run is
//! the gate. No runtime.

use crate::error::{Exit, Result};
use clap::Args;
use std::path::PathBuf;

/// Merge reports written by several drivers against one target into one report.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Report directories to merge.
    #[arg(required = true, num_args = 2..)]
    pub reports: Vec<PathBuf>,
    /// Directory for the merged report.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn execute(m: MergeArgs) -> Result<Exit> {
    let merged = crate::merge::merge(&m.reports, &m.out)?;
    print!("{}", crate::report::terminal::render(&merged, &m.out));
    Ok(Exit::of(merged.verdict))
}
