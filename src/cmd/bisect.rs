//! `fdsoak bisect`: search a commit range, print each step's verdict and the
//! outcome, exit 0 found, 1 ends not as named, 3 undecided, 130 interrupted.

use crate::bisect::record::{Outcome, StepVerdict};
use crate::bisect::BisectConfig;
use crate::error::{Exit, Result};

pub fn execute(config: BisectConfig) -> Result<Exit> {
    let workers = config.workers;
    let outcome = super::runtime_with(workers)?.block_on(crate::bisect::bisect(config, super::interrupted()))?;
    let r = &outcome.record;
    for (i, s) in r.steps.iter().enumerate() {
        let verdict = format!("{:?}", s.verdict).to_lowercase();
        let why = match (s.verdict, &s.reason) {
            (StepVerdict::Skip, Some(r)) => format!(" ({r})"),
            _ => String::new(),
        };
        println!(
            "  {:>2}. {} {:<5} {}{why}",
            i + 1,
            &s.commit[..10.min(s.commit.len())],
            verdict,
            s.subject
        );
    }
    println!("fdsoak bisect: {}", r.headline());
    if let Outcome::Found { finding: Some(f), .. } = &r.outcome {
        println!("  ✗ {f}");
    }
    println!("bisection written to {}", outcome.dir.join("bisect.md").display());
    Ok(match r.outcome {
        Outcome::Found { .. } => Exit::Pass,
        Outcome::GoodEndFails { .. } | Outcome::BadEndPasses => Exit::Fail,
        Outcome::Undecided { .. } | Outcome::Searching => Exit::RunError,
        Outcome::Interrupted => Exit::Interrupted,
    })
}
