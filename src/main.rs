//! The `fdsoak` binary: parse the command line, log to stderr, hand over to the library.
use clap::Parser;

fn main() {
    let cli = fdsoak::cli::Cli::parse();
    let quiet = matches!(&cli.command, fdsoak::cli::Command::Run(r) if r.quiet);
    let default = if quiet { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FDSOAK_LOG").unwrap_or_else(|_| default.into()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    std::process::exit(fdsoak::execute(cli));
}
