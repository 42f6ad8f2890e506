//! `fdsoak trend REPORT…`: write trend.md and trend.html, print what
//! regressed first, exit 1 when the newest build regressed. No runtime.

use crate::error::{Exit, Result};
use clap::Args;
use std::path::PathBuf;

/// The history of a scenario across builds: trend.md and trend.html, and the first build
/// where each metric regressed or failed its gate.
///
/// Reports are ordered by --labels, or by start time. Exits 1 when the newest build
/// regressed against the one before it, 2 when a report cannot be read.
#[derive(Debug, Args)]
pub struct TrendArgs {
    /// Report directories, summary.json files or glob patterns ("reports/nightly-*").
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Build order, as the labels given to `run --label`, comma-separated (default: start time).
    #[arg(long, value_name = "L1,L2,…", value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Directory for trend.md and trend.html.
    #[arg(long, value_name = "DIR", default_value = "trend")]
    pub out: PathBuf,
    #[command(flatten)]
    pub tolerances: crate::compare::Tolerances,
}

pub fn execute(t: TrendArgs) -> Result<Exit> {
    let paths = crate::trend::expand(&t.reports)?;
    let histories = crate::trend::histories(&paths, &t.labels, &t.tolerances)?;
    crate::trend::write(&histories, &t.out)?;
    for h in &histories {
        println!("{} ({} builds):", h.scenario, h.builds.len());
        for line in crate::trend::verdict_lines(h) {
            println!("  {line}");
        }
    }
    println!("trend written to {}", t.out.join("trend.html").display());
    Ok(Exit::gate(histories.iter().any(|h| h.newest_regressed)))
}
