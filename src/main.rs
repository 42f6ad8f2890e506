//! The `fdsoak` binary: parse the command line, log to stderr, run the
//! command, and turn its result into the exit code.
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = fdsoak::cli::Cli::parse();
    let quiet = cli.command.quiet();
    let default = if quiet { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FDSOAK_LOG").unwrap_or_else(|_| default.into()))
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal: not in a pipe, a CI log or a report's target.log.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    match cli.command.execute() {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("error: {e}");
            e.exit().into()
        }
    }
}
