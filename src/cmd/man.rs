//! `fdsoak man`: print the man page (roff) of the command line.

use crate::error::{Error, Exit, Result};
use clap::Args;

/// Print the man page (roff): `fdsoak man > fdsoak.1; man ./fdsoak.1`.
#[derive(Debug, Args)]
pub struct ManArgs {}

/// Writes the page for `cli`, the whole command line, to standard output.
pub fn execute(_: ManArgs, cli: clap::Command) -> Result<Exit> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cli)
        .render(&mut out)
        .map_err(|e| Error::run(anyhow::anyhow!("rendering the man page: {e}")))?;
    super::print(&out)
}
