//! `fdsoak client-demo`: the reference client, until Ctrl-C or SIGTERM.

use crate::client::demo::DemoConfig;
use crate::error::Result;
use std::process::ExitCode;

pub fn execute(cfg: DemoConfig) -> Result<ExitCode> {
    let mode = cfg.mode;
    let stats = super::runtime()?.block_on(crate::client::demo::run(cfg, super::interrupted()))?;
    eprintln!(
        "fdsoak client-demo ({mode:?}): {} checks ok, {} failed, {} channels left open",
        stats.ok, stats.failed, stats.leaked_channels
    );
    Ok(ExitCode::SUCCESS)
}
