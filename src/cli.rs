//! The command line: the parser's top ([`Cli`]), one [`Command`] variant per
//! subcommand, each holding the arguments its own file in [`crate::cmd`]
//! defines, and the one dispatch from a parsed command to that file's
//! `execute`.

use crate::cmd;
use crate::error::{Exit, Result};
use clap::{CommandFactory, Parser, Subcommand};

/// What `fdsoak` is, as `--help` says it; the exit codes follow, from [`Exit::ALL`].
const DESCRIPTION: &str = "\
Finds connection and file-descriptor leaks in gRPC services.

fdsoak replays scripted scenarios of gRPC health checks, streams and any RPC, with forced \
disconnects and retries, against a target server while sampling the open file descriptors of \
the target, itself and a client under test (by kind, with TCP socket states, against \
RLIMIT_NOFILE) and the latency of every call, then flags growth toward the limit and names \
what leaked. The docs/ directory of the repository has one page per subject.";

fn long_about() -> String {
    format!("{DESCRIPTION}\n\n{}", Exit::summary())
}

/// The parsed command line.
#[derive(Debug, Parser)]
#[command(
    name = "fdsoak",
    version,
    about = DESCRIPTION.lines().next().map(|l| l.trim_end_matches('.')),
    long_about = long_about()
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand; each one's help text is its arguments' doc comment.
#[derive(Debug, Subcommand)]
pub enum Command {
    Run(Box<cmd::run::RunArgs>),
    Serve(Box<cmd::serve::ServeArgs>),
    Compare(Box<cmd::compare::CompareArgs>),
    Proxy(cmd::proxy::ProxyArgs),
    Merge(cmd::merge::MergeArgs),
    Trend(Box<cmd::trend::TrendArgs>),
    Report(cmd::report::ReportArgs),
    ClientDemo(cmd::client_demo::ClientDemoArgs),
    Probe(cmd::probe::ProbeArgs),
    Validate(cmd::validate::ValidateArgs),
    Bisect(Box<cmd::bisect::BisectArgs>),
    Completions(cmd::completions::CompletionsArgs),
    Man(cmd::man::ManArgs),
}

impl Command {
    /// Whether the command asked for quiet output (`run --quiet`).
    pub fn quiet(&self) -> bool {
        matches!(self, Command::Run(r) if r.quiet)
    }

    /// Executes the command: loads and validates what it needs, runs it, and returns its exit code.
    pub fn execute(self) -> Result<Exit> {
        match self {
            Command::Run(a) => cmd::run::execute(*a),
            Command::Serve(a) => cmd::serve::execute(*a),
            Command::Compare(a) => cmd::compare::execute(*a),
            Command::Proxy(a) => cmd::proxy::execute(a),
            Command::Merge(a) => cmd::merge::execute(a),
            Command::Trend(a) => cmd::trend::execute(*a),
            Command::Report(a) => cmd::report::execute(a),
            Command::ClientDemo(a) => cmd::client_demo::execute(a),
            Command::Probe(a) => cmd::probe::execute(a),
            Command::Validate(a) => cmd::validate::execute(a),
            Command::Bisect(a) => cmd::bisect::execute(*a),
            Command::Completions(a) => cmd::completions::execute(a, Cli::command()),
            Command::Man(a) => cmd::man::execute(a, Cli::command()),
        }
    }
}
