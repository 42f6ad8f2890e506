//! `fdsoak validate`: check scenario files without running them. No runtime.

use crate::error::{Error, Exit, Result};
use std::path::PathBuf;

/// Checks every file; prints one line for each that is fine and returns the
/// first error after reporting every one.
pub fn execute(files: &[PathBuf]) -> Result<Exit> {
    let mut first = None;
    for f in files {
        match crate::rpc::load_scenario(f) {
            Ok(s) => println!("{}: ok ({}, {} phases)", f.display(), s.name, s.phases.len()),
            Err(e) if first.is_none() => first = Some(e),
            Err(e) => eprintln!("error: {e}"),
        }
    }
    match first {
        Some(e) => Err(Error::Scenario(e)),
        None => Ok(Exit::Pass),
    }
}
