//! `fdsoak compare BASE CANDIDATE`: exit 1 when the candidate regressed. No runtime.

use crate::cli::CompareConfig;
use crate::error::{Error, Result};
use std::process::ExitCode;

pub fn execute(c: CompareConfig) -> Result<ExitCode> {
    let comparison = crate::compare::compare_paths(&c.base, &c.candidate, &c.tolerances).map_err(Error::input)?;
    let text = comparison.render(c.format)?;
    print!("{text}");
    Ok(ExitCode::from(u8::from(comparison.regressed)))
}
