//! The subcommands, one file each. Each file owns its command's arguments
//! (a clap struct that [`crate::cli::Command`] holds), their conversion into
//! what the command runs on, and its `execute`, which returns the exit code
//! or an [`Error`] that knows its own. Only the commands that do network
//! work start a Tokio runtime.

pub mod bisect;
pub mod client_demo;
pub mod compare;
pub mod completions;
pub mod man;
pub mod merge;
pub mod probe;
pub mod proxy;
pub mod report;
pub mod run;
pub mod serve;
pub mod trend;
pub mod validate;

use crate::error::{Error, Exit, Result};

/// Writes text the command made (a completion script, the man page) to standard output.
fn print(text: &[u8]) -> Result<Exit> {
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_all(text)
        .map_err(|e| Error::run(anyhow::anyhow!("writing: {e}")))?;
    Ok(Exit::Pass)
}

/// A multi-threaded runtime for the commands that need one.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    runtime_with(0)
}

/// The runtime of `fdsoak run`'s driver: `workers` threads, where 1 runs every
/// call on one thread (no cross-thread wake-ups: the least CPU per call) and
/// 0 is one worker per core.
pub(crate) fn runtime_with(workers: usize) -> Result<tokio::runtime::Runtime> {
    let mut b = match workers {
        1 => tokio::runtime::Builder::new_current_thread(),
        0 => tokio::runtime::Builder::new_multi_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    b.enable_all()
        .build()
        .map_err(|e| Error::run(anyhow::anyhow!("cannot start the async runtime: {e}")))
}

/// Resolves when the user asks us to stop (Ctrl-C or SIGTERM).
pub async fn interrupted() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
