//! `fdsoak client-demo`: the reference client, until Ctrl-C or SIGTERM.

use crate::client::demo::DemoConfig;
use crate::error::{Error, Exit, Result};
use clap::Args;
use std::time::Duration;

/// A reference health-checking client (good, or with a leak), to see a verdict on a client.
///
/// Runs checks until Ctrl-C or SIGTERM (or --checks are done). Use it as
/// `fdsoak run SCENARIO --client "fdsoak client-demo --mode retry-leak"`.
#[derive(Debug, Args)]
pub struct ClientDemoArgs {
    /// The server to check (HOST:PORT, or unix:///PATH); fdsoak sets FDSOAK_TARGET_ADDR for a client it starts.
    #[arg(long, value_name = "ADDR", env = "FDSOAK_TARGET_ADDR")]
    pub target: String,
    /// good: one channel for the whole run; retry-leak: a fresh channel after each failed
    /// check, the old one never closed; per-check-leak: a new channel per check, never closed.
    #[arg(long, value_enum, default_value = "good")]
    pub mode: crate::client::demo::Mode,
    /// Time between checks.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = crate::scenario::duration::parse)]
    pub interval: Duration,
    /// Deadline of each check.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = crate::scenario::duration::parse)]
    pub deadline: Duration,
    /// Exit after this many checks (default: run until stopped).
    #[arg(long, value_name = "N")]
    pub checks: Option<u64>,
}

impl ClientDemoArgs {
    fn config(self) -> Result<DemoConfig> {
        let target =
            crate::scenario::parse_address(&self.target).map_err(|e| Error::usage("--target", e.to_string()))?;
        if self.interval.is_zero() || self.deadline.is_zero() {
            return Err(Error::usage("--interval/--deadline", "must be greater than zero"));
        }
        Ok(DemoConfig {
            target,
            mode: self.mode,
            interval: self.interval,
            deadline: self.deadline,
            checks: self.checks,
        })
    }
}

pub fn execute(args: ClientDemoArgs) -> Result<Exit> {
    let cfg = args.config()?;
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
