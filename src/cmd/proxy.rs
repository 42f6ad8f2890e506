//! `fdsoak proxy`: the fault proxy alone, its faults as one endless phase, until Ctrl-C.

use crate::cli::ProxyConfig;
use crate::error::{Error, Exit, Result};
use anyhow::Context;
use std::io::Write;
use std::sync::Arc;

pub fn execute(p: ProxyConfig) -> Result<Exit> {
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
