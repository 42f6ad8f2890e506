//! `fdsoak serve`: the built-in reference target, until Ctrl-C or SIGTERM.

use crate::cli::ServeConfig;
use crate::error::{Error, Exit, Result};
use anyhow::Context;
use std::io::Write;

pub fn execute(s: ServeConfig) -> Result<Exit> {
    if let Some(n) = s.nofile {
        crate::child::set_nofile(n)
            .with_context(|| format!("cannot set RLIMIT_NOFILE to {n}"))
            .map_err(Error::run)?;
    }
    let tls = match &s.tls {
        None => None,
        Some((cert, key, client_ca)) => Some(server_tls(cert, key, client_ca.as_deref()).map_err(Error::input)?),
    };
    let served: anyhow::Result<()> = super::runtime()?.block_on(async move {
        let listener = s.addr.bind().await.with_context(|| format!("cannot bind {}", s.addr))?;
        println!(
            "fdsoak serve listening on {}",
            listener.local_addr().context("reading the bound address")?
        );
        if let Some(addr) = s.metrics_addr {
            let bound = crate::refserver::metrics::serve(addr).await?;
            println!("fdsoak serve metrics on http://{bound}/metrics");
        }
        let _ = std::io::stdout().flush();
        let state = std::sync::Arc::new(crate::refserver::behaviour::State::default());
        if s.control_stdin {
            tokio::spawn(crate::refserver::behaviour::read_stdin(state.clone()));
        }
        crate::refserver::serve(listener, tls, s.knobs, state, super::interrupted()).await
    });
    served.map_err(Error::run)?;
    Ok(Exit::Pass)
}

/// The server's TLS identity and, for mutual TLS, the CA its clients' certificates must chain to.
fn server_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
    client_ca: Option<&std::path::Path>,
) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let read = |p: &std::path::Path, flag: &str| {
        std::fs::read(p).with_context(|| format!("{flag}: cannot read {}", p.display()))
    };
    let mut tls =
        ServerTlsConfig::new().identity(Identity::from_pem(read(cert, "--tls-cert")?, read(key, "--tls-key")?));
    if let Some(ca) = client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read(ca, "--client-ca")?));
    }
    Ok(tls)
}
