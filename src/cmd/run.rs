//! `fdsoak run`: run a scenario, print the summary, exit with the verdict's code.

use crate::error::{Exit, Result};
use crate::run::RunConfig;

pub fn execute(mut config: RunConfig, quiet: bool, workers: usize) -> Result<Exit> {
    config.progress = !quiet;
    let outcome = super::runtime_with(workers)?.block_on(crate::run::run(config, super::interrupted()))?;
    let text = crate::report::terminal::render(&outcome.summary, &outcome.dir);
    if quiet {
        // The verdict and the findings: everything before the first blank line.
        text.lines().take_while(|l| !l.is_empty()).for_each(|l| println!("{l}"));
    } else {
        print!("{text}");
    }
    Ok(Exit::of(outcome.verdict))
}
