//! The subcommands, one file each. Every command takes a validated
//! configuration from [`crate::cli`] and returns the exit code, or an
//! [`Error`] that knows its own. Only the commands that do network work
//! start a Tokio runtime.

pub mod bisect;
pub mod client_demo;
pub mod compare;
pub mod merge;
pub mod probe;
pub mod proxy;
pub mod report;
pub mod run;
pub mod serve;
pub mod trend;
pub mod validate;

use crate::cli::Action;
use crate::error::{Error, Exit, Result};

/// Executes one command.
pub fn execute(action: Action) -> Result<Exit> {
    match action {
        Action::Run { config, quiet, workers } => run::execute(*config, quiet, workers),
        Action::Bisect(b) => bisect::execute(*b),
        Action::Serve(s) => serve::execute(*s),
        Action::Validate(files) => validate::execute(&files),
        Action::Compare(c) => compare::execute(c),
        Action::Merge { reports, out } => merge::execute(&reports, &out),
        Action::Trend(t) => trend::execute(*t),
        Action::Report(dir) => report::execute(&dir),
        Action::Probe(p) => probe::execute(p),
        Action::Proxy(p) => proxy::execute(p),
        Action::ClientDemo(c) => client_demo::execute(c),
        Action::Print(text) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .map_err(|e| Error::run(anyhow::anyhow!("writing: {e}")))?;
            Ok(Exit::Pass)
        }
    }
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
