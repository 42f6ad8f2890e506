//! `fdsoak trend REPORT…`: write trend.md and trend.html, print what
//! regressed first, exit 1 when the newest build regressed. No runtime.

use crate::cli::TrendArgs;
use crate::error::{Exit, Result};

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
