//! `fdsoak client-demo`: the reference client, until Ctrl-C or SIGTERM.

use crate::client::demo::DemoConfig;
use crate::error::{Error, Exit, Result};

pub fn execute(cfg: DemoConfig) -> Result<Exit> {
    let mode = cfg.mode;
    let stats = super::runtime()?
        .block_on(crate::client::demo::run(cfg, super::interrupted()))
        .map_err(Error::run)?;
    eprintln!(
        "fdsoak client-demo ({mode:?}): {} checks ok, {} failed, {} channels left open",
        stats.ok, stats.failed, stats.leaked_channels
    );
    Ok(Exit::Pass)
}
