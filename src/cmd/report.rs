//! `fdsoak report DIR`: render a report directory's files again. No runtime.

use crate::error::{Error, Exit, Result};
use anyhow::Context;
use std::path::Path;

pub fn execute(dir: &Path) -> Result<Exit> {
    let summary = crate::report::json::read(&dir.join("summary.json")).map_err(Error::input)?;
    crate::report::write_all(&summary, dir)
        .with_context(|| format!("writing the report in {}", dir.display()))
        .map_err(Error::run)?;
    println!("{}: report files written", dir.display());
    Ok(Exit::Pass)
}
