//! `fdsoak compare BASE CANDIDATE`: exit 1 when the candidate regressed. No runtime.

use crate::cli::CompareConfig;
use crate::error::{Error, Exit, Result};

pub fn execute(c: CompareConfig) -> Result<Exit> {
    let comparison = crate::compare::compare_paths(&c.base, &c.candidate, &c.tolerances).map_err(Error::input)?;
    let text = comparison.render(c.format).map_err(Error::run)?;
    print!("{text}");
    Ok(Exit::gate(comparison.regressed))
}
