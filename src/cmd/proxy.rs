//! `fdsoak proxy`: the fault proxy alone, its faults as one endless phase, until Ctrl-C.

use crate::error::{Error, Exit, Result};
use anyhow::Context;
use clap::Args;
use std::io::Write;
use std::sync::Arc;

/// Run the fault proxy on its own, in front of any server, until Ctrl-C.
///
/// Put your own client behind it (point it at --listen) while `fdsoak run --target` samples the server.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Address to listen on: HOST:PORT, or a Unix socket (unix:///ABS/PATH, unix:PATH, unix-abstract:NAME).
    #[arg(long, default_value = "127.0.0.1:0", value_parser = crate::scenario::parse_address)]
    pub listen: crate::net::Address,
    /// The server to forward to (HOST:PORT, or a Unix socket as for --listen).
    #[arg(long)]
    pub upstream: String,
    /// A fault, as `KIND,key=value,…` with the keys of a scenario's [[phases.faults]],
    /// e.g. `reset,every=5s`, `refuse,at=3s,duration=2s`, `latency,latency=50ms,jitter=10ms`. Repeatable.
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<String>,
}

/// `fdsoak proxy`'s flags, parsed.
struct ProxyConfig {
    listen: crate::net::Address,
    upstream: crate::net::Address,
    faults: Vec<crate::scenario::Fault>,
}

impl ProxyArgs {
    fn config(self) -> Result<ProxyConfig> {
        let upstream =
            crate::scenario::parse_address(&self.upstream).map_err(|e| Error::usage("--upstream", e.to_string()))?;
        let faults = self
            .faults
            .iter()
            .map(|f| crate::scenario::parse_fault_spec(f).map_err(|m| Error::usage("--fault", m)))
            .collect::<Result<_>>()?;
        Ok(ProxyConfig {
            listen: self.listen,
            upstream,
            faults,
        })
    }
}

pub fn execute(args: ProxyArgs) -> Result<Exit> {
    let p = args.config()?;
    let proxied: anyhow::Result<()> = super::runtime()?.block_on(async move {
        let listener = p
            .listen
            .bind()
            .await
            .with_context(|| format!("cannot bind {}", p.listen))?;
        println!(
            "fdsoak proxy listening on {}",
            listener.local_addr().context("reading the bound address")?
        );
        let _ = std::io::stdout().flush();
        let control = Arc::new(crate::fault::Control::default());
        control.set_toxics(&p.faults);
        let stop = tokio_util::sync::CancellationToken::new();
        let start = tokio::time::Instant::now();
        let forever = start + crate::scenario::duration::MAX_DURATION;
        let schedule = tokio::spawn(crate::fault::schedule::run(
            control.clone(),
            p.faults,
            "proxy".into(),
            start,
            forever,
            stop.child_token(),
        ));
        let proxy = tokio::spawn(crate::fault::proxy::run(
            listener,
            crate::fault::proxy::Upstream {
                addr: p.upstream,
                tls: None,
            },
            control.clone(),
            stop.clone(),
        ));
        super::interrupted().await;
        stop.cancel();
        let _ = tokio::join!(schedule, proxy);
        let s = control.stats();
        eprintln!(
            "fdsoak proxy: {} connections, {} refused, {} reset, {} closed, {} blackholed, {} events",
            s.accepted,
            s.refused,
            s.reset,
            s.closed,
            s.blackholed,
            control.events().len()
        );
        Ok(())
    });
    proxied.map_err(Error::run)?;
    Ok(Exit::Pass)
}
