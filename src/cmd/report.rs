//! `fdsoak report DIR`: render a report directory's files again. No runtime.

use crate::error::{Error, Result};
use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;

pub fn execute(dir: &Path) -> Result<ExitCode> {
    let summary = crate::report::json::read(&dir.join("summary.json")).map_err(Error::input)?;
    crate::report::write_all(&summary, dir).with_context(|| format!("writing the report in {}", dir.display()))?;
    println!("{}: report files written", dir.display());
    Ok(ExitCode::SUCCESS)
}
