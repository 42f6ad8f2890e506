//! `fdsoak serve`: the built-in reference target, until Ctrl-C or SIGTERM.

use crate::cli::ServeConfig;
use crate::error::Result;
use anyhow::Context;
use std::io::Write;
use std::process::ExitCode;

pub fn execute(s: ServeConfig) -> Result<ExitCode> {
    if let Some(n) = s.nofile {
        crate::target::serve::set_nofile(n).with_context(|| format!("cannot set RLIMIT_NOFILE to {n}"))?;
    }
    super::runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(s.addr)
            .await
            .with_context(|| format!("cannot bind {}", s.addr))?;
        println!(
            "fdsoak serve listening on {}",
            listener.local_addr().context("reading the bound address")?
        );
        let _ = std::io::stdout().flush();
        let state = std::sync::Arc::new(crate::target::behaviour::State::default());
        if s.control_stdin {
            tokio::spawn(crate::target::behaviour::read_stdin(state.clone()));
        }
        crate::target::serve::serve(listener, s.knobs, state, super::interrupted()).await?;
        Ok(ExitCode::SUCCESS)
    })
}
