//! `fdsoak validate`: check scenario files without running them. No runtime.

use crate::error::{Error, Exit, Result};
use clap::Args;
use std::path::PathBuf;

/// Check scenario files without running them.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Scenario files to check.
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
}

/// Checks every file; prints one line for each that is fine and returns the
/// first error after reporting every one.
pub fn execute(args: ValidateArgs) -> Result<Exit> {
    let mut first = None;
    for f in &args.scenarios {
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
