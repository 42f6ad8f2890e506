//! `fdsoak completions SHELL`: print a shell's completion script for the command line.

use crate::error::{Exit, Result};
use clap::Args;

/// Print a completion script for a shell: `fdsoak completions bash > /etc/bash_completion.d/fdsoak`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Writes the script for `cli`, the whole command line, to standard output.
pub fn execute(args: CompletionsArgs, mut cli: clap::Command) -> Result<Exit> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "fdsoak", &mut out);
    super::print(&out)
}
