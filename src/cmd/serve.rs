//! `fdsoak serve`: the built-in reference target, until Ctrl-C or SIGTERM.

use crate::error::{Error, Exit, Result};
use crate::scenario::Knobs;
use anyhow::Context;
use clap::Args;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Serve the built-in reference target (grpc.health.v1 and a demo service), with optional leaks.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to bind. Loopback by default.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port to bind; 0 picks a free one. The bound address is printed on one line.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Listen here instead of --bind and --port: HOST:PORT, or a Unix socket
    /// (unix:///ABS/PATH, unix:PATH, unix-abstract:NAME), whose file is removed on exit.
    #[arg(long, value_name = "ADDR", value_parser = crate::scenario::parse_address, conflicts_with_all = ["bind", "port"])]
    pub listen: Option<crate::net::Address>,
    /// Set this process's RLIMIT_NOFILE (soft and hard) to N.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(16..))]
    pub nofile: Option<u64>,
    /// Read server behaviours (not_serving, service_unknown, stall, end_watch), one JSON
    /// fault per line, from standard input: how `fdsoak run` steers the built-in target.
    #[arg(long)]
    pub control_stdin: bool,
    /// Serve TLS with this certificate (PEM; with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// Also serve this process's Prometheus process metrics (process_open_fds, process_max_fds, …)
    /// at http://ADDR/metrics; port 0 picks one, printed on a second line.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    #[command(flatten)]
    pub knobs: Knobs,
}

pub fn execute(s: ServeArgs) -> Result<Exit> {
    let addr = s.listen.unwrap_or(SocketAddr::new(s.bind, s.port).into());
    if let Some(n) = s.nofile {
        crate::child::set_nofile(n)
            .with_context(|| format!("cannot set RLIMIT_NOFILE to {n}"))
            .map_err(Error::run)?;
    }
    let tls = match (&s.tls_cert, &s.tls_key) {
        (Some(cert), Some(key)) => Some(server_tls(cert, key, s.client_ca.as_deref()).map_err(Error::input)?),
        _ => None,
    };
    let served: anyhow::Result<()> = super::runtime()?.block_on(async move {
        let listener = addr.bind().await.with_context(|| format!("cannot bind {addr}"))?;
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
