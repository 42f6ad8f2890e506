//! `fdsoak merge REPORT… --out DIR`: one report from several drivers, exiting
//! with the merged verdict's code, so the merge step of a distributed run is
//! the gate. No runtime.

use crate::error::{Exit, Result};
use std::path::{Path, PathBuf};

pub fn execute(reports: &[PathBuf], out: &Path) -> Result<Exit> {
    let merged = crate::merge::merge(reports, out)?;
    print!("{}", crate::report::terminal::render(&merged, out));
    Ok(Exit::of(merged.verdict))
}
